"""The first run, end to end: `make run` in a real terminal (tmux) with no flag, then an upload from the client page in
Chromium completes with its four variants — the reference image API started by itself."""

from __future__ import annotations

import io
import os
import re
import shutil
import socket
import sys
from pathlib import Path

import pytest
from PIL import Image

from conftest import ROOT, Terminal, port_is_closed

DEFAULT_PORTS = {"auth": 8000, "s3": 9000, "webhooks": 4000, "client": 3000, "imageapi": 8002}


def free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers bind: a closed connection's TIME_WAIT is no owner
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return port_is_closed(port)


def first_run_command() -> str:
    """`make run` where this suite runs from the repository's own virtual environment (as `make test` does), else the
    same program without make."""
    venv_python = ROOT / ".venv" / "bin" / "python"
    if shutil.which("make") and venv_python.exists() and Path(sys.executable).resolve() == venv_python.resolve():
        return f"make -C {ROOT} run"
    return f"{sys.executable} -m mockpanel"


def test_make_run_then_an_upload_from_the_page_completes(browser, tmp_path):
    if shutil.which("tmux") is None:
        if os.environ.get("CI"):
            pytest.fail("CI must run the tmux tests: apt-get install tmux")
        pytest.skip("needs tmux (apt-get install tmux)")
    busy = [f"{name} {port}" for name, port in DEFAULT_PORTS.items() if not free(port)]
    if busy:
        pytest.skip(f"the first run uses the default ports; in use here: {', '.join(busy)}")
    with Terminal("first", 140, 40) as term:
        term.send(f"PS1='READY$ '; cd {tmp_path}; clear", "Enter")
        term.wait_for(lambda s: "READY$" in s, "the shell prompt")
        term.send(first_run_command(), "Enter")
        term.wait_for(lambda s: re.search(r"imageapi\s+http://127\.0\.0\.1:8002\s+running", s), "the reference image API running", 90)

        photo = tmp_path / "first.png"
        buffer = io.BytesIO()
        Image.new("RGB", (900, 600), (30, 140, 220)).save(buffer, "PNG")
        photo.write_bytes(buffer.getvalue())
        page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
        page.goto("http://localhost:3000/")
        page.wait_for_function("document.getElementById('token').textContent.startsWith('token: eyJ')")
        page.set_input_files("#file", str(photo))
        page.wait_for_function("document.getElementById('status').textContent === 'completed'", timeout=60_000)
        page.wait_for_function("document.querySelectorAll('#variants img').length === 4")
        page.wait_for_function("[...document.querySelectorAll('#variants img')].every(i => i.complete && i.naturalWidth > 0)")
        page.screenshot(path=str(tmp_path / "first-run.png"))

        term.send("q")
        term.wait_for(lambda s: s.rstrip().endswith("READY$"), "the shell again", 60)
        assert all(port_is_closed(p) for p in DEFAULT_PORTS.values())
