"""What WireMock does that mockpanel now does too (the answers themselves are compared with WireMock's recorded
ones in test_stubs_oracles.py): the admin client's near misses of a request and its unmatched requests newest first;
a WireMock root as the mappings directory; a mapping mockpanel cannot serve left out, named, the others served; and
from an attacker's side, block helpers and XML bounded: loops past their budget, entities never expanded or fetched."""

from __future__ import annotations

import json
from pathlib import Path

import httpx2
import pytest

from mockpanel.testing import RunningHub, settings_for


def write(directory: Path, name: str, mapping: dict) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_text(json.dumps(mapping))


def serve(tmp_path: Path, mappings: str = "wiremock") -> RunningHub:
    config = tmp_path / "mockpanel.toml"
    config.write_text(f'[stubs.partner]\nmappings = "{mappings}"\n')
    return RunningHub(settings_for(["partner"], config=config))


@pytest.fixture
def client(tmp_path):
    from wiremock.constants import Config

    write(tmp_path / "wiremock" / "mappings", "hello.json", {"request": {"method": "GET", "urlPath": "/hello"}, "response": {"body": "hi"}})
    write(tmp_path / "wiremock" / "mappings", "orders.json", {"request": {"method": "POST", "urlPath": "/orders"}, "response": {"status": 201}})
    with serve(tmp_path) as running:
        old = Config.base_url
        Config.base_url = running.urls["partner"] + "/__admin"
        yield running.urls["partner"]
        Config.base_url = old


def test_the_admin_clients_near_misses_of_a_request_and_unmatched_newest_first(client):
    from wiremock.client import Requests
    from wiremock.resources.near_misses import NearMissMatchRequest
    from wiremock.resources.near_misses.resource import NearMisses

    found = NearMisses.find_nearest_misses_by_request(NearMissMatchRequest(url="/helo", method="GET"))
    assert found.near_misses[0].request.url == "/helo" and found.near_misses[0].match_result.distance > 0
    raw = httpx2.post(f"{client}/__admin/near-misses/request", json={"url": "/helo", "method": "GET"}).json()
    assert raw["nearMisses"][0]["stubMapping"]["request"]["urlPath"] == "/hello"  # the client models no stubMapping
    refused = httpx2.post(f"{client}/__admin/near-misses/request", json={"url": 7})
    assert refused.status_code == 422 and "a request" in refused.json()["detail"]
    for path in ("/first", "/second", "/third"):
        httpx2.get(client + path)
    assert [r.url for r in Requests.get_unmatched_requests().requests] == ["/third", "/second", "/first"]


def test_the_near_misses_of_a_given_request_have_a_requests_regex_budget(tmp_path):
    """From an attacker's side: a request crafted for 40 mappings whose regexes backtrack catastrophically. Its
    near-miss report stops at the regex budget of one request and says so, as the 404 of a served request does."""
    mappings = tmp_path / "wiremock" / "mappings"
    for index in range(40):
        write(mappings, f"slow-{index:02d}.json", {"request": {"urlPathPattern": f"/(x+x+)+y{index}"}, "response": {"body": "x"}})
    with serve(tmp_path) as running:
        url = running.urls["partner"]
        report = httpx2.post(f"{url}/__admin/near-misses/request", json={"url": "/" + "x" * 4000, "method": "GET"}, timeout=30)
        assert report.status_code == 200
        assert "regex budget" in report.json()["nearMisses"][0]["cutShort"]


def test_a_mapping_mockpanel_cannot_serve_is_left_out_named_and_the_others_served(tmp_path):
    mappings = tmp_path / "wiremock" / "mappings"
    write(mappings, "good.json", {"request": {"urlPath": "/good"}, "response": {"body": "served"}})
    write(mappings, "partial.json", {"request": {"urlPath": "/partial"},
                                     "response": {"body": "{{> header}}", "transformers": ["response-template"]}})
    write(mappings, "webhook.json", {"request": {"urlPath": "/hook"}, "response": {"status": 200},
                                     "postServeActions": [{"name": "webhook", "parameters": {"url": "http://x"}}]})
    with serve(tmp_path) as running:
        url = running.urls["partner"]
        assert httpx2.get(f"{url}/good").text == "served"
        assert httpx2.get(f"{url}/partial").status_code == 404
        assert httpx2.post(f"{url}/__admin/mappings/reset").status_code == 200  # read again: the same two left out
        assert httpx2.get(f"{url}/good").text == "served"
    from mockpanel.servers.stubs.mappings import read_mapping_dir

    refused: list[str] = []
    kept = read_mapping_dir(mappings, None, None, refused)
    assert [m.url_text() for m in kept] == ["/good"]
    assert len(refused) == 2 and refused[0].startswith("partial.json") and "partials" in refused[0]
    assert refused[1].startswith("webhook.json") and "post-serve actions" in refused[1]


