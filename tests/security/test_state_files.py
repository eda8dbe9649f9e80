"""`mockpanel start | stop | restart | status` believe the state file only when it is this user's and names the very
`mockpanel serve` that start ran; what they write is this user's alone (directory 0700, files 0600 from creation)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time

from test_background import mockpanel_command


def run(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", "$MOCKPANEL " + " ".join(args)], env=env, capture_output=True, text=True, timeout=120)


def environment(tmp_path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOCKPANEL_")}
    env.update(MOCKPANEL=mockpanel_command(), MOCKPANEL_STATE_DIR=str(tmp_path / "state"))
    return env


def test_stop_signals_only_the_serve_it_started(tmp_path):
    env = environment(tmp_path)
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        # a state file naming some other process of this user's (a reused pid, or a planted file)
        (state / "state.json").write_text(json.dumps({"pid": bystander.pid, "args": ["--only", "auth"], "ports_file": "/dev/null",
                                                      "started": time.time(), "cwd": str(tmp_path)}))
        (state / "state.json").chmod(0o600)
        stopped = run(env, "stop")
        assert stopped.returncode == 0 and "not running" in stopped.stdout
        assert bystander.poll() is None  # not signalled
        assert run(env, "status").returncode == 3
        assert not (state / "state.json").exists()
    finally:
        bystander.kill()
        bystander.wait()


def test_a_state_file_others_can_write_is_not_believed_and_what_start_writes_is_private(tmp_path):
    env = environment(tmp_path)
    state = tmp_path / "state"
    try:
        started = run(env, "start", "--only", "auth", "--auth-port", "0")
        assert started.returncode == 0, started.stderr
        assert stat.S_IMODE(state.stat().st_mode) == 0o700
        for name in ("state.json", "mockpanel.log"):
            assert stat.S_IMODE((state / name).stat().st_mode) == 0o600, name
        (state / "state.json").chmod(0o666)  # anyone could have edited it: its pid and arguments are not believed
        assert run(env, "status").returncode == 3
        (state / "state.json").chmod(0o600)
        assert run(env, "status").returncode == 0
    finally:
        run(env, "stop")


def test_signing_keys_are_private_from_their_creation(tmp_path):
    from mockpanel.servers.oidc.provider import OidcProvider

    keys = tmp_path / "keys"
    provider = OidcProvider(time.time, keys_dir=str(keys))
    provider.keys(provider.issuer(""))
    files = list(keys.iterdir())
    assert files and all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in files)
    assert stat.S_IMODE(keys.stat().st_mode) == 0o700


def test_status_sends_the_admin_token_only_to_this_machine():
    from mockpanel.daemon import _loopback

    assert _loopback("http://127.0.0.1:8000") and _loopback("http://localhost:9000") and _loopback("http://[::1]:4000")
    assert not _loopback("http://attacker.example:8000") and not _loopback("http://10.0.0.5:8000")
