"""Stub servers answering from WireMock's JSON mappings, driven by WireMock's own Python admin client, with a mapping
directory written in WireMock's documented format; and the refusals: a regex that backtracks, a body file outside
the files directory, a page on another site calling the admin API."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx2
import pytest

from mockpanel.settings import SettingsError
from mockpanel.testing import RunningHub, settings_for


def stub_config(tmp_path: Path, body: str) -> Path:
    config = tmp_path / "mockpanel.toml"
    config.write_text(body)
    return config


def write_mapping(directory: Path, name: str, mapping: dict) -> None:
    (directory / name).parent.mkdir(parents=True, exist_ok=True)
    (directory / name).write_text(json.dumps(mapping, indent=2))


@pytest.fixture
def admin_stub(tmp_path):
    config = stub_config(tmp_path, '[stubs.partner]\nmappings = "wiremock/mappings"\n')
    (tmp_path / "wiremock" / "mappings").mkdir(parents=True)
    with RunningHub(settings_for(["partner"], config=config)) as running:
        yield running.urls["partner"]


@pytest.fixture
def wiremock_client(admin_stub):
    from wiremock.constants import Config

    old = Config.base_url
    Config.base_url = admin_stub + "/__admin"
    yield admin_stub
    Config.base_url = old


def test_the_wiremock_admin_client_creates_lists_counts_and_deletes_mappings(wiremock_client):
    from wiremock.client import HttpMethods, Mapping, MappingRequest, MappingResponse, Mappings, Requests
    from wiremock.resources.near_misses import NearMissMatchPatternRequest as Pattern

    url = wiremock_client
    created = Mappings.create_mapping(Mapping(
        priority=100,
        request=MappingRequest(method=HttpMethods.GET, url_path="/v1/charges", query_parameters={"currency": {"equalTo": "eur"}}),
        response=MappingResponse(status=200, json_body={"data": [{"id": "ch_1", "amount": 500}]}, headers={"X-Partner": "yes"}),
        persistent=False,
    ))
    assert created.id

    answer = httpx2.get(f"{url}/v1/charges", params={"currency": "eur"})
    assert answer.status_code == 200
    assert answer.json() == {"data": [{"id": "ch_1", "amount": 500}]}
    assert answer.headers["x-partner"] == "yes"
    assert httpx2.get(f"{url}/v1/charges", params={"currency": "usd"}).status_code == 404

    listed = Mappings.retrieve_all_mappings()
    assert [m.id for m in listed.mappings] == [created.id]
    assert listed.meta.total == 1
    count = Requests.get_matching_request_count(Pattern(method=HttpMethods.GET, url_path="/v1/charges"))
    assert count.count == 2
    found = Requests.get_matching_requests(Pattern(method=HttpMethods.GET, url_path="/v1/charges",
                                                   query_parameters={"currency": {"equalTo": "usd"}}))
    assert [r.url for r in found.requests] == ["/v1/charges?currency=usd"]
    unmatched = Requests.get_unmatched_requests()
    assert [r.url for r in unmatched.requests] == ["/v1/charges?currency=usd"]

    Mappings.delete_mapping(created.id)
    assert Mappings.retrieve_all_mappings().mappings in (None, [])
    assert httpx2.get(f"{url}/v1/charges", params={"currency": "eur"}).status_code == 404
    Requests.reset_request_journal()
    assert Requests.get_matching_request_count(Pattern(method=HttpMethods.ANY, url_path_pattern="/.*")).count == 0


def test_the_admin_client_sees_a_bad_mapping_refused_with_its_place(wiremock_client):
    from wiremock.client import Mapping, MappingRequest, MappingResponse, Mappings
    from wiremock.exceptions import InvalidInputException

    with pytest.raises(InvalidInputException) as refused:
        Mappings.create_mapping(Mapping(request=MappingRequest(method="GET", url="/x", headers={"Accept": {"eqalTo": "json"}}),
                                        response=MappingResponse(status=200)))
    assert "request.headers.Accept: unknown matcher eqalTo" in str(refused.value)
    assert Mappings.retrieve_all_mappings().meta.total == 0


def test_scenarios_move_on_and_reset_through_the_admin_client(wiremock_client):
    from wiremock.client import Mapping, MappingRequest, MappingResponse, Mappings, Scenarios

    url = wiremock_client
    for required, new, body in (("Started", "Paid", "unpaid"), ("Paid", None, "paid")):
        Mappings.create_mapping(Mapping(scenario_name="invoice", required_scenario_state=required, new_scenario_state=new,
                                        request=MappingRequest(method="GET", url="/invoice"), response=MappingResponse(status=200, body=body)))
    assert [httpx2.get(f"{url}/invoice").text for _ in range(3)] == ["unpaid", "paid", "paid"]
    Scenarios.reset_all_scenarios()
    assert httpx2.get(f"{url}/invoice").text == "unpaid"


def test_a_wiremock_mapping_directory_is_served_unchanged(tmp_path):
    """Mappings as WireMock's documentation writes them: every matcher kind the issue names, priorities, files,
    faults and a scenario, read from mappings/ and __files/ beside it."""
    root = tmp_path / "wiremock"
    mappings = root / "mappings"
    (root / "__files").mkdir(parents=True)
    (root / "__files" / "invoice.json").write_text('{"invoice": "inv_1", "lines": 3}')
    write_mapping(mappings, "catch-all.json", {"priority": 10, "request": {"method": "ANY", "urlPattern": "/api/.*"},
                                               "response": {"status": 418, "body": "catch-all"}})
    write_mapping(mappings, "customer.json", {
        "request": {"method": "GET", "urlPathPattern": "/api/customers/[0-9]+",
                    "headers": {"Accept": {"contains": "json"}, "X-Debug": {"absent": True}},
                    "queryParameters": {"expand": {"matches": "(address|orders)"}}},
        "response": {"status": 200, "jsonBody": {"id": 7, "name": "Ada"}, "headers": {"Cache-Control": "no-store"}}})
    write_mapping(mappings, "orders.json", {"mappings": [
        {"request": {"method": "POST", "url": "/api/orders",
                     "bodyPatterns": [{"equalToJson": {"sku": "A-1", "qty": 2}, "ignoreExtraElements": True}]},
         "response": {"status": 201, "jsonBody": {"order": "o_1"}}},
        {"request": {"method": "POST", "urlPath": "/api/orders",
                     "bodyPatterns": [{"matchesJsonPath": "$.items[?(@.qty > 10)]"}]},
         "response": {"status": 422, "jsonBody": {"error": "too many"}}},
        {"request": {"method": "POST", "urlPath": "/api/orders",
                     "bodyPatterns": [{"matchesJsonPath": {"expression": "$.coupon", "equalTo": "FREE"}}]},
         "response": {"status": 402, "body": "no free lunch"}},
    ]})
    write_mapping(mappings, "invoice.json", {"request": {"method": "GET", "url": "/api/invoices/1"},
                                             "response": {"status": 200, "bodyFileName": "invoice.json",
                                                          "headers": {"Content-Type": "application/json"}}})
    write_mapping(mappings, "faults/reset.json", {"request": {"urlPath": "/api/flaky"}, "response": {"fault": "CONNECTION_RESET_BY_PEER"}})
    write_mapping(mappings, "faults/empty.json", {"request": {"urlPath": "/api/empty"}, "response": {"fault": "EMPTY_RESPONSE"}})
    write_mapping(mappings, "slow.json", {"request": {"urlPath": "/api/slow"},
                                          "response": {"status": 200, "body": "late", "fixedDelayMilliseconds": 150}})
    config = stub_config(tmp_path, '[stubs.partner]\nport = 0\nmappings = "wiremock/mappings"\n')
    with RunningHub(settings_for(["partner"], config=config)) as running:
        url = running.urls["partner"]
        customer = httpx2.get(f"{url}/api/customers/42", params={"expand": "orders"}, headers={"Accept": "application/json"})
        assert (customer.status_code, customer.json(), customer.headers["cache-control"]) == (200, {"id": 7, "name": "Ada"}, "no-store")
        # One matcher off each: the catch-all (priority 10) answers instead
        assert httpx2.get(f"{url}/api/customers/42", params={"expand": "everything"}, headers={"Accept": "application/json"}).status_code == 418
        assert httpx2.get(f"{url}/api/customers/42", params={"expand": "orders"},
                          headers={"Accept": "application/json", "X-Debug": "1"}).status_code == 418
        assert httpx2.get(f"{url}/api/customers/abc", params={"expand": "orders"}, headers={"Accept": "application/json"}).status_code == 418

        assert httpx2.post(f"{url}/api/orders", json={"qty": 2, "sku": "A-1", "note": "x"}).json() == {"order": "o_1"}
        assert httpx2.post(f"{url}/api/orders", json={"items": [{"qty": 1}, {"qty": 12}]}).status_code == 422
        assert httpx2.post(f"{url}/api/orders", json={"items": [{"qty": 1}]}).status_code == 418
        assert httpx2.post(f"{url}/api/orders", json={"coupon": "FREE"}).status_code == 402
        assert httpx2.post(f"{url}/api/orders", json={"coupon": "PAID"}).status_code == 418

        invoice = httpx2.get(f"{url}/api/invoices/1")
        assert invoice.json() == {"invoice": "inv_1", "lines": 3}

        with pytest.raises((httpx2.ReadError, httpx2.RemoteProtocolError)):
            httpx2.get(f"{url}/api/flaky")
        with pytest.raises(httpx2.RemoteProtocolError):
            httpx2.get(f"{url}/api/empty")
        assert httpx2.get(f"{url}/api/slow").text == "late"
        slow = httpx2.get(f"{url}/__mockpanel/requests", params={"path": "/api/slow"}).json()["requests"]
        assert slow[-1]["duration_ms"] >= 140  # the mapping's delay, as the server measured it

        # Outside /api/ nothing matches: a 404 naming the closest mappings and what differs
        miss = httpx2.get(f"{url}/apx/customers/42")
        assert miss.status_code == 404
        report = miss.json()
        assert report["detail"].startswith("no stub mapping matches GET /apx/customers/42; the closest: ")
        assert len(report["nearMisses"]) == 3
        assert all(any(d.endswith("got /apx/customers/42") for d in m["differences"]) for m in report["nearMisses"])

        # The journal and the faults are every server's: an injected error answers before any mapping
        httpx2.put(f"{url}/__mockpanel/faults", json={"error_rate": 1.0, "error_codes": [503]}).raise_for_status()
        assert httpx2.get(f"{url}/api/invoices/1").status_code == 503
        httpx2.delete(f"{url}/__mockpanel/faults").raise_for_status()
        assert httpx2.get(f"{url}/api/invoices/1").status_code == 200


def test_a_catastrophic_regex_fails_its_match_and_the_server_keeps_serving(tmp_path):
    mappings = tmp_path / "mappings"
    write_mapping(mappings, "evil.json", {"request": {"method": "GET", "urlPathPattern": "/(x+x+)+y"},
                                          "response": {"status": 200, "body": "never"}})
    write_mapping(mappings, "fine.json", {"request": {"method": "GET", "url": "/ok"}, "response": {"status": 200, "body": "ok"}})
    config = stub_config(tmp_path, '[stubs.partner]\nmappings = "mappings"\n')
    with RunningHub(settings_for(["partner"], config=config)) as running:
        url = running.urls["partner"]
        miss = httpx2.get(f"{url}/{'x' * 4000}", timeout=20)
        assert miss.status_code == 404
        assert "ran past 50 ms" in json.dumps(miss.json())
        assert httpx2.get(f"{url}/ok").text == "ok"


def test_files_are_read_only_under_the_declared_directories(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("top secret")
    (tmp_path / "stub" / "__files").mkdir(parents=True)
    (tmp_path / "stub" / "__files" / "link.txt").symlink_to(secret)
    for name in ("../../secret.txt", "/etc/passwd", "link.txt"):
        write_mapping(tmp_path / "stub" / "mappings", "leak.json", {"request": {"url": "/leak"}, "response": {"bodyFileName": name}})
        config = stub_config(tmp_path, '[stubs.partner]\nmappings = "stub/mappings"\n')
        with pytest.raises(SettingsError, match=r"\[stubs.partner\]: leak.json: response.bodyFileName: .* is outside"):
            RunningHub(settings_for(["partner"], config=config)).start()

    # A mapping file that is a link to a file outside the mappings directory is refused too
    (tmp_path / "stub" / "mappings" / "leak.json").unlink()
    outside = tmp_path / "elsewhere.json"
    outside.write_text(json.dumps({"request": {"url": "/x"}, "response": {"body": "outside"}}))
    (tmp_path / "stub" / "mappings" / "linked.json").symlink_to(outside)
    with pytest.raises(SettingsError, match=r"linked.json: .* is outside"):
        RunningHub(settings_for(["partner"], config=config)).start()
    (tmp_path / "stub" / "mappings" / "linked.json").unlink()

    # Through the admin API the same mapping is refused in WireMock's error format, and nothing is added
    with RunningHub(settings_for(["partner"], config=config)) as running:
        url = running.urls["partner"]
        refused = httpx2.post(f"{url}/__admin/mappings", json={"request": {"url": "/leak"}, "response": {"bodyFileName": "../../secret.txt"}})
        assert refused.status_code == 422
        assert "outside" in refused.json()["errors"][0]["title"]
        assert httpx2.get(f"{url}/__admin/mappings").json()["meta"]["total"] == 0
        assert "top secret" not in httpx2.get(f"{url}/leak").text


def test_the_admin_api_refuses_another_sites_page_and_wants_the_admin_token(tmp_path):
    (tmp_path / "mappings").mkdir()
    config = stub_config(tmp_path, '[stubs.partner]\nmappings = "mappings"\n')
    mapping = {"request": {"url": "/pwned"}, "response": {"status": 200, "body": "pwned"}}
    with RunningHub(settings_for(["partner"], config=config)) as running:
        url = running.urls["partner"]
        # A simple request (no preflight) a page could send: text/plain, from another origin
        forged = httpx2.post(f"{url}/__admin/mappings", content=json.dumps(mapping),
                             headers={"content-type": "text/plain", "origin": "http://evil.example", "sec-fetch-site": "cross-site"})
        assert forged.status_code == 403
        assert httpx2.post(f"{url}/__admin/mappings", content=json.dumps(mapping), headers={"content-type": "text/plain"}).status_code == 415
        assert httpx2.get(f"{url}/pwned").status_code == 404
        # The admin API is not journaled and takes no injected fault, as the control API
        httpx2.put(f"{url}/__mockpanel/faults", json={"error_rate": 1.0}).raise_for_status()
        assert httpx2.get(f"{url}/__admin/mappings").status_code == 200
        assert httpx2.get(f"{url}/__mockpanel/requests", params={"path": "/__admin"}).json()["count"] == 0

    with RunningHub(settings_for(["partner"], {"mockpanel": {"admin_token": "t0ken"}}, config=config)) as running:
        url = running.urls["partner"]
        assert httpx2.post(f"{url}/__admin/mappings", json=mapping).status_code == 401
        assert httpx2.post(f"{url}/__admin/mappings", json=mapping, headers={"authorization": "Bearer t0ken"}).status_code == 201
        assert httpx2.get(f"{url}/pwned").text == "pwned"


def test_a_page_on_another_site_cannot_add_a_mapping(tmp_path):
    from conftest import page_on_another_site

    (tmp_path / "mappings").mkdir()
    config = stub_config(tmp_path, '[stubs.partner]\nmappings = "mappings"\n')
    with RunningHub(settings_for(["partner"], config=config)) as running:
        url = running.urls["partner"]
        with page_on_another_site() as page:
            outcome = page.evaluate("""async (url) => {
                const body = JSON.stringify({request: {url: "/pwned"}, response: {status: 200, body: "pwned"}});
                const results = [];
                for (const init of [{method: "POST", body, mode: "no-cors", headers: {"content-type": "text/plain"}},
                                    {method: "POST", body, headers: {"content-type": "application/json"}}]) {
                    try { const r = await fetch(url + "/__admin/mappings", init); results.push(r.status); }
                    catch (e) { results.push("blocked"); }
                }
                return results;
            }""", url)
        assert outcome[1] in ("blocked", 403)
        assert httpx2.get(f"{url}/__admin/mappings").json()["meta"]["total"] == 0
        assert httpx2.get(f"{url}/pwned").status_code == 404


def test_settings_name_the_stub_table_that_is_wrong(tmp_path):
    cases = {
        '[stubs.auth]\nmappings = "m"\n': "auth is taken",
        '[stubs.mockpanel]\nmappings = "m"\n': "mockpanel is taken",
        '[stubs.payments]\nport = 8090\n': "none is set",
        '[stubs.payments]\nmapings = "m"\n': "unknown key(s) mapings",
        '[stubs.Pay-ments]\nmappings = "m"\n': "lower-case letters",
        '[stubs.payments]\nrecord = "ftp://x"\n': "http:// or https://",
    }
    for body, message in cases.items():
        with pytest.raises(SettingsError, match=message.replace("(", r"\(").replace(")", r"\)")):
            settings_for(["payments"] if "payments" in body else [], config=stub_config(tmp_path, body))
    broken = tmp_path / "broken"
    write_mapping(broken, "bad.json", {"request": {"url": "/x", "headers": {"Accept": {"matches": "("}}}, "response": {}})
    with pytest.raises(SettingsError, match=r"bad.json: request.headers.Accept.matches: invalid regex"):
        RunningHub(settings_for(["payments"], config=stub_config(tmp_path, '[stubs.payments]\nmappings = "broken"\n'))).start()


def test_a_stub_server_under_a_network_toxic_from_toxiproxys_client(tmp_path):
    """Network toxics are every server's: Toxiproxy's own client cuts a stub's answers short, then lets them through."""
    from toxiproxy import Toxiproxy

    mappings = tmp_path / "mappings"
    write_mapping(mappings, "big.json", {"request": {"url": "/report"}, "response": {"status": 200, "body": "r" * 10_000}})
    config = stub_config(tmp_path, '[stubs.partner]\nmappings = "mappings"\n')
    with RunningHub(settings_for(["partner"], config=config, environ={"MOCKPANEL_TOXIPROXY_PORT": "0"})) as running:
        url = running.urls["partner"]
        toxiproxy = Toxiproxy()
        toxiproxy.update_api_consumer("127.0.0.1", int(running.run(lambda: running.hub.toxiproxy_url).rsplit(":", 1)[1]))
        stub = toxiproxy.get_proxy("partner")
        stub.add_toxic(type="limit_data", attributes={"bytes": 1000}, name="cut")
        with pytest.raises((httpx2.RemoteProtocolError, httpx2.ReadError)):
            httpx2.get(f"{url}/report")
        stub.destroy_toxic("cut")
        assert len(httpx2.get(f"{url}/report").content) == 10_000