def test_serve_prints_each_mapping_it_left_out(tmp_path):
    from conftest import ServeProcess

    mappings = tmp_path / "wiremock" / "mappings"
    write(mappings, "good.json", {"request": {"urlPath": "/good"}, "response": {"body": "served"}})
    write(mappings, "decorator.json", {"request": {"urlPath": "/d"}, "response": {"body": "{{*inline}}", "transformers": ["response-template"]}})
    (tmp_path / "mockpanel.toml").write_text('[stubs.partner]\nmappings = "wiremock"\n')
    with ServeProcess("--only", "partner", "--config", str(tmp_path / "mockpanel.toml"), cwd=tmp_path) as serve_process:
        url = serve_process.urls(1)["partner"]
        assert httpx2.get(f"{url}/good").text == "served"
        assert serve_process.stop() == 0
        printed = serve_process.proc.stderr.read()
        assert "partner: mapping left out, the others served: decorator.json" in printed


def test_block_loops_and_xml_bodies_are_bounded(tmp_path):
    mappings = tmp_path / "wiremock" / "mappings"
    write(mappings, "loops.json", {"request": {"method": "POST", "urlPath": "/loops"}, "response": {
        "transformers": ["response-template"],
        "body": "{{#each (jsonPath request.body '$.a')}}{{#each (jsonPath request.body '$.a')}}{{/each}}{{/each}}done"}})
    write(mappings, "xpath.json", {"request": {"method": "POST", "urlPath": "/xml",
                                               "bodyPatterns": [{"matchesXPath": "//secret[contains(., 'root')]"}]},
                                   "response": {"body": "matched"}})
    with serve(tmp_path) as running:
        url = running.urls["partner"]
        small = httpx2.post(f"{url}/loops", json={"a": list(range(10))})
        assert (small.status_code, small.text) == (200, "done")
        looping = httpx2.post(f"{url}/loops", json={"a": list(range(1000))})  # a million turns: past the budget
        assert looping.status_code == 422 and "loop more than" in looping.json()["detail"]
        laughs = ('<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "ha"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
                  '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">]><secret>&d;</secret>')
        assert httpx2.post(f"{url}/xml", content=laughs).status_code == 404
        external = '<?xml version="1.0"?><!DOCTYPE s [<!ENTITY x SYSTEM "file:///etc/passwd">]><secret>&x;</secret>'
        assert httpx2.post(f"{url}/xml", content=external).status_code == 404  # /etc/passwd's "root" never read
        assert httpx2.post(f"{url}/xml", content="<secret>root</secret>").text == "matched"
        assert httpx2.post(f"{url}/xml", content="<unclosed").status_code == 404


def test_json_nested_past_pythons_stack_is_no_json_to_matchers_and_templates(tmp_path):
    """A body of 100,000 nested arrays: json.loads raises RecursionError, which was a 500 for an equalToJson mapping
    and a jsonPath template; it is a body that is not JSON (no match, an empty value)."""
    mappings = tmp_path / "wiremock" / "mappings"
    write(mappings, "json.json", {"request": {"method": "POST", "urlPath": "/json", "bodyPatterns": [{"equalToJson": {"a": 1}}]},
                                  "response": {"body": "matched"}})
    write(mappings, "path.json", {"request": {"method": "POST", "urlPath": "/path"}, "response": {
        "transformers": ["response-template"], "body": "[{{jsonPath request.body '$.a'}}]"}})
    deep = b"[" * 100_000 + b"]" * 100_000
    with serve(tmp_path) as running:
        url = running.urls["partner"]
        assert httpx2.post(f"{url}/json", content=deep).status_code == 404
        assert (httpx2.post(f"{url}/path", content=deep).status_code, httpx2.post(f"{url}/path", content=deep).text) == (200, "[]")
        assert httpx2.post(f"{url}/json", json={"a": 1}).text == "matched"
