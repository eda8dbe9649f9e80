"""The matcher every request runs (RequestPattern.matches, the hot path) says what the near-miss report says: a
request matches exactly when the report finds no difference — for hypothesis's patterns and requests."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mockpanel.servers.stubs.matching import Incoming, MappingError, RequestPattern

SAME = settings(max_examples=3000 if os.environ.get("CI") else 500, deadline=None, suppress_health_check=list(HealthCheck),
                derandomize=bool(os.environ.get("CI")))

words = st.sampled_from(["a", "b", "ab", "A", "", "x y", "1", "{\"a\": 1}", "[1, 2]", "{\"items\": [{\"qty\": 3}]}"])
values = st.one_of(
    words.map(lambda w: {"equalTo": w}), words.map(lambda w: {"equalTo": w, "caseInsensitive": True}),
    words.map(lambda w: {"contains": w}), words.map(lambda w: {"doesNotContain": w}),
    st.sampled_from(["a+", "[ab]*", ".*", "x.*"]).map(lambda r: {"matches": r}),
    st.sampled_from(["a+", ".*"]).map(lambda r: {"doesNotMatch": r}), st.booleans().map(lambda b: {"absent": b}),
    st.sampled_from(['{"a": 1}', "[1, 2]"]).map(lambda j: {"equalToJson": j, "ignoreExtraElements": True}),
    st.sampled_from(["$.a", "$.items[?(@.qty > 1)]"]).map(lambda e: {"matchesJsonPath": e}),
)
patterns = st.fixed_dictionaries({}, optional={
    "method": st.sampled_from(["GET", "POST", "ANY"]),
    "url": st.sampled_from(["/a", "/a?x=1", "/b"]), "urlPathPattern": st.sampled_from(["/a.*", "/[ab]"]),
    "headers": st.dictionaries(st.sampled_from(["X-A", "accept"]), values, max_size=2),
    "queryParameters": st.dictionaries(st.sampled_from(["x", "y"]), values, max_size=2),
    "cookies": st.dictionaries(st.sampled_from(["s"]), values, max_size=1),
    "bodyPatterns": st.lists(values, max_size=2),
    "formParameters": st.dictionaries(st.sampled_from(["f"]), values, max_size=1),
    "basicAuthCredentials": st.just({"username": "u", "password": "p"}),
})
requests = st.builds(
    lambda method, path, query, headers, body: Incoming(method, path, query, headers, body=body),
    st.sampled_from(["GET", "POST"]), st.sampled_from(["/a", "/b", "/ab", "/c"]), st.sampled_from(["", "x=1", "x=ab&y=A", "y="]),
    st.dictionaries(st.sampled_from(["x-a", "accept", "cookie", "authorization"]),
                    st.lists(st.sampled_from(["a", "ab", "A", "s=ab", "Basic dTpw", ""]), min_size=1, max_size=2), max_size=3),
    st.sampled_from([b"", b"a", b'{"a": 1, "b": 2}', b"[1, 2]", b'{"items": [{"qty": 3}]}', b"f=ab"]),
)


@SAME
@given(spec=patterns, request=requests)
def test_the_hot_path_matches_exactly_when_the_report_finds_no_difference(spec, request):
    if "url" in spec and "urlPathPattern" in spec:
        del spec["urlPathPattern"]
    try:
        pattern = RequestPattern(spec)
    except MappingError:
        return
    differences, distance = pattern.differences(request)
    assert pattern.matches(request) == (not differences), (spec, request, differences)
    assert (distance == 0.0) == (not differences)
