"""The Stub any API page's examples, run as written: its mockpanel.toml, its WireMock mapping, its admin-client code."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import httpx2

from conftest import documentation
from mockpanel.testing import RunningHub, settings_for

PETSTORE = Path(__file__).parent / "data" / "petstore.yaml"


def block(name: str, language: str) -> str:
    found = re.search(rf"<!-- example: {name} -->\n```{language}\n(.*?)```", documentation(), re.S)
    assert found, f"the docs lost their {name} example (docs/servers/stubs.md)"
    return found.group(1)


def test_the_stub_pages_examples_run_as_written(tmp_path):
    (tmp_path / "mockpanel.toml").write_text(block("stubs-toml", "toml"))
    (tmp_path / "wiremock" / "mappings").mkdir(parents=True)
    (tmp_path / "wiremock" / "mappings" / "customer.json").write_text(block("stubs-mapping", "json"))
    shutil.copy(PETSTORE, tmp_path / "petstore.yaml")
    settings = settings_for(["payments", "petstore", "partner"], config=tmp_path / "mockpanel.toml",
                            environ={"MOCKPANEL_PAYMENTS_PORT": "0"})
    assert settings.servers["payments"].port == 0 and settings.servers["partner"].values["mode"] is None
    with RunningHub(settings) as running:
        payments = running.urls["payments"]
        customer = httpx2.get(f"{payments}/v1/customers/7", params={"expand": "orders"}, headers={"Accept": "application/json"})
        assert customer.json() == {"id": 7, "name": "Ada"}
        assert httpx2.get(running.urls["petstore"] + "/pets").status_code == 200
        status = httpx2.get(running.urls["partner"] + "/__admin/recordings/status").json()
        assert status == {"status": "Recording"}  # record set: it starts recording (this test sends it nothing)
        exec(compile(block("stubs-wiremock-client", "python"), "docs/servers/stubs.md", "exec"), {"PAYMENTS_URL": payments})


def test_the_pytest_plugin_starts_a_stub_server_of_the_projects_config(pytester):
    """mockpanel_config names the project's mockpanel.toml; its stub servers are started by name like any mock, and a
    test sets a mapping through WireMock's admin API and counts the calls."""
    pytester.makefile(".toml", mockpanel='[stubs.payments]\nmappings = "stubs/mappings"\n')
    mappings = pytester.path / "stubs" / "mappings"
    mappings.mkdir(parents=True)
    (mappings / "charge.json").write_text('{"request": {"urlPath": "/v1/charges/ch_1"}, "response": {"jsonBody": {"paid": true}}}')
    pytester.makeini("[pytest]\nmockpanel_servers = payments\nmockpanel_config = mockpanel.toml\n")
    pytester.makepyfile(test_payments='''
import httpx2

def test_charge(mockpanel):
    url = mockpanel.url("payments")
    assert httpx2.get(url + "/v1/charges/ch_1").json() == {"paid": True}
    count = httpx2.post(url + "/__admin/requests/count", json={"urlPath": "/v1/charges/ch_1"}).json()
    assert count == {"count": 1}

def test_a_fault_on_the_stub(mockpanel):
    with mockpanel.faults("payments", error_rate=1.0, error_codes=[503]):
        assert httpx2.get(mockpanel.url("payments") + "/v1/charges/ch_1").status_code == 503
''')
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


def test_a_test_declares_a_stub_server_in_code_and_a_scenario_step_faults_it(pytester):
    """No file: mockpanel_factory(..., stubs={...}) starts a stub server from a table given in the test; a scenario
    file's step names a stub server of the config like any mock."""
    pytester.makefile(".toml", mockpanel='[stubs.geo]\nopenapi = "geo.yaml"\n')
    pytester.makefile(".yaml", geo="""
openapi: 3.0.3
info: {title: Geocoder, version: "1"}
paths:
  /geocode:
    get:
      parameters: [{name: q, in: query, required: true, schema: {type: string, minLength: 2}}]
      responses:
        "200": {description: ok, content: {application/json: {example: {lat: 52.52, lon: 13.40}}}}
""")
    pytester.makefile(".toml", flaky='[[step]]\nat = 0\nserver = "geo"\nfaults = { error_rate = 1.0, error_codes = [503] }\n')
    pytester.makeini("[pytest]\nmockpanel_servers = geo\nmockpanel_config = mockpanel.toml\n")
    pytester.makepyfile(test_geo='''
import json
import httpx2

def test_declared_in_code(mockpanel_factory, tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "a.json").write_text(json.dumps({"request": {"url": "/ping"}, "response": {"body": "pong"}}))
    mocks = mockpanel_factory(["pay"], stubs={"pay": {"mappings": str(tmp_path / "m")}})
    assert httpx2.get(mocks.url("pay") + "/ping").text == "pong"

def test_the_scenario_faults_the_stub(mockpanel):
    assert httpx2.get(mockpanel.url("geo") + "/geocode", params={"q": "Berlin"}).status_code == 503
''')
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--mockpanel-scenario", "flaky.toml")
    result.assert_outcomes(passed=2)
