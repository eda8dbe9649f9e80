"""Hypothesis against a running stub server over HTTP: hostile mappings through the admin API and hostile requests
against mappings and an OpenAPI document get JSON answers (a refusal naming the problem), never a 500 and never a
stall of the loop; the mappings on disk keep answering."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import httpx2
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from conftest import ServeProcess

FUZZ = settings(max_examples=600 if os.environ.get("CI") else 150, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow], derandomize=bool(os.environ.get("CI")))
SENTINEL = {"request": {"method": "GET", "url": "/sentinel"}, "response": {"status": 200, "jsonBody": {"kept": True}}}

json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=30),
                           lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
                           max_leaves=12)
MATCHER_KEYS = ["equalTo", "contains", "matches", "doesNotMatch", "equalToJson", "matchesJsonPath", "absent", "and", "or", "not",
                "caseInsensitive", "hasExactly", "includes", "binaryEqualTo"]
matchers = st.dictionaries(st.sampled_from(MATCHER_KEYS), json_values | st.sampled_from(["(a+)+$", "$.x[?(@.y > 1)]", "[", "$..*"]),
                           max_size=2) | json_values
request_patterns = st.fixed_dictionaries({}, optional={
    "method": st.sampled_from(["GET", "POST", "ANY"]) | json_values,
    "url": st.text(max_size=20) | json_values, "urlPathPattern": st.sampled_from(["/a/.*", "(", "/(x+x+)+y"]) | json_values,
    "urlPathTemplate": st.sampled_from(["/a/{id}", "/{x}/{y}"]) | json_values,
    "headers": st.dictionaries(st.text(max_size=10), matchers, max_size=2) | json_values,
    "queryParameters": st.dictionaries(st.text(max_size=10), matchers, max_size=2),
    "bodyPatterns": st.lists(matchers, max_size=2) | json_values,
    "basicAuthCredentials": json_values,
})
# WireMock templates as real mappings write them, and as an attacker would: many random values, the body echoed
templates = st.lists(st.sampled_from(["{{randomValue length=10000}}", "{{randomValue length=999999999}}", "{{{request.body}}}",
                                      "{{request.path.[0]}}", "{{jsonPath request.body '$..*'}}", "{{now offset='3 days'}}",
                                      "{{base64 request.body}}", "{{urlEncode request.url}}", "{{#if x}}", "text "]),
                     max_size=150).map("".join)
responses = st.fixed_dictionaries({}, optional={
    "status": st.integers(-5, 1000) | json_values, "body": st.text(max_size=40) | templates | json_values, "jsonBody": json_values,
    "base64Body": st.text(max_size=20), "bodyFileName": st.sampled_from(["../x", "/etc/passwd", "a.json", ""]) | json_values,
    "headers": st.dictionaries(st.text(max_size=10), st.text(max_size=10), max_size=2) | json_values,
    "fixedDelayMilliseconds": st.integers(-10, 10) | json_values, "fault": st.sampled_from(["EMPTY_RESPONSE", "NOPE"]) | json_values,
    "transformers": st.just(["response-template"]) | json_values,
    "delayDistribution": json_values, "proxyBaseUrl": st.sampled_from(["http://169.254.169.254", "file:///etc"]),
})
mappings = st.fixed_dictionaries({"request": request_patterns, "response": responses}, optional={
    "priority": st.integers() | json_values, "scenarioName": json_values, "requiredScenarioState": json_values, "id": json_values})


@pytest.fixture(scope="module")
def stub(tmp_path_factory):
    root = tmp_path_factory.mktemp("stub")
    (root / "mappings").mkdir()
    (root / "mappings" / "sentinel.json").write_text(json.dumps(SENTINEL))
    (root / "mappings" / "matchers.json").write_text(json.dumps({"mappings": [  # what hostile requests meet on their way
        {"request": {"method": "ANY", "urlPathPattern": "/x.*", "headers": {"x-a": {"matches": "(a|b)+c"}},
                     "bodyPatterns": [{"matchesJsonPath": "$.items[?(@.qty > 1)]"}]}, "response": {"status": 202}},
        {"request": {"method": "ANY", "urlPathPattern": "/(x+x+)+y", "queryParameters": {"q": {"matches": "(a|aa)+b"}}},
         "response": {"status": 200}},
        {"request": {"method": "POST", "urlPathTemplate": "/x/{id}", "bodyPatterns": [{"equalToJson": {"a": 1}, "ignoreExtraElements": True}]},
         "response": {"status": 201}},
        {"priority": 9, "request": {"method": "ANY", "urlPattern": "/t.*"}, "response": {
            "transformers": ["response-template"], "status": 200,
            "jsonBody": {"segment": "{{request.path.[0]}}", "q": "{{request.query.q}}", "sku": "{{jsonPath request.body '$.sku'}}",
                         "body": "{{{request.body}}}", "accept": "{{request.headers.accept}}"}}},
    ]}))
    shutil.copy(Path(__file__).parent / "data" / "petstore.yaml", root / "petstore.yaml")
    (root / "mockpanel.toml").write_text('[stubs.fuzz]\nmappings = "mappings"\nopenapi = "petstore.yaml"\n')
    with ServeProcess("--only", "fuzz", "--quiet", cwd=root) as serve:
        url = serve.urls(1)["fuzz"]
        with httpx2.Client(base_url=url, timeout=30) as client:
            yield url, client
        loop = serve.loop_stalls(url)
        assert loop["worst_stall_ms"] <= 250, loop  # the watchdog's own threshold: regexes, templates and bodies within budget


def answered_in_json(response: httpx2.Response) -> None:
    assert response.status_code < 500, (response.status_code, response.text[:300])
    if response.status_code >= 400:
        assert response.headers["content-type"].startswith(("application/json", "application/problem+json")), response.text[:200]
        assert response.json()


@FUZZ
@given(mapping=mappings)
def test_hostile_mappings_are_refused_in_wiremocks_format_or_added(stub, mapping):
    url, client = stub
    created = client.post("/__admin/mappings", json=mapping)
    answered_in_json(created)
    if created.status_code == 201:
        client.delete(f"/__admin/mappings/{created.json()['id']}").raise_for_status()
    else:
        assert created.status_code in (400, 409, 422) and created.json()["errors"][0]["title"]
    assert client.get("/sentinel").json() == {"kept": True}


@FUZZ
@given(template=templates, body=st.binary(max_size=200) | st.sampled_from([b"z" * 300_000, json.dumps({"a": list(range(2000))}).encode()]))
def test_hostile_templates_are_refused_when_read_or_rendered_within_bounds(stub, template, body):
    url, client = stub
    created = client.post("/__admin/mappings", json={"request": {"method": "POST", "url": "/tpl"},
                                                     "response": {"body": template, "transformers": ["response-template"]}})
    answered_in_json(created)
    if created.status_code != 201:
        assert created.status_code == 422 and created.json()["errors"][0]["title"]
        return
    try:
        rendered = client.post("/tpl", content=body)
        answered_in_json(rendered)
        assert rendered.status_code in (200, 413, 422) and len(rendered.content) <= 1024 * 1024
    finally:
        client.delete(f"/__admin/mappings/{created.json()['id']}").raise_for_status()


@FUZZ
@example(method="POST", path="/pets", query={}, headers={"content-type": "application/json"}, body=b"@W\xff\x15")  # schemathesis found it
@given(method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH"]),
       path=st.sampled_from(["/pets", "/pets/1", "/sentinel", "/x", "/x/1", "/t", "/t/%2F/%00", "/pets/%00", "/pets/" + "9" * 300,
                             "/" + "x" * 5000, "/" + "x/" * 5000]) | st.text(max_size=30).map(lambda t: "/" + t),
       query=st.dictionaries(st.sampled_from(["limit", "q", "x"]), st.text(max_size=20), max_size=2),
       headers=st.dictionaries(st.sampled_from(["content-type", "accept", "prefer", "x-a"]),
                               st.sampled_from(["application/json", "text/plain", "*/*", "code=404", "example=x", "code=abc", "code=999"]) |
                               st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=20), max_size=3),
       body=st.binary(max_size=200) | json_values.map(lambda v: json.dumps(v).encode()))
def test_hostile_requests_get_answers_never_a_500(stub, method, path, query, headers, body):
    url, client = stub
    try:
        request = client.build_request(method, path, params=query, headers=headers, content=body if method != "GET" else None)
        answer = client.send(request)
    except (httpx2.InvalidURL, httpx2.LocalProtocolError, UnicodeEncodeError, ValueError):
        return  # a request httpx2 itself will not send
    answered_in_json(answer)
