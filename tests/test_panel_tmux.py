"""`mockpanel` in a real terminal (tmux): it draws, answers keys, quits with q, closes its ports, restores the terminal."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest

from conftest import port_is_closed, tmux, wait_for_screen

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None and not os.environ.get("CI"), reason="needs tmux (apt-get install tmux)")


def test_panel_in_a_real_terminal(tmp_path):
    session = f"mockpanel-{uuid.uuid4().hex[:8]}"
    mockpanel = Path(sys.executable).parent / "mockpanel"
    tmux("new-session", "-d", "-s", session, "-x", "120", "-y", "36", "bash", "--norc", "--noprofile")
    try:
        tmux("send-keys", "-t", session, "PS1='READY$ '; clear", "Enter")
        wait_for_screen(session, lambda s: "READY$" in s, "the shell prompt")
        command = f"cd {tmp_path} && {mockpanel} --only auth,webhooks --auth-port 0 --webhooks-port 0"
        tmux("send-keys", "-t", session, command, "Enter")
        text = wait_for_screen(session, lambda s: re.search(r"auth\s+http://127\.0\.0\.1:\d+\s+running", s) and "webhooks" in s, "the Servers pane")
        assert "1 Servers" in text and "7 Faults" in text and "q Quit" in text
        ports = {name: int(port) for name, port in re.findall(r"(auth|webhooks)\s+http://127\.0\.0\.1:(\d+)", text)}
        httpx.post(f"http://127.0.0.1:{ports['auth']}/api/auth/login", json={"email": "alice@example.com", "password": "password123"})
        tmux("send-keys", "-t", session, "2")
        wait_for_screen(session, lambda s: "/api/auth/login" in s and "200" in s, "the login in the Requests pane")
        tmux("send-keys", "-t", session, "3")
        wait_for_screen(session, lambda s: "alice@example.com" in s and "Alice Johnson" in s, "the Users pane")
        tmux("send-keys", "-t", session, "-l", "?")
        wait_for_screen(session, lambda s: "Copy a fresh access" in s and "show or hide this help" in s, "the help with the pane's keys and what they do")
        tmux("send-keys", "-t", session, "Escape")  # the help closes (q would too, as in less)
        wait_for_screen(session, lambda s: "show or hide this help" not in s, "the help closed")
        tmux("send-keys", "-t", session, "q")
        after = wait_for_screen(session, lambda s: "READY$" in s.split(command)[-1] if command in s else "READY$" in s and "Servers" not in s,
                         "the shell prompt after quitting")
        assert "1 Servers" not in after  # the alternate screen is gone: the terminal is restored
        assert all(port_is_closed(p) for p in ports.values())
        tmux("send-keys", "-t", session, "echo still-$((40+2))", "Enter")
        wait_for_screen(session, lambda s: "still-42" in s, "a working shell after the panel")
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)


def test_filter_mistake_detail_of_the_highlighted_row_and_copy_as_curl_that_runs(tmp_path):
    """In a real terminal: a bad filter says why; Enter opens the highlighted request, not the newest; `c` puts a
    curl command on the clipboard (OSC 52, here tmux's buffer) that sends the same request again."""
    session = f"mockpanel-curl-{uuid.uuid4().hex[:8]}"
    mockpanel = Path(sys.executable).parent / "mockpanel"
    tmux("new-session", "-d", "-s", session, "-x", "120", "-y", "36", "bash", "--norc", "--noprofile")
    try:
        tmux("set-option", "-s", "set-clipboard", "on")
        tmux("send-keys", "-t", session, f"cd {tmp_path} && {mockpanel} --only auth --auth-port 0", "Enter")
        text = wait_for_screen(session, lambda s: re.search(r"auth\s+http://127\.0\.0\.1:\d+\s+running", s), "the Servers pane")
        auth = "http://127.0.0.1:" + re.search(r"auth\s+http://127\.0\.0\.1:(\d+)", text).group(1)
        assert httpx.post(f"{auth}/api/auth/login", json={"email": "alice@example.com", "password": "password123"}).status_code == 200
        httpx.get(f"{auth}/health")
        tmux("send-keys", "-t", session, "2")
        wait_for_screen(session, lambda s: "/api/auth/login" in s and "/health" in s, "both requests")
        tmux("send-keys", "-t", session, "/")
        tmux("send-keys", "-t", session, "-l", "status:abc")
        wait_for_screen(session, lambda s: "status:abc is not a status" in s, "the reason the filter is refused")
        tmux("send-keys", "-t", session, "C-u")
        tmux("send-keys", "-t", session, "-l", "!server:nope")
        wait_for_screen(session, lambda s: "no server named 'nope'" in s, "the unknown server named")
        tmux("send-keys", "-t", session, "C-u", "Enter")  # an empty filter; Enter goes back to the table
        tmux("send-keys", "-t", session, "Up", "Enter")  # the login, above the newest (/health)
        wait_for_screen(session, lambda s: "Request #1" in s and "POST /api/auth/login" in s, "the login's detail")
        tmux("send-keys", "-t", session, "Escape")
        wait_for_screen(session, lambda s: "Request #1" not in s, "the detail closed")
        tmux("send-keys", "-t", session, "c")
        wait_for_screen(session, lambda s: "curl for request #1" in s, "the curl dialog")
        command = tmux("show-buffer")
        assert command.startswith("curl ") and "/api/auth/login" in command and "alice@example.com" in command
        replayed = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=30)
        assert replayed.returncode == 0 and "HTTP/1.1 200" in replayed.stdout and '"access_token"' in replayed.stdout
        tmux("send-keys", "-t", session, "Escape", "q")
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