def test_a_flood_of_one_unmatched_request_is_compared_with_the_mappings_once(tmp_path):
    """Near misses cost a comparison per mapping: the report for the same request is reused until the mappings (or a
    scenario's state) change, and at most NEAR_MISS_SCAN mappings are compared."""
    from mockpanel.servers.stubs import Stubs
    from mockpanel.servers.stubs.matching import Incoming
    from mockpanel.servers.stubs.server import NEAR_MISS_SCAN

    stubs = Stubs("partner", mappings_dir=None, files_dir=None, openapi_path=None, upstream=None, mode="replay", seed=0,
                  event=lambda *a, **k: None)
    for i in range(NEAR_MISS_SCAN + 5):
        stubs.add({"priority": 1 if i < NEAR_MISS_SCAN else 9, "request": {"url": f"/item/{i}"}, "response": {}})
    compared = []
    original = type(stubs.mappings[0].pattern).differences

    def counting(self, request, stop_early=False):
        compared.append(1)
        return original(self, request, stop_early)

    type(stubs.mappings[0].pattern).differences = counting
    try:
        def flood():
            return stubs.near_misses(Incoming("GET", f"/item/{NEAR_MISS_SCAN + 2}x", "", {"host": ["x"]}, body=b"{}"))

        first = flood()
        assert len(compared) == NEAR_MISS_SCAN  # the lowest-priority five are never compared
        for _ in range(100):
            assert flood() is first
        assert len(compared) == NEAR_MISS_SCAN
        stubs.add({"request": {"url": "/new"}, "response": {}})
        assert flood() is not first and len(compared) == 2 * NEAR_MISS_SCAN
    finally:
        type(stubs.mappings[0].pattern).differences = original


