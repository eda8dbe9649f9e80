"""The Requests pane's filter language, in the spirit of mitmproxy's: terms separated by spaces must all match;
`a|b` matches either (`method:PUT|POST`: a bare alternative takes the field before it); `!term` negates; plain
text is a substring of the path (with its query).

    server:s3  method:PUT|POST  status:5xx  !status:404  fault:drop  ms>200  /api/auth

A mistake is an error that says what is wrong, never a filter that silently shows nothing.
"""

from __future__ import annotations

import re
from typing import Callable, Iterable

from .journal import RequestEntry

Predicate = Callable[[RequestEntry], bool]
FIELDS = ("server", "method", "status", "path", "fault", "ms")
EXAMPLES = {"server": "s3", "method": "GET", "status": "5xx", "path": "/api", "fault": "drop"}
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT")


class FilterError(ValueError):
    """Why a filter cannot be used; the message is shown under the filter box."""


def compile_filter(text: str, servers: Iterable[str] = ()) -> Predicate:
    """A predicate for `text`; FilterError says what is wrong with it. `servers`: the names `server:` accepts."""
    known = tuple(servers)
    terms = [_term(token, known) for token in text.split()]
    if not terms:
        return lambda entry: True
    return lambda entry: all(term(entry) for term in terms)


def _term(token: str, servers: tuple[str, ...]) -> Predicate:
    negate = token[0] == "!" and len(token) > 1
    body = token[1:] if negate else token
    parts, field = [], ""
    for part in body.split("|"):  # method:PUT|POST: a bare alternative takes the field before it
        name, sep, _ = part.partition(":")
        if sep and "/" not in name:
            field = name
        elif field and part and not part.lower().startswith("ms"):
            part = f"{field}:{part}"
        parts.append(part)
    alternatives = [_atom(part, servers) for part in parts]
    if len(alternatives) == 1:
        one = alternatives[0]
        return (lambda e: not one(e)) if negate else one
    if negate:
        return lambda e: not any(a(e) for a in alternatives)
    return lambda e: any(a(e) for a in alternatives)


def _atom(part: str, servers: tuple[str, ...]) -> Predicate:
    if not part:
        raise FilterError("an empty alternative: write a|b, not a| or |b")
    m = re.fullmatch(r"(?i)ms([<>]=?)(\d+(?:\.\d+)?)", part)
    if m:
        op, limit = m.group(1), float(m.group(2))
        compare = {"<": float.__lt__, "<=": float.__le__, ">": float.__gt__, ">=": float.__ge__}[op]
        return lambda e: compare(float(e.duration_ms), limit)
    name, sep, value = part.partition(":")
    if not sep or "/" in name:  # plain text (a path may hold a colon after its first slash)
        needle = part
        return lambda e: needle in e.path or (bool(e.raw_query) and needle in f"{e.path}?{e.query}")
    field = name.lower()
    if field not in FIELDS or field == "ms":
        close = [f for f in FIELDS if f.startswith(field[:3])] if field else []
        hint = f" (did you mean {close[0]}:?)" if close else ""
        raise FilterError(f"unknown field {name!r}{hint}: use server:, method:, status:, path:, fault: or ms>N")
    if not value:
        raise FilterError(f"{field}: needs a value, e.g. {field}:{EXAMPLES[field]}")
    if field == "server":
        if servers and value not in servers:
            raise FilterError(f"no server named {value!r}: {', '.join(servers)}")
        return lambda e: e.server == value
    if field == "method":
        method = value.upper()
        if method not in METHODS:
            raise FilterError(f"{value!r} is not an HTTP method: {', '.join(METHODS)}")
        return lambda e: e.method == method
    if field == "status":
        return _status(value)
    if field == "path":
        return lambda e: value in e.path
    return lambda e: e.fault is not None and value in e.fault  # fault: the injected fault's description


def _status(value: str) -> Predicate:
    v = value.lower()
    if re.fullmatch(r"[1-5]xx", v):
        first = v[0]
        return lambda e: str(e.status)[0] == first and e.status >= 100
    if re.fullmatch(r"[1-5]\d\d", v):
        code = int(v)
        return lambda e: e.status == code
    if v in ("none", "0", "-"):
        return lambda e: e.status == 0  # dropped, hung, client gone
    raise FilterError(f"status:{value} is not a status: use a code (404), a class (4xx) or none (no response)")
