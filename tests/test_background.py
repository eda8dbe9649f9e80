"""`mockpanel start | status | stop | restart` from a shell script, as the seeds' run_mocks.sh was used."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

SCRIPT = r"""
set -eu
mp() { $MOCKPANEL "$@"; }
if mp status; then echo "status said running before start"; exit 10; else test $? -eq 3; fi
mp start --only auth,webhooks --auth-port 0 --webhooks-port 0 > started.txt
grep -q '^auth: running at http://127.0.0.1:' started.txt
grep -q '^mockpanel: running in the background (pid ' started.txt
if mp start --only auth --auth-port 0 2> again.txt; then echo "a second start succeeded"; exit 11; fi
grep -q 'already running' again.txt
auth=$(sed -n 's/^auth: running at //p' started.txt)
curl -fsS "$auth/health" > /dev/null
curl -fsS "$auth/health" > /dev/null
mp status > status.txt
grep -Eq '^auth +http://127\.0\.0\.1:[0-9]+ +[0-9]+ +[0-9]+s +2$' status.txt
grep -Eq '^webhooks +http://127\.0\.0\.1:[0-9]+ ' status.txt
mp restart > restarted.txt          # no flags: the ones start was given
grep -q '^webhooks: running at' restarted.txt
mp stop
if curl -fsS "$(sed -n 's/^auth: running at //p' restarted.txt)/health" 2>/dev/null; then echo "still answering"; exit 12; fi
mp stop                              # stopping what is not running is not an error
if mp status 2> status.txt; then exit 13; else test $? -eq 3; fi
grep -q 'not running' status.txt
echo ALL-OK
"""


def mockpanel_command() -> str:
    installed = Path(sys.executable).parent / "mockpanel"
    return shlex.quote(str(installed)) if installed.exists() else f"{shlex.quote(sys.executable)} -m mockpanel"


def test_start_status_restart_stop_from_a_shell_script(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOCKPANEL_")}
    env.update(MOCKPANEL=mockpanel_command(), MOCKPANEL_STATE_DIR=str(tmp_path / "state"))
    done = subprocess.run(["bash", "-c", SCRIPT], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180)
    try:
        assert done.returncode == 0 and done.stdout.strip().endswith("ALL-OK"), (done.stdout, done.stderr)
    finally:
        subprocess.run(["bash", "-c", "$MOCKPANEL stop"], env=env, capture_output=True, timeout=60)


def test_start_reports_a_server_that_cannot_start(tmp_path):
    import socket

    env = {k: v for k, v in os.environ.items() if not k.startswith("MOCKPANEL_")}
    env.update(MOCKPANEL_STATE_DIR=str(tmp_path / "state"))
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run([sys.executable, "-m", "mockpanel", "start", "--only", "auth", "--auth-port", str(port)],
                              cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert f"auth: failed: port {port} is in use" in done.stderr and "the servers did not start (exit 1" in done.stderr
    status = subprocess.run([sys.executable, "-m", "mockpanel", "status"], env=env, capture_output=True, text=True, timeout=60)
    assert status.returncode == 3


def test_serve_wait_returns_once_ready_with_the_servers_up(tmp_path):
    import httpx2

    env = {k: v for k, v in os.environ.items() if not k.startswith("MOCKPANEL_")}
    env.update(MOCKPANEL_STATE_DIR=str(tmp_path / "state"))
    run = lambda *args: subprocess.run([sys.executable, "-m", "mockpanel", *args], cwd=tmp_path, env=env,  # noqa: E731
                                       capture_output=True, text=True, timeout=120)
    try:
        done = run("serve", "--wait", "--only", "auth", "--auth-port", "0")
        assert done.returncode == 0, done.stderr
        url = next(line.split(" running at ")[1] for line in done.stdout.splitlines() if line.startswith("auth: running at "))
        assert httpx2.get(f"{url}/health").status_code == 200
    finally:
        assert run("stop").returncode == 0
