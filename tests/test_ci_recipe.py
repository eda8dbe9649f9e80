"""The GitHub Actions recipe (.github/actions/mockpanel), run here step by step as the runner would: start the mocks,
run a test against them, collect the journals as HAR and the repro bundle for upload-artifact, stop."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import yaml

from test_background import mockpanel_command

ACTION = Path(__file__).resolve().parent.parent / ".github" / "actions" / "mockpanel"

JOB = r"""
set -euo pipefail
ARGS="--only auth,s3 --auth-port 0 --s3-port 0" bash "$ACTION/start.sh"
set -a; . "$GITHUB_ENV"; set +a                 # what the runner does between steps
# the job's own test, against the mocks:
curl -fsS -X POST "$MOCKPANEL_AUTH_URL/api/auth/login" -H 'Content-Type: application/json' \
     -d '{"email": "alice@example.com", "password": "password123"}' | grep -q access_token
curl -fsS -X PUT "$MOCKPANEL_S3_URL/ci-bucket" > /dev/null
# a failing step would follow; then `if: failure()`:
bash "$ACTION/collect.sh" journal
$MOCKPANEL stop
"""


def test_the_action_steps_start_test_collect_and_stop(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOCKPANEL_")}
    env.update(ACTION=str(ACTION), MOCKPANEL=mockpanel_command(), RUNNER_TEMP=str(tmp_path / "runner"),
               GITHUB_ENV=str(tmp_path / "env"), GITHUB_OUTPUT=str(tmp_path / "output"))
    (tmp_path / "runner").mkdir()
    done = subprocess.run(["bash", "-c", JOB], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180)
    try:
        assert done.returncode == 0, (done.stdout, done.stderr)
    finally:
        subprocess.run(["bash", "-c", "$MOCKPANEL stop"], env={**env, "MOCKPANEL_STATE_DIR": str(tmp_path / "runner" / "mockpanel")},
                       capture_output=True, timeout=60)
    exported = dict(line.split("=", 1) for line in (tmp_path / "env").read_text().splitlines())
    assert exported["MOCKPANEL_STATE_DIR"] == str(tmp_path / "runner" / "mockpanel")
    urls = json.loads((tmp_path / "output").read_text().split("urls=", 1)[1])
    assert set(urls) == {"auth", "s3"} and exported["MOCKPANEL_AUTH_URL"] == urls["auth"]

    auth_har = json.loads((tmp_path / "journal" / "auth.har").read_text())
    login = [e for e in auth_har["log"]["entries"] if e["request"]["url"].endswith("/api/auth/login")]
    assert login and login[0]["response"]["status"] == 200
    s3_har = json.loads((tmp_path / "journal" / "s3.har").read_text())
    assert any(e["request"]["method"] == "PUT" for e in s3_har["log"]["entries"])
    assert "running at" in (tmp_path / "journal" / "mockpanel.log").read_text()
    # the run's repro bundle, completed as collect stopped the mocks: its traffic reruns as it went
    bundle = tmp_path / "journal" / "bundle"
    assert json.loads((bundle / "bundle.json").read_text())["format"] == "mockpanel-bundle"
    rerun = subprocess.run(["bash", "-c", f"$MOCKPANEL replay {bundle} --rerun"], env=env, capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0 and "replayed 2 requests: 2 answered as recorded, 0 differently" in rerun.stdout, rerun.stdout + rerun.stderr


def test_the_action_runs_those_scripts():
    action = yaml.safe_load((ACTION / "action.yml").read_text())
    assert action["runs"]["using"] == "composite"
    scripts = " ".join(step["run"] for step in action["runs"]["steps"])
    assert "start.sh" in scripts and "collect.sh" in scripts
    assert {"args", "install", "collect"} <= set(action["inputs"])