def test_response_templates_put_the_requests_values_in(tmp_path):
    """WireMock's response-template, as its documentation writes stubs with it: path segments, query, headers, the
    body's JSONPath, random values and dates; unescaped in {{ }} and {{{ }}}, as WireMock 3; partials and unknown helpers refused."""
    mappings = tmp_path / "mappings"
    write_mapping(mappings, "echo.json", {
        "request": {"method": "POST", "urlPathPattern": "/v1/users/[^/]+/orders"},
        "response": {"status": 201, "transformers": ["response-template"],
                     "headers": {"Location": "{{request.baseUrl}}/v1/users/{{request.path.[2]}}/orders/{{randomValue length=8 type='NUMERIC'}}",
                                 "X-Trace": "{{request.headers.X-Trace}}"},
                     "jsonBody": {"user": "{{request.path.[2]}}", "sku": "{{jsonPath request.body '$.sku'}}",
                                  "qty": "{{jsonPath request.body '$.qty'}}", "page": "{{request.query.page}}",
                                  "method": "{{lower request.method}}", "note": "{{request.query.note}}",
                                  "raw": "{{{request.query.note}}}", "day": "{{now format='yyyy-MM-dd'}}",
                                  "id": "{{randomValue type='UUID'}}"}}})
    config = stub_config(tmp_path, '[stubs.partner]\nmappings = "mappings"\n')
    with RunningHub(settings_for(["partner"], config=config)) as running:
        url = running.urls["partner"]
        answer = httpx2.post(f"{url}/v1/users/ada/orders", params={"page": "2", "note": "<b>"}, headers={"X-Trace": "t-1"},
                             json={"sku": "A-1", "qty": 3})
        assert answer.status_code == 201
        body = answer.json()
        assert (body["user"], body["sku"], body["qty"], body["page"], body["method"]) == ("ada", "A-1", "3", "2", "post")
        assert (body["note"], body["raw"]) == ("<b>", "<b>")  # WireMock 3 escapes neither {{ }} nor {{{ }}}
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", body["day"]) and len(body["id"]) == 36
        assert re.fullmatch(rf"{re.escape(url)}/v1/users/ada/orders/\d{{8}}", answer.headers["location"])
        assert answer.headers["x-trace"] == "t-1"

        refused = httpx2.post(f"{url}/__admin/mappings", json={"request": {"url": "/x"}, "response": {
            "transformers": ["response-template"], "body": "{{> partial}}"}})
        assert refused.status_code == 422 and "partials" in refused.json()["detail"]
        unknown = httpx2.post(f"{url}/__admin/mappings", json={"request": {"url": "/x"}, "response": {
            "transformers": ["response-template"], "body": "{{exec 'rm -rf /'}}"}})
        assert unknown.status_code == 422 and "not a helper mockpanel renders" in unknown.json()["detail"]
        huge = httpx2.post(f"{url}/__admin/mappings", json={"request": {"url": "/big"}, "response": {
            "transformers": ["response-template"], "body": "{{randomValue length=999999999}}"}})
        assert huge.status_code == 201
        assert len(httpx2.get(f"{url}/big").text) == 10_000  # a random value is bounded


