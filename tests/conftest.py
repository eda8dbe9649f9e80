"""Shared fixtures: real servers on free ports, talked to over HTTP."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from mockpanel.testing import RunningHub, settings_for

ROOT = Path(__file__).resolve().parent.parent
SEED_SECRET = "dev-secret-key-change-in-production"


@pytest.fixture(scope="module")
def auth_hub():
    with RunningHub(settings_for(["auth"])) as running:
        yield running


@pytest.fixture
def auth_url(auth_hub):
    """The auth server's URL, with state, faults and journal back to seed before each test."""
    url = auth_hub.urls["auth"]
    httpx.post(f"{url}/__mockpanel/reset").raise_for_status()
    httpx.delete(f"{url}/__mockpanel/faults").raise_for_status()
    httpx.put(f"{url}/__mockpanel/faults", json={}).raise_for_status()
    httpx.delete(f"{url}/__mockpanel/requests").raise_for_status()
    return url


@pytest.fixture
def client(auth_url):
    with httpx.Client(base_url=auth_url, timeout=10) as c:
        yield c


def port_is_closed(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex((host, port)) != 0


class ServeProcess:
    """`mockpanel serve` as a subprocess: reads its ready lines, stops it with a signal."""

    def __init__(self, *args: str, env: dict | None = None, cwd: Path | None = None) -> None:
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("MOCKPANEL_")}
        full_env.update(env or {})
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mockpanel", "serve", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=full_env,
            cwd=cwd,
        )

    def readline(self, timeout: float = 20) -> str:
        import selectors

        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if sel.select(timeout=0.2):
                line = self.proc.stdout.readline()
                if line:
                    return line.rstrip("\n")
                break
        raise AssertionError(f"no line from mockpanel serve; stderr: {self.proc.stderr.read() if self.proc.poll() is not None else ''}")

    def stop(self, sig: int = 15, timeout: float = 15) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()
        self.proc.stderr.close()
