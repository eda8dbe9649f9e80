"""`serve`'s log says what changed, where, when and by whom: a fault change, a reset, a key rotation (the control
API), a scenario's step, a change from the pytest plugin — as text and as JSON lines; --quiet keeps errors only."""

from __future__ import annotations

import json
import time

import httpx2

from conftest import ServeProcess
from mockpanel.testing import Mocks, settings_for

SCENARIO = 'name = "flaky"\n[[step]]\nserver = "auth"\nat = "0s"\nfaults = { error_rate = 0.5, error_codes = [503] }\n'


def lines_until(serve: ServeProcess, done, limit: float = 30) -> list[str]:
    """serve's stdout lines from its start until `done(lines)` holds (each line waited for, never a fixed time)."""
    lines: list[str] = []
    deadline = time.monotonic() + limit
    while not done(lines):
        assert time.monotonic() < deadline, "\n".join(lines)
        lines.append(serve.readline())
    return lines


def test_every_change_is_a_line_with_its_source_as_text_and_json(tmp_path):
    scenario = tmp_path / "flaky.toml"
    scenario.write_text(SCENARIO)
    for fmt in ("text", "json"):
        ports = tmp_path / f"ports-{fmt}.json"
        with ServeProcess("--only", "auth", "--auth-port", "0", "--log-format", fmt, "--scenario", str(scenario),
                          "--ports-file", str(ports)) as serve:
            first = lines_until(serve, lambda lines: any("scenario flaky" in line and "faults" in line for line in lines))
            auth = json.loads(ports.read_text())["auth"]
            httpx2.patch(f"{auth}/__mockpanel/faults", json={"error_rate": 0.25}).raise_for_status()
            httpx2.post(f"{auth}/__mockpanel/oidc/rotate").raise_for_status()
            httpx2.put(f"{auth}/__mockpanel/oidc/clock", json={"now": 1_800_000_000}).raise_for_status()
            httpx2.post(f"{auth}/__mockpanel/reset").raise_for_status()
            lines = first + lines_until(serve, lambda lines: any("reset" in line and "control API" in line for line in lines))
            text = "\n".join(lines)
            if fmt == "text":
                assert "faults_changed active=true faults=errors 50% 503 (by scenario flaky)" in text
                assert "faults_changed active=true faults=errors 25% 503 (by the control API)" in text
                assert "auth     oidc_rotated issuer=default kid=" in text and "oidc_clock issuer=default now=1800000000" in text
                assert "auth     reset (by the control API)" in text
            else:
                records = [json.loads(line) for line in lines]
                kinds = {(r["event"], r.get("source")) for r in records}
                assert ("faults_changed", "scenario flaky") in kinds  # a scenario's step
                assert ("faults_changed", "the control API") in kinds and ("oidc_rotated", "the control API") in kinds
                assert ("oidc_clock", "the control API") in kinds and ("reset", "the control API") in kinds
                assert all(r["server"] == "auth" and r["time"].endswith("Z") for r in records if r["event"] == "faults_changed")


def test_a_scenario_step_names_the_scenario(tmp_path):
    scenario = tmp_path / "flaky.toml"
    scenario.write_text(SCENARIO)
    with ServeProcess("--only", "auth", "--auth-port", "0", "--scenario", str(scenario)) as serve:
        lines = lines_until(serve, lambda lines: any("faults_changed" in line for line in lines))
        assert any(line.endswith("auth     faults_changed active=true faults=errors 50% 503 (by scenario flaky)") for line in lines)


def test_quiet_keeps_errors_only(tmp_path):
    with ServeProcess("--only", "auth", "--auth-port", "0", "--quiet") as serve:
        auth = serve.urls(1)["auth"]
        httpx2.patch(f"{auth}/__mockpanel/faults", json={"error_rate": 0.25}).raise_for_status()
        httpx2.get(f"{auth}/health")
        assert serve.stop() == 0
        assert "faults_changed" not in serve.rest() and "/health" not in serve.rest()


def test_the_pytest_plugins_changes_name_it():
    with Mocks(settings_for(["auth"])) as mocks:
        seen: list = []
        mocks.run(lambda: mocks.hub.bus.subscribe(seen.append))
        with mocks.faults("auth", error_rate=1.0):
            pass
        mocks.reset()
        events = mocks.run(lambda: [(e.kind, e.source) for e in seen if hasattr(e, "kind")])
        assert ("faults_changed", "the pytest plugin") in events and ("reset", "the pytest plugin") in events
