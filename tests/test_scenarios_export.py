"""Scenarios (timed, seeded fault schedules) and journal export (JSON lines, HAR, --journal-out)."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import httpx2
import pytest

from conftest import ServeProcess, documentation
from mockpanel.scenario import ScenarioError, load_scenario, parse_duration
from mockpanel.testing import Mocks, settings_for

FLAKY = """
name = "flaky"
seed = 7

[[step]]
at = 0
server = "auth"
for = "1.5s"
faults = { error_rate = 1.0, error_codes = [503] }

[[step]]
at = 0
server = "webhooks"
faults = { fail_next = 3 }
"""


def wait_for(check, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


@pytest.mark.parametrize("raw, seconds", [(5, 5.0), (2.5, 2.5), ("500ms", 0.5), ("5s", 5.0), ("2m", 120.0), (" 10 s ", 10.0)])
def test_durations(raw, seconds):
    assert parse_duration(raw) == seconds


@pytest.mark.parametrize("text, message", [
    ('[[step]]\nserver = "s3"\nfaults = { error_rate = 0.3 }', "step 1: server 's3' is not running (running: auth, webhooks)"),
    ('[[step]]\nat = "soon"\nserver = "auth"\nfaults = { error_rate = 0.3 }', "step 1: 'soon' is not a duration"),
    ('[[step]]\nserver = "auth"\nfaults = { error_rate = 3 }', "step 1: faults.error_rate: Input should be less than or equal to 1"),
    ('[[step]]\nserver = "auth"\nfaults = { erorr_rate = 0.3 }', "step 1: faults.erorr_rate: Extra inputs are not permitted"),
    ('[[step]]\nserver = "auth"\nfault = { error_rate = 0.3 }', "step 1: unknown key(s) fault"),
    ('name = "x"', "no steps"),
    ('[[step]\n', "not valid TOML"),
    ('[[step]]\nserver = "webhooks"\ntoken_faults = { expired = true }', "step 1: token_faults are the auth server's"),
    ('[[step]]\nserver = "auth"\ntoken_faults = { expird = true }', "step 1: unknown token fault(s) expird"),
    ('[[step]]\nserver = "auth"\nissuer = "x"\nfaults = { error_rate = 0.3 }', "step 1: issuer goes with token_faults"),
])
def test_a_bad_scenario_is_one_line_naming_the_step(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path, ["auth", "webhooks"])
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_serve_refuses_a_bad_scenario_before_starting(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('[[step]]\nserver = "nope"\nfaults = { fail_next = 1 }')
    proc = subprocess.run([sys.executable, "-m", "mockpanel", "serve", "--only", "auth", "--auth-port", "0", "--scenario", str(path)],
                          capture_output=True, text=True, timeout=30, cwd=tmp_path)
    assert proc.returncode == 2
    assert "step 1: server 'nope' is not running" in proc.stderr


def test_serve_runs_the_schedule_and_journals_each_step(tmp_path):
    scenario = tmp_path / "flaky.toml"
    scenario.write_text(FLAKY)
    journal = tmp_path / "journal.jsonl"
    with ServeProcess("--only", "auth,webhooks", "--auth-port", "0", "--webhooks-port", "0", "--scenario", str(scenario),
                      "--journal-out", str(journal), "--log-format", "json") as serve:
        lines = [json.loads(serve.readline()) for _ in range(2)]
        urls = {line["server"]: line["url"] for line in lines}
        assert wait_for(lambda: httpx2.get(urls["auth"] + "/__mockpanel/faults").json()["error_rate"] == 1.0)
        r = httpx2.get(urls["auth"] + "/health")
        assert r.status_code == 503
        statuses = [httpx2.post(urls["webhooks"] + "/webhooks/billing", json={"n": i}).status_code for i in range(4)]
        assert statuses == [500, 500, 500, 200]
        # after `for = 1.5s` the auth server is back to its own policy
        assert wait_for(lambda: httpx2.get(urls["auth"] + "/health").status_code == 200, timeout=5)
        entries = httpx2.get(urls["auth"] + "/__mockpanel/requests?format=jsonl").text.splitlines()
        faults = [json.loads(line)["fault"] for line in entries]
        assert faults[0] == "error_rate:503 (scenario flaky, step 1)"
        assert faults[-1] is None
        hooks = httpx2.get(urls["webhooks"] + "/__mockpanel/requests").json()["requests"]
        assert [e["fault"] for e in hooks] == ["fail_next:500 (scenario flaky, step 2)"] * 3 + [None]
        # the journal file has every request, as it happened, whatever the server
        assert wait_for(lambda: len(journal.read_text().splitlines()) == len(entries) + 4)
        written = [json.loads(line) for line in journal.read_text().splitlines()]
        assert [w["server"] for w in written].count("webhooks") == 4
        assert written[0]["fault"] == "error_rate:503 (scenario flaky, step 1)"
        assert serve.stop() == 0
        events = [json.loads(line) for line in serve.rest().splitlines()]
    messages = [e["message"] for e in events if e.get("event") == "scenario"]
    assert "scenario flaky: step 1 at 0s: auth error_rate=1.0, error_codes=[503], seed=8 for 1.5s" in messages
    assert any("step 1 ended" in m for m in messages)


def test_a_seeded_scenario_repeats_its_decisions(tmp_path):
    path = tmp_path / "half.toml"
    path.write_text('seed = 3\n[[step]]\nserver = "auth"\nfaults = { error_rate = 0.5, error_codes = [500, 503] }')
    with Mocks(settings_for(["auth"])) as mocks:
        scenario = load_scenario(path, ["auth"])
        runs = []
        for _ in range(2):
            mocks.reset()
            mocks.call(mocks.hub.start_scenario(scenario))
            assert wait_for(lambda: mocks.run(lambda: mocks["auth"].ctx.faults.source))
            runs.append([httpx2.get(mocks.url("auth") + "/health").status_code for _ in range(30)])
        assert runs[0] == runs[1]
        assert {200, 500, 503} <= set(runs[0])


def test_a_persons_change_during_a_step_is_kept_when_the_step_ends(tmp_path):
    path = tmp_path / "short.toml"
    path.write_text('[[step]]\nserver = "auth"\nfor = "300ms"\nfaults = { error_rate = 1.0 }')
    with Mocks(settings_for(["auth"])) as mocks:
        mocks.call(mocks.hub.start_scenario(load_scenario(path, ["auth"])))
        assert wait_for(lambda: mocks.run(lambda: mocks["auth"].ctx.faults.policy.error_rate) == 1.0)
        httpx2.patch(mocks.url("auth") + "/__mockpanel/faults", json={"fail_next": 2}).raise_for_status()
        assert wait_for(lambda: mocks.run(lambda: mocks.hub.scenario_run.finished))  # the step has ended
        policy = httpx2.get(mocks.url("auth") + "/__mockpanel/faults").json()
        assert (policy["error_rate"], policy["fail_next"]) == (1.0, 2)


def test_a_scenario_step_sets_token_faults_and_takes_them_back(tmp_path):
    import jwt

    path = tmp_path / "tokens.toml"
    path.write_text('[[step]]\nserver = "auth"\nfor = "300ms"\ntoken_faults = { expired = true }\n'
                    '[[step]]\nserver = "auth"\nissuer = "tenant-a"\ntoken_faults = { audience = "someone-else" }')
    with Mocks(settings_for(["auth"])) as mocks:
        url = mocks.url("auth")
        provider = mocks.facade("auth").oidc

        async def start_and_mint():  # in one turn of the loop: the 300 ms step cannot end before the token is made
            await mocks.hub.start_scenario(load_scenario(path, ["auth"]))
            issuer = provider.issuer("")
            return dict(issuer.faults), provider.token_for(issuer, url, None, "svc")["access_token"]

        faults, token = mocks.call(start_and_mint())
        assert faults == {"expired": True}
        claims = jwt.decode(token, options={"verify_signature": False})
        assert claims["exp"] < time.time()
        assert httpx2.get(f"{url}/__mockpanel/oidc/faults", params={"issuer": "tenant-a"}).json() == {"audience": "someone-else"}
        assert wait_for(lambda: mocks.run(lambda: mocks.hub.scenario_run.finished))
        assert wait_for(lambda: httpx2.get(f"{url}/__mockpanel/oidc/faults").json() == {})  # the step's "for" ended
        assert httpx2.get(f"{url}/__mockpanel/oidc/faults", params={"issuer": "tenant-a"}).json() == {"audience": "someone-else"}


def test_export_formats(auth_url):
    httpx2.post(auth_url + "/api/auth/login?x=1", json={"email": "alice@example.com", "password": "password123"})
    httpx2.get(auth_url + "/health?simulate_error=502")
    lines = httpx2.get(auth_url + "/__mockpanel/requests", params={"format": "jsonl"})
    assert lines.headers["content-type"].startswith("application/x-ndjson")
    rows = [json.loads(line) for line in lines.text.splitlines()]
    assert [(r["method"], r["path"], r["status"]) for r in rows] == [("POST", "/api/auth/login", 200), ("GET", "/health", 502)]

    har = httpx2.get(auth_url + "/__mockpanel/requests", params={"format": "har"}).json()["log"]
    assert har["version"] == "1.2" and har["creator"]["name"] == "mockpanel"
    login, health = har["entries"]
    assert login["request"]["url"] == auth_url + "/api/auth/login?x=1"
    assert login["request"]["queryString"] == [{"name": "x", "value": "1"}]
    assert json.loads(login["request"]["postData"]["text"]) == {"email": "alice@example.com", "password": "password123"}
    assert login["request"]["postData"]["mimeType"] == "application/json"
    assert login["response"]["status"] == 200 and login["response"]["statusText"] == "OK"
    assert "access_token" in json.loads(login["response"]["content"]["text"])
    assert health["response"]["status"] == 502 and health["_fault"] == "simulate_error:502"
    assert health["startedDateTime"].endswith("Z") and health["time"] >= 0

    bad = httpx2.get(auth_url + "/__mockpanel/requests", params={"format": "xml"})
    assert bad.status_code == 422 and "format" in bad.text


def test_the_readme_scenario_is_valid(tmp_path):
    from conftest import ROOT
    import re

    text = documentation()
    block = re.search(r"```toml\n(# flaky\.toml\n.*?)```", text, re.S).group(1)
    path = tmp_path / "flaky.toml"
    path.write_text(block)
    scenario = load_scenario(path, ["auth", "s3", "webhooks", "client"])
    assert [(s.server, s.at_s, s.for_s) for s in scenario.steps] == [("s3", 5.0, 10.0), ("webhooks", 0.0, None), ("auth", 20.0, 30.0),
                                                                    ("s3", 40.0, 20.0), ("", 60.0, None)]
    assert scenario.steps[4].clock == {"advance_s": 86400}  # the mocks' one clock, every server's
    assert scenario.steps[3].toxics == ({"name": "step4-1-bandwidth", "type": "bandwidth", "stream": "upstream", "toxicity": 1.0,
                                         "attributes": {"rate": 50}},)
    assert scenario.steps[2].token_faults == {"expired": True} and scenario.steps[2].faults == {}
    assert scenario.steps[0].faults == {"error_rate": 0.3, "error_codes": [503], "seed": 8}
