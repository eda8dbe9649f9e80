"""`mockpanel` in a real terminal (tmux): it draws, answers keys, quits with q, closes its ports, restores the terminal."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import httpx2
import pytest

from conftest import Terminal, port_is_closed

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None and not os.environ.get("CI"), reason="needs tmux (apt-get install tmux)")


def test_panel_in_a_real_terminal(tmp_path):
    mockpanel = Path(sys.executable).parent / "mockpanel"
    with Terminal("panel", 120, 36) as term:
        term.send("PS1='READY$ '; clear", "Enter")
        term.wait_for(lambda s: "READY$" in s, "the shell prompt")
        command = f"cd {tmp_path} && {mockpanel} --only auth,webhooks --auth-port 0 --webhooks-port 0"
        term.send(command, "Enter")
        text = term.wait_for(lambda s: re.search(r"auth\s+http://127\.0\.0\.1:\d+\s+running", s) and "webhooks" in s, "the Servers pane")
        assert "1 Servers" in text and "7 Faults" in text and "q Quit" in text
        ports = {name: int(port) for name, port in re.findall(r"(auth|webhooks)\s+http://127\.0\.0\.1:(\d+)", text)}
        httpx2.post(f"http://127.0.0.1:{ports['auth']}/api/auth/login", json={"email": "alice@example.com", "password": "password123"})
        term.send("2")
        term.wait_for(lambda s: "/api/auth/login" in s and "200" in s, "the login in the Requests pane")
        term.send("3")
        term.wait_for(lambda s: "alice@example.com" in s and "Alice Johnson" in s, "the Users pane")
        term.type("?")
        term.wait_for(lambda s: "Copy a fresh access" in s and "Show or hide this help" in s, "the help with the pane's keys and what they do")
        term.send("Escape")  # the help closes (q would too, as in less)
        term.wait_for(lambda s: "Show or hide this help" not in s, "the help closed")
        term.send("q")
        after = term.wait_for(lambda s: "READY$" in s.split(command)[-1] if command in s else "READY$" in s and "Servers" not in s,
                         "the shell prompt after quitting")
        assert "1 Servers" not in after  # the alternate screen is gone: the terminal is restored
        assert all(port_is_closed(p) for p in ports.values())
        term.send("echo still-$((40+2))", "Enter")
        term.wait_for(lambda s: "still-42" in s, "a working shell after the panel")


def test_filter_mistake_detail_of_the_highlighted_row_and_copy_as_curl_that_runs(tmp_path):
    """In a real terminal: a bad filter says why; Enter opens the highlighted request, not the newest; `c` puts a
    curl command on the clipboard (OSC 52, here tmux's buffer) that sends the same request again."""
    mockpanel = Path(sys.executable).parent / "mockpanel"
    with Terminal("curl", 120, 36) as term:
        term("set-option", "-s", "set-clipboard", "on")
        term.send(f"cd {tmp_path} && {mockpanel} --only auth --auth-port 0", "Enter")
        text = term.wait_for(lambda s: re.search(r"auth\s+http://127\.0\.0\.1:\d+\s+running", s), "the Servers pane")
        auth = "http://127.0.0.1:" + re.search(r"auth\s+http://127\.0\.0\.1:(\d+)", text).group(1)
        assert httpx2.post(f"{auth}/api/auth/login", json={"email": "alice@example.com", "password": "password123"}).status_code == 200
        httpx2.get(f"{auth}/health")
        term.send("2")
        term.wait_for(lambda s: "/api/auth/login" in s and "/health" in s, "both requests")
        term.send("/")
        term.type("status:abc")
        term.wait_for(lambda s: "status:abc is not a status" in s, "the reason the filter is refused")
        term.send("C-u")
        term.type("!server:nope")
        term.wait_for(lambda s: "no server named 'nope'" in s, "the unknown server named")
        term.send("C-u", "Enter")  # an empty filter; Enter goes back to the table
        term.send("Up", "Enter")  # the login, above the newest (/health)
        term.wait_for(lambda s: "Request #1" in s and "POST /api/auth/login" in s, "the login's detail")
        term.send("Escape")
        term.wait_for(lambda s: "Request #1" not in s, "the detail closed")
        term.send("c")
        term.wait_for(lambda s: "curl for request #1" in s, "the curl dialog")
        command = term("show-buffer")
        assert command.startswith("curl ") and "/api/auth/login" in command and "alice@example.com" in command
        replayed = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=30)
        assert replayed.returncode == 0 and "HTTP/1.1 200" in replayed.stdout and '"access_token"' in replayed.stdout
        term.send("Escape", "q")


def test_a_terminal_starts_while_another_test_s_terminal_ends():
    """CI once failed with tmux's "server exited unexpectedly": a test's new session reached the tmux server the last
    test's ended session was shutting down. Each Terminal has a server of its own, so ending one never meets
    starting the next (with one shared server this loop fails within a few rounds)."""
    import threading

    for _ in range(150):
        ending = Terminal("ending", 40, 10).__enter__()
        closer = threading.Thread(target=ending.__exit__, args=(None, None, None))
        closer.start()
        with Terminal("starting", 40, 10) as term:
            term.screen()
        closer.join()
