"""`mockpanel serve` as CI runs it: a subprocess, ready lines, request lines, signals, ports."""

from __future__ import annotations

import asyncio
import time
import dataclasses
import json
import re
import signal
import socket

import httpx2
import pytest

from conftest import ServeProcess, port_is_closed
from mockpanel.hub import Hub
from mockpanel.servers import auth
from mockpanel.settings import load_settings


def ready_url(line: str) -> str:
    m = re.fullmatch(r"auth: running at (http://127\.0\.0\.1:\d+)", line)
    assert m, line
    return m.group(1)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_serve_prints_ready_and_request_lines_and_stops_cleanly(sig):
    with ServeProcess("--only", "auth", "--auth-port", "0") as serve:
        url = ready_url(serve.readline())
        port = int(url.rsplit(":", 1)[1])
        r = httpx2.post(f"{url}/api/auth/login", json={"email": "alice@example.com", "password": "password123"})
        assert r.status_code == 200
        line = serve.readline()
        assert re.fullmatch(r"\d\d:\d\d:\d\d\.\d{3} auth +POST /api/auth/login 200 [\d.]+ms", line), line
        httpx2.get(f"{url}/health?simulate_error=503")
        assert serve.readline().endswith("[simulate_error:503]")
        assert serve.stop(sig) == 0
        assert port_is_closed(port)


def test_python_dash_m_and_headless_flag_are_the_same_command(tmp_path):
    import subprocess
    import sys

    with ServeProcess("--only", "auth", "--auth-port", "0") as serve:  # `serve` given by the helper
        ready_url(serve.readline())
        assert serve.stop() == 0
    # `mockpanel --headless` (no subcommand) takes the same flags
    proc = subprocess.Popen([sys.executable, "-m", "mockpanel", "--headless", "--only", "auth", "--auth-port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        ready_url(proc.stdout.readline().strip())
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
    finally:
        proc.kill()
        proc.stdout.close()
        proc.stderr.close()


def test_secret_is_announced_as_a_development_default():
    with ServeProcess("--only", "auth", "--auth-port", "0") as serve:
        ready_url(serve.readline())
        serve.stop()
        err = serve.proc.stderr.read()
    assert "jwt_secret is the development default 'dev-secret-key-change-in-production'" in err


def test_port_in_use_exits_non_zero_with_the_reason():
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        with ServeProcess("--only", "auth", "--auth-port", str(port)) as serve:
            line = serve.readline()
            assert line == f"auth: failed: port {port} is in use"
            assert serve.proc.wait(20) == 1
            errors = serve.proc.stderr.read()
            assert "mockpanel: stopping, since auth could not start (--keep-going runs the others anyway)" in errors
            assert "in use" not in errors  # said once, on the server's own line


def test_keep_going_keeps_running_after_a_failure():
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        with ServeProcess("--only", "auth", "--auth-port", str(port), "--keep-going") as serve:
            assert serve.readline() == f"auth: failed: port {port} is in use"
            with pytest.raises(Exception):
                serve.proc.wait(1)  # still running
            assert serve.stop() == 0


def test_ports_file_and_json_log(tmp_path):
    ports_file = tmp_path / "ports.json"
    with ServeProcess("--only", "auth", "--auth-port", "0", "--ports-file", str(ports_file), "--log-format", "json") as serve:
        ready = json.loads(serve.readline())
        assert ready["event"] == "ready" and ready["server"] == "auth"
        url = ready["url"]
        while not ports_file.exists():  # written (whole: renamed into place) right after the ready lines
            time.sleep(0.02)  # bounded by the test's timeout
        assert json.loads(ports_file.read_text()) == {"auth": url}
        httpx2.get(f"{url}/health")
        record = json.loads(serve.readline())
        assert record["event"] == "request" and record["path"] == "/health" and record["status"] == 200
        assert record["server"] == "auth" and record["method"] == "GET"
        assert serve.stop() == 0


def test_dotenv_in_working_directory_is_read(tmp_path):
    (tmp_path / ".env").write_text("JWT_SECRET=from-dotenv-secret-that-is-long-enough-0123456789\nMOCKPANEL_AUTH_PORT=0\nMOCKPANEL_S3_ENABLED=false\nMOCKPANEL_WEBHOOKS_ENABLED=false\n")
    import jwt

    with ServeProcess(cwd=tmp_path) as serve:
        url = ready_url(serve.readline())
        token = httpx2.post(f"{url}/api/auth/login", json={"email": "alice@example.com", "password": "password123"}).json()["access_token"]
        serve.stop()
    assert jwt.decode(token, "from-dotenv-secret-that-is-long-enough-0123456789", algorithms=["HS256"])["sub"] == "test-user-123"


async def test_hub_marks_a_busy_port_failed_and_keeps_the_others():
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    busy = blocker.getsockname()[1]
    specs = {"auth": auth.SPEC, "auth2": dataclasses.replace(auth.SPEC, name="auth2")}
    settings = load_settings(specs, cli={("auth", "port"): str(busy), ("auth2", "port"): "0"}, environ={})
    hub = Hub(settings, specs)
    try:
        urls = await hub.start()
        assert hub["auth"].status == "failed" and hub["auth"].describe() == f"auth: failed: port {busy} is in use"
        assert list(urls) == ["auth2"]
        async with httpx2.AsyncClient() as c:
            assert (await c.get(f"{urls['auth2']}/health")).status_code == 200
        port = hub["auth2"].port
    finally:
        await hub.stop()
        blocker.close()
    assert port_is_closed(port)
    assert hub["auth2"].status == "stopped"


async def test_hub_restart_keeps_state_and_the_port():
    settings = load_settings({"auth": auth.SPEC}, cli={("auth", "port"): "0"}, environ={})
    hub = Hub(settings, {"auth": auth.SPEC})
    await hub.start()
    try:
        runner = hub["auth"]
        url = runner.url
        async with httpx2.AsyncClient() as c:
            await c.post(f"{url}/api/auth/register", json={"email": "kept@example.com", "password": "password123", "name": "K"})
        await runner.restart()
        assert runner.status == "running" and runner.url == url
        async with httpx2.AsyncClient() as c:
            r = await c.post(f"{url}/api/auth/login", json={"email": "kept@example.com", "password": "password123"})
        assert r.status_code == 200
    finally:
        await hub.stop()


async def test_a_crashed_server_task_is_reported_failed(monkeypatch):
    from mockpanel.runner import EmbeddedServer

    async def crashing_main_loop(self) -> None:
        await asyncio.sleep(0.1)
        raise RuntimeError("main loop blew up")

    monkeypatch.setattr(EmbeddedServer, "main_loop", crashing_main_loop)
    specs = {"auth": auth.SPEC, "auth2": dataclasses.replace(auth.SPEC, name="auth2")}
    settings = load_settings(specs, cli={("auth", "port"): "0", ("auth2", "port"): "0"}, environ={}, only=["auth"])
    hub = Hub(settings, specs)
    statuses = []
    hub.bus.subscribe(lambda item: statuses.append(item.data["status"]) if getattr(item, "kind", None) == "status" else None)
    await hub.start()
    runner = hub["auth"]
    port = runner.port
    for _ in range(100):
        if runner.status == "failed":
            break
        await asyncio.sleep(0.05)
    assert runner.status == "failed"
    assert runner.reason == "crashed: RuntimeError: main loop blew up"
    assert statuses == ["starting", "running", "failed"]
    assert port_is_closed(port)
    await hub.stop()
    assert runner.status == "failed"
