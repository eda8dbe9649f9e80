"""The Requests pane's filter language: what each term matches, and the reason for each mistake."""

from __future__ import annotations

import pytest

from mockpanel.filters import FilterError, compile_filter
from mockpanel.journal import RequestEntry

SERVERS = ["auth", "s3", "webhooks"]


def entry(server="auth", method="GET", path="/health", query=b"", status=200, ms=1.0, fault=None) -> RequestEntry:
    return RequestEntry(1, 0.0, server, method, path, query, status, ms, 0, 0, [], [], b"", b"", fault)


def test_terms_and_alternatives_and_negation():
    keep = compile_filter("server:s3|server:auth !status:404 method:put|post", SERVERS)
    assert keep(entry("s3", "PUT", status=200))
    assert keep(entry("auth", "POST", status=500))
    assert not keep(entry("s3", "PUT", status=404))
    assert not keep(entry("webhooks", "POST"))
    assert not keep(entry("s3", "GET"))


@pytest.mark.parametrize("text, yes, no", [
    ("STATUS:4xx", entry(status=401), entry(status=200)),
    ("status:none", entry(status=0), entry(status=200)),
    ("ms>100", entry(ms=150.5), entry(ms=99)),
    ("ms<=1", entry(ms=1.0), entry(ms=1.5)),
    ("fault:drop", entry(fault="drop"), entry(fault=None)),
    ("/api/auth", entry(path="/api/auth/login"), entry(path="/health")),
    ("page=2", entry(path="/items", query=b"page=2"), entry(path="/items", query=b"page=3")),
    ("path:/a:b", entry(path="/a:b/c"), entry(path="/a")),
])
def test_each_field(text, yes, no):
    keep = compile_filter(text, SERVERS)
    assert keep(yes) and not keep(no)


@pytest.mark.parametrize("text, reason", [
    ("status:abc", "status:abc is not a status"),
    ("serv:s3", "unknown field 'serv' (did you mean server:?)"),
    ("server:nope", "no server named 'nope': auth, s3, webhooks"),
    ("method:FETCH", "'FETCH' is not an HTTP method"),
    ("status:", "status: needs a value"),
    ("server:s3|", "an empty alternative"),
])
def test_mistakes_say_why(text, reason):
    with pytest.raises(FilterError) as caught:
        compile_filter(text, SERVERS)
    assert reason in str(caught.value)


def test_an_empty_filter_keeps_everything():
    assert compile_filter("   ", SERVERS)(entry())
