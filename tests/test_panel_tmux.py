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
        wait_for_screen(session, lambda s: "Copy a fresh access" in s and "Show or hide" in s, "the help panel with the pane's keys and what they do")
        tmux("send-keys", "-t", session, "q")
        after = wait_for_screen(session, lambda s: "READY$" in s.split(command)[-1] if command in s else "READY$" in s and "Servers" not in s,
                         "the shell prompt after quitting")
        assert "1 Servers" not in after  # the alternate screen is gone: the terminal is restored
        assert all(port_is_closed(p) for p in ports.values())
        tmux("send-keys", "-t", session, "echo still-$((40+2))", "Enter")
        wait_for_screen(session, lambda s: "still-42" in s, "a working shell after the panel")
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
