"""The Proxies pane and the Faults pane's network toxics, in Pilot and in a real terminal: a key poisons what a real
socket receives through a proxy, or from a mock."""

from __future__ import annotations

import os
import re
import shutil
import socket
import sys
import time
from pathlib import Path

import httpx2
import pytest

from conftest import Terminal, http_upstream, raw_get, until
from mockpanel.app import create_app
from mockpanel.hubclient import server_urls
from mockpanel.servers import SERVERS
from mockpanel.settings import load_settings

BODY = b"0123456789" * 1000


@pytest.fixture(scope="module")
def upstream():
    with http_upstream(BODY) as port:
        yield port


def received(port: int) -> bytes:
    """What a raw socket gets through the proxy for one GET (until the connection ends)."""
    return b"".join(raw_get(port)[0])


def rows(app) -> str:
    table = app.screen.query_one("#proxies-table")
    return "\n".join(" ".join(str(c) for c in table.get_row_at(i)) for i in range(table.row_count))


def config(tmp_path: Path, upstream: int) -> Path:
    path = tmp_path / "mockpanel.toml"
    path.write_text(f'[proxies.web]\nlisten = 0\nupstream = "127.0.0.1:{upstream}"\n')
    return path


def panel_with_a_proxy(tmp_path: Path, upstream: int):
    """The panel running auth and the proxy `web` to `upstream`, configured as a user would (mockpanel.toml)."""
    settings = load_settings(SERVERS, only=["auth"], config_path=config(tmp_path, upstream), cwd=tmp_path, environ={},
                             cli={("auth", "port"): "0"})
    return create_app(settings)


async def test_the_proxies_pane_makes_poisons_switches_and_removes_proxies(tmp_path, upstream):
    app = panel_with_a_proxy(tmp_path, upstream)
    async with app.run_test(size=(140, 36)) as pilot:
        await pilot.press("9")
        await until(pilot, lambda: app.screen.query("#proxies-table") and "web" in rows(app) and "running" in rows(app))
        port = int(re.search(r"127\.0\.0\.1:(\d+)", rows(app)).group(1))
        assert received(port).endswith(BODY)
        await pilot.press("t")
        await pilot.pause()
        await pilot.press("ctrl+a", "ctrl+k", *"limit_data bytes=10", "enter")
        await until(pilot, lambda: "limit_data down bytes=10" in rows(app))
        assert len(received(port)) == 10
        await pilot.press("x")
        await until(pilot, lambda: "limit_data" not in rows(app))
        assert received(port).endswith(BODY)
        await pilot.press("e")  # disabled: not listening
        await until(pilot, lambda: "disabled" in rows(app))
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=5)
        await pilot.press("e")
        await until(pilot, lambda: "running" in rows(app))
        assert received(port).endswith(BODY)  # the same port again
        await pilot.press("a")
        await pilot.pause()
        await pilot.press(*f"second 0 127.0.0.1:{upstream}", "enter")
        await until(pilot, lambda: "second" in rows(app))
        await pilot.press("down", "d", "y")
        await until(pilot, lambda: "second" not in rows(app))
        # the Faults pane puts a toxic on a mock's own connections
        await pilot.press("7")
        await pilot.pause()
        table = app.screen.query_one("#faults-table")
        table.move_cursor(row=table.get_row_index("auth"))
        await pilot.press("t")
        await pilot.pause()
        await pilot.press("ctrl+a", "ctrl+k", *"latency latency=300", "enter")
        await until(pilot, lambda: "latency down latency=300" in str(table.get_row_at(table.get_row_index("auth"))))
        url = app.client.read(server_urls)["auth"]
        async with httpx2.AsyncClient() as client:
            started = time.monotonic()
            assert (await client.get(url + "/health")).status_code == 200
            assert time.monotonic() - started >= 0.3
        await pilot.press("exclamation_mark")  # all chaos off: the toxics too
        await until(pilot, lambda: "latency" not in str(table.get_row_at(table.get_row_index("auth"))))


@pytest.mark.skipif(shutil.which("tmux") is None and not os.environ.get("CI"), reason="needs tmux (apt-get install tmux)")
def test_a_toxic_set_in_a_real_terminal_reaches_a_real_socket(tmp_path, upstream):
    config(tmp_path, upstream)
    mockpanel = Path(sys.executable).parent / "mockpanel"
    with Terminal("proxies", 140, 36) as term:
        term.send(f"cd {tmp_path} && {mockpanel} --only auth --auth-port 0", "Enter")
        term.wait_for(lambda s: "1 Servers" in s and "running" in s, "the panel")
        term.send("9")
        text = term.wait_for(lambda s: re.search(r"web\s+127\.0\.0\.1:\d+\s+127\.0\.0\.1:\d+\s+running", s), "the proxy")
        port = int(re.search(r"web\s+127\.0\.0\.1:(\d+)", text).group(1))
        term.send("t")
        term.wait_for(lambda s: "Network toxic on proxy web" in s, "the toxic prompt")
        term.send("C-a", "C-k")
        term.type("limit_data bytes=10")
        term.send("Enter")
        term.wait_for(lambda s: "limit_data down bytes=10" in s, "the toxic in the list")
        assert len(received(port)) == 10
        term.send("q")
        term.wait_for(lambda s: "9 Proxies" not in s, "the panel closing")


async def test_the_requests_pane_filters_a_proxys_connections_by_its_name(tmp_path, upstream):
    app = panel_with_a_proxy(tmp_path, upstream)
    async with app.run_test(size=(140, 36)) as pilot:
        await pilot.press("9")
        await until(pilot, lambda: app.screen.query("#proxies-table") and "running" in rows(app))
        port = int(re.search(r"127\.0\.0\.1:(\d+)", rows(app)).group(1))
        received(port)
        httpx2.get(app.client.read(server_urls)["auth"] + "/health")
        await pilot.press("2", "slash", *"server:web", "enter")
        table = app.screen.query_one("#requests-table")
        await until(pilot, lambda: table.row_count == 1 and "TCP" in str(table.get_row_at(0)))
