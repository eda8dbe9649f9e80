"""Repro bundles (bundle.py): `serve --bundle-out DIR` writes what a CI run's mocks went through; `mockpanel replay
DIR` opens the panel on it — every pane with what the run saw, the clock where it ended — and `--rerun` sends its
traffic again to fresh mocks in its start state. The pytest plugin writes one for a failing test."""

from __future__ import annotations

import json
import subprocess
import sys

import httpx2
import pytest

from conftest import ServeProcess, make_s3_client, until


def ci_run(bundle, *extra: str) -> dict:
    """A CI job's mocks: traffic through boto3 and the seeds' calls, a fault switched on midway, the clock moved;
    then the job ends (SIGTERM), and the bundle is complete."""
    with ServeProcess("--only", "auth,s3", "--auth-port", "0", "--s3-port", "0", "--quiet", "--bundle-out", str(bundle), *extra) as proc:
        urls = proc.urls(2)
        auth, s3_url = urls["auth"], urls["s3"]
        assert httpx2.post(f"{auth}/api/auth/register", json={"email": "ci@example.com", "password": "password123",
                                                              "name": "CI"}).status_code == 201
        token = httpx2.post(f"{auth}/api/auth/login", json={"email": "ci@example.com", "password": "password123"}).json()["access_token"]
        assert httpx2.get(f"{auth}/api/auth/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200
        s3 = make_s3_client(s3_url)
        s3.create_bucket(Bucket="uploads")
        s3.put_object(Bucket="uploads", Key="report.csv", Body=b"a,b\n1,2\n")
        httpx2.patch(f"{s3_url}/__mockpanel/faults", json={"fail_next": 1, "fail_next_code": 503}).raise_for_status()
        failed = httpx2.get(f"{s3_url}/uploads/report.csv")
        assert failed.status_code == 503  # the failure the job saw
        httpx2.put(f"{auth}/__mockpanel/clock", json={"advance_s": 3600}).raise_for_status()
        assert httpx2.get(f"{s3_url}/uploads/report.csv").status_code == 200
        assert proc.stop() == 0  # the job's end: SIGTERM, as a runner sends it
    return {"token": token}


def test_serve_writes_a_bundle_and_replay_reruns_its_traffic(tmp_path):
    bundle = tmp_path / "mockpanel-bundle"
    ci_run(bundle)
    record = json.loads((bundle / "bundle.json").read_text())
    assert record["format"] == "mockpanel-bundle" and set(record["servers"]) == {"auth", "s3"}
    assert json.loads((bundle / "start" / "manifest.json").read_text())["format"] == "mockpanel-state"
    end_users = json.loads((bundle / "end" / "servers" / "auth.json").read_text())["users"]
    start_users = json.loads((bundle / "start" / "servers" / "auth.json").read_text())["users"]
    assert any(u["email"] == "ci@example.com" for u in end_users) and not any(u["email"] == "ci@example.com" for u in start_users)
    journal = [json.loads(line) for line in (bundle / "journal.jsonl").read_text().splitlines()]
    assert [(r["method"], r["path"], r["status"]) for r in journal if r["path"] == "/uploads/report.csv" and r["method"] == "GET"] == \
        [("GET", "/uploads/report.csv", 503), ("GET", "/uploads/report.csv", 200)]
    events = [json.loads(line) for line in (bundle / "events.jsonl").read_text().splitlines()]
    faults = [e for e in events if e["kind"] == "faults_changed" and e["server"] == "s3"]
    assert faults[0]["policy"]["fail_next"] == 1 and faults[0]["source"] == "the control API"
    assert any(e["kind"] == "clock" for e in events)
    settings = json.loads((bundle / "settings.json").read_text())
    assert settings["servers"]["auth"]["values"]["jwt_secret"] == "dev-secret-key-change-in-production"

    done = subprocess.run([sys.executable, "-m", "mockpanel", "replay", str(bundle), "--rerun"], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"replayed {len(journal)} requests: {len(journal)} answered as recorded, 0 differently" in done.stdout


def test_a_rerun_says_which_requests_answer_otherwise(tmp_path):
    bundle = tmp_path / "bundle"
    ci_run(bundle)
    lines = (bundle / "journal.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    for record in records:  # the run "saw" its registration refused: the mocks now accept it, and the rerun says so
        if record["path"] == "/api/auth/register":
            record["status"] = 409
    (bundle / "journal.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    done = subprocess.run([sys.executable, "-m", "mockpanel", "replay", str(bundle), "--rerun"], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path)
    assert done.returncode == 1
    assert "differs  auth POST /api/auth/register: recorded 409, now 201" in done.stdout


async def test_replay_opens_the_panel_on_what_the_run_saw(tmp_path):
    from mockpanel.app import create_app
    from mockpanel.bundle import Bundle, replay_settings

    bundle_dir = tmp_path / "bundle"
    made = ci_run(bundle_dir)
    bundle = Bundle(bundle_dir)
    app = create_app(replay_settings(bundle, "end", tmp_path / "scratch"), replay=bundle)
    async with app.run_test(size=(140, 40)) as pilot:
        await until(pilot, lambda: "replay of" in app.title)
        assert "⏱" in app.sub_title and "frozen" in app.sub_title  # the clock where the run ended
        await pilot.press("2")
        table = app.screen.query_one("#requests-table")
        recorded = len((bundle_dir / "journal.jsonl").read_text().splitlines())
        await until(pilot, lambda: table.row_count == recorded)
        shown = "\n".join(" ".join(str(c) for c in table.get_row_at(i)) for i in range(table.row_count))
        assert "/uploads/report.csv" in shown and "503" in shown and "/api/auth/register" in shown
        await pilot.press("3")
        users = app.screen.query_one("#users-table")
        await until(pilot, lambda: users.row_count == 6)
        # the mocks are live, in the run's end state: its user logs in, its token (by the run's clock) still works
        auth = app.hub.urls()["auth"]
        login = httpx2.post(f"{auth}/api/auth/login", json={"email": "ci@example.com", "password": "password123"})
        assert login.status_code == 200
        assert httpx2.get(f"{auth}/api/auth/me", headers={"Authorization": f"Bearer {made['token']}"}).status_code == 200
        assert make_s3_client(app.hub.urls()["s3"]).get_object(Bucket="uploads", Key="report.csv")["Body"].read() == b"a,b\n1,2\n"


@pytest.mark.parametrize("damage, why", [
    (lambda b: (b / "bundle.json").unlink(), "no bundle.json"),
    (lambda b: (b / "bundle.json").write_text('{"format": "mockpanel-bundle", "version": 9}'), "newer mockpanel"),
    (lambda b: (b / "end" / "manifest.json").write_text("{}"), "not a mockpanel snapshot"),
], ids=["cut-short", "newer", "not-a-snapshot"])
def test_a_bundle_that_cannot_be_opened_says_why(tmp_path, damage, why):
    bundle = tmp_path / "bundle"
    ci_run(bundle)
    damage(bundle)
    done = subprocess.run([sys.executable, "-m", "mockpanel", "replay", str(bundle)], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert done.returncode == 2 and why in done.stderr, done.stderr


def test_the_pytest_plugin_writes_a_bundle_for_a_failing_test(pytester, tmp_path):
    pytester.makeini("[pytest]\nmockpanel_servers = auth\n")
    pytester.makepyfile(test_app='''
import httpx2

def test_passes(mockpanel):
    httpx2.get(mockpanel.url("auth") + "/health")

def test_fails(mockpanel):
    httpx2.post(mockpanel.url("auth") + "/api/auth/register", json={"email": "x@example.com", "password": "password123", "name": "X"})
    mockpanel.clock.advance(hours=2)
    assert httpx2.get(mockpanel.url("auth") + "/api/auth/me").status_code == 200
''')
    out = tmp_path / "bundles"
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", f"--mockpanel-bundle-out={out}")
    result.assert_outcomes(passed=1, failed=1)
    made = sorted(p.name for p in out.iterdir())
    assert made == ["test_app.py__test_fails"]
    bundle = out / made[0]
    journal = [json.loads(line) for line in (bundle / "journal.jsonl").read_text().splitlines()]
    assert [r["path"] for r in journal] == ["/api/auth/register", "/api/auth/me"]  # this test's requests only
    assert json.loads((bundle / "end" / "manifest.json").read_text())["clock"]["offset_s"] > 7000  # the clock at the failure
    result.stdout.fnmatch_lines(["*mockpanel: repro bundle for test_app.py::test_fails*"])
