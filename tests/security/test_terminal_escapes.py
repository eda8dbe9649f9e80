"""In a real terminal (tmux): a user, an S3 key and a webhook carrying OSC 0 (window title) and OSC 52 (clipboard)
sequences are shown escaped in every pane; the terminal's title and clipboard stay as they were."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import httpx2

from conftest import Terminal

OSC = "\x1b]0;INJ-{what}\x07\x1b]52;c;aW5qZWN0ZWQ=\x07"


def test_escape_sequences_from_clients_never_reach_the_terminal(tmp_path):
    mockpanel = Path(sys.executable).parent / "mockpanel"
    with Terminal("esc", 160, 40) as term:
        term("set-option", "-s", "set-clipboard", "on")  # OSC 52 would land in tmux's buffers
        term("select-pane", "-t", term.session, "-T", "ORIGINAL-TITLE")
        buffers_before = term("list-buffers")
        term.send(f"cd {tmp_path} && {mockpanel} --only auth,s3,webhooks --auth-port 0 --s3-port 0 --webhooks-port 0", "Enter")
        text = term.wait_for(lambda s: len(re.findall(r"(auth|s3|webhooks)\s+http://127\.0\.0\.1:\d+\s+running", s)) == 3, "the Servers pane")
        ports = {name: int(port) for name, port in re.findall(r"(auth|s3|webhooks)\s+http://127\.0\.0\.1:(\d+)", text)}
        base = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
        r = httpx2.post(f"{base['auth']}/api/auth/register", json={"email": "osc@example.com", "password": "password123",
                                                                   "name": "x" + OSC.format(what="USER") + "y"})
        assert r.status_code == 201
        assert httpx2.put(f"{base['s3']}/esc-bucket/k%1b%5d0%3bINJ-KEY%07%1b%5d52%3bc%3baW5qZWN0ZWQ%3d%07", content=b"1").status_code == 200
        assert httpx2.post(f"{base['webhooks']}/webhooks/shop", json={"event_type": OSC.format(what="HOOK")}).status_code == 200
        for key, shown in (("3", "INJ-USER"), ("4", "INJ-KEY"), ("5", "INJ-HOOK"), ("2", "INJ-KEY")):
            term.send(key)
            screen = term.wait_for(lambda s: shown in s, f"{shown} in pane {key}")
            assert "\\x1b]0;" + shown in screen  # written out, visible
        for key, marker in (("1", "p50 ms"), ("6", "Neither the client app"), ("7", "Keys act on the selected server")):
            term.send(key)
            term.wait_for(lambda s: marker in s, f"pane {key}")
        assert term("display-message", "-p", "-t", term.session, "#{pane_title}").strip() == "ORIGINAL-TITLE"
        assert term("list-buffers") == buffers_before  # no OSC 52 clipboard write reached tmux
        term.send("q")


def test_the_panel_ends_with_a_non_zero_status_on_an_unhandled_error(tmp_path):
    """A bug that escapes a handler ends the panel (Textual shows the traceback); the shell must see a failure, not 0."""
    script = tmp_path / "crashing_panel.py"
    script.write_text(
        "import sys\n"
        "from mockpanel.app import MockPanel\n"
        "from mockpanel.cli import main\n"
        "def broken(self):\n"
        "    raise RuntimeError('a bug in a key handler')\n"
        "MockPanel.action_toggle_help = broken\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    with Terminal("crash", 120, 36) as term:
        term.send(f"cd {tmp_path} && {sys.executable} {script} --only auth --auth-port 0; echo exit=$?", "Enter")
        term.wait_for(lambda s: re.search(r"auth\s+http://127\.0\.0\.1:\d+\s+running", s), "the Servers pane")
        term.send("?")
        screen = term.wait_for(lambda s: re.search(r"^exit=\d+", s, re.M), "the panel to end")
        assert re.search(r"^exit=1$", screen, re.M) and "a bug in a key handler" in screen