def test_bulk_import_metadata_paging_and_one_request_through_the_admin_api(wiremock_client):
    from wiremock.client import Mappings, Requests

    url = wiremock_client
    batch = {"mappings": [{"request": {"url": f"/items/{i}"}, "response": {"body": f"item {i}"}, "metadata": {"team": "a" if i % 2 else "b"}}
                          for i in range(5)]}
    bad = {"mappings": [*batch["mappings"], {"request": {"url": "/x", "method": 7}, "response": {}}]}
    refused = httpx2.post(f"{url}/__admin/mappings/import", json=bad)
    assert refused.status_code == 422 and httpx2.get(f"{url}/__admin/mappings").json()["meta"]["total"] == 0  # all or none
    httpx2.post(f"{url}/__admin/mappings/import", json=batch).raise_for_status()
    page = httpx2.get(f"{url}/__admin/mappings", params={"limit": 2, "offset": 1}).json()
    assert len(page["mappings"]) == 2 and page["meta"]["total"] == 5
    team_a = httpx2.post(f"{url}/__admin/mappings/find-by-metadata", json={"matchesJsonPath": "$[?(@.team == 'a')]"}).json()
    assert sorted(m["request"]["url"] for m in team_a["mappings"]) == ["/items/1", "/items/3"]
    Mappings.delete_mapping_by_metadata({"matchesJsonPath": "$[?(@.team == 'b')]"})
    assert Mappings.retrieve_all_mappings().meta.total == 2
    assert httpx2.get(f"{url}/items/3").text == "item 3"
    newest = Requests.get_all_received_requests(limit=1).requests[0]
    one = Requests.get_request(newest.id)
    assert one.request.url == "/items/3" and one.response_definition.status == 200
    assert httpx2.get(f"{url}/__admin/health").json()["status"] == "healthy"
