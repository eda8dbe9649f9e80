"""`mockpanel --web`: the panel in a real browser (headless Chromium through textual-serve), and the guards that keep
other pages and other hosts from driving it."""

from __future__ import annotations

import json
import re
import signal
import time

import httpx2

from conftest import ServeProcess, port_is_closed
from mockpanel.webview import panel_command

WS_HEADERS = {"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}


def wait_until(predicate, what: str, page=None, limit: float = 30):
    """Poll until predicate() holds. With a page, poll through playwright: its sync API delivers events (websocket
    frames) only while one of its calls runs."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if page is not None:
            page.wait_for_timeout(50)
        else:
            time.sleep(0.05)
    raise AssertionError(f"gave up waiting for {what}")


def start_web(tmp_path):
    ports_file = tmp_path / "ports.json"
    proc = ServeProcess("--web", "--web-port", "0", "--only", "auth", "--auth-port", "0", "--ports-file", str(ports_file),
                        subcommand=None, cwd=tmp_path)
    line = proc.readline()
    assert line.startswith("mockpanel: the panel is at http://127.0.0.1:"), line
    return proc, re.search(r"http://[\d.]+:\d+", line).group(0), ports_file


def open_panel(browser, url: str):
    page = browser.new_context().new_page()
    page.goto(url)
    return page


def wait_for_ports(ports_file, page) -> dict:
    wait_until(lambda: ports_file.exists() and ports_file.read_text().endswith("\n"), "the panel's servers", page)
    return json.loads(ports_file.read_text())


def test_the_panel_command_is_this_one_without_the_web_flags():
    command = panel_command(["--web", "--only", "auth", "--web-port", "9000", "--web-port=9001", "--auth-port", "0"])
    assert command.startswith("exec ") and command.endswith("-m mockpanel --only auth --auth-port 0")


def test_web_and_serve_are_refused_together(tmp_path):
    with ServeProcess("--web", cwd=tmp_path) as proc:
        assert proc.proc.wait(20) == 2
        assert "choose one" in proc.proc.stderr.read()


def test_the_panel_in_chromium_switches_panes_and_shows_a_request(browser, tmp_path):
    proc, url, ports_file = start_web(tmp_path)
    with proc:
        context = browser.new_context(viewport={"width": 1200, "height": 700})
        page = context.new_page()
        received: list[str] = []  # what the panel sends the page: terminal output, as xterm.js draws it

        def on_socket(ws):
            ws.on("framereceived", lambda f: received.append(f if isinstance(f, str) else f.decode("utf-8", "replace")))

        page.on("websocket", on_socket)
        page.goto(url)
        shown = lambda *words: all(w in "".join(received) for w in words)  # noqa: E731
        auth = wait_for_ports(ports_file, page)["auth"]
        wait_until(lambda: shown("running", "Servers"), "the Servers pane", page)
        page.click("#terminal")
        page.keyboard.press("2")
        wait_until(lambda: shown("Copy as curl"), "the Requests pane's keys", page)
        before = len(received)
        assert httpx2.get(f"{auth}/health").status_code == 200
        wait_until(lambda: "/health" in "".join(received[before:]), "the request in the Requests pane", page)
        before = len(received)
        page.keyboard.press("8")  # the Traces pane in the web view: the request is a trace of one hop
        wait_until(lambda: all(w in "".join(received[before:]) for w in ("Save as test", "1 trace ", "auth GET /health")),
                   "the request's trace in the Traces pane", page)
        page.screenshot(path=str(tmp_path / "web-panel.png"))

        # One tab at a time: the panel owns the servers' ports.
        second = context.new_page()
        answer = second.goto(url)
        assert answer.status == 409 and "open in another tab" in second.inner_text("body")

        context.close()  # the tab goes: its panel quits and frees the port
        port = int(auth.rsplit(":", 1)[1])
        wait_until(lambda: port_is_closed(port), "the panel to quit with its tab")
        wait_until(lambda: httpx2.get(url).status_code == 200, "the page to be free for a new tab")

        # Stopped with a tab open, the server tells that tab's panel to quit and waits for it.
        ports_file.unlink()
        page = open_panel(browser, url)
        port = int(wait_for_ports(ports_file, page)["auth"].rsplit(":", 1)[1])
        assert proc.stop() == 0
        assert port_is_closed(port)


def test_a_killed_server_leaves_no_panel_holding_the_ports(browser, tmp_path):
    proc, url, ports_file = start_web(tmp_path)
    with proc:
        page = open_panel(browser, url)
        port = int(wait_for_ports(ports_file, page)["auth"].rsplit(":", 1)[1])
        assert proc.stop(signal.SIGKILL) == -signal.SIGKILL
        wait_until(lambda: port_is_closed(port), "the orphaned panel to quit")


def test_other_hosts_and_other_pages_cannot_reach_the_panel(tmp_path):
    proc, url, _ = start_web(tmp_path)
    port = url.rsplit(":", 1)[1]
    with proc, httpx2.Client(base_url=url) as client:
        rebinding = client.get("/", headers={"Host": f"attacker.example:{port}"})
        assert rebinding.status_code == 403 and "DNS rebinding" in rebinding.text
        assert client.get("/ws", headers={**WS_HEADERS, "Host": f"attacker.example:{port}", "Origin": f"http://attacker.example:{port}"}).status_code == 403
        for origin in ("http://attacker.example", f"http://localhost:{int(port) + 1}", "null", f"https://127.0.0.1:{port}",
                       f"http://127.0.0.2:{port}", f"http://203.0.113.5:{port}", f"http://localhost:{port}"):  # Host is 127.0.0.1
            refused = client.get("/ws", headers={**WS_HEADERS, "Origin": origin})
            assert refused.status_code == 403 and "own page" in refused.text, origin
        assert client.get("/ws", headers=WS_HEADERS).status_code == 403  # no Origin: not a page of ours either
        assert client.get("/", headers={"Host": f"localhost:{port}"}).status_code == 200
        assert "fonts.googleapis.com" not in client.get("/").text  # the page needs no network
        assert proc.stop() == 0


def test_a_page_on_another_address_cannot_open_the_panel(browser, tmp_path):
    """A page served from http://<another IP>:<the web port> is another site, though an IP literal is a host the
    panel's page may be opened at: its websocket is refused, so it never drives (or even starts) a panel."""
    proc, url, ports_file = start_web(tmp_path)
    port = url.rsplit(":", 1)[1]
    with proc:
        args_free = browser.new_context()
        page = args_free.new_page()
        elsewhere = f"http://127.0.0.2:{port}/"  # the same loopback, another address: another origin
        page.route(elsewhere, lambda route: route.fulfill(status=200, content_type="text/html", body="<p>a page elsewhere</p>"))
        page.goto(elsewhere)
        outcome = page.evaluate("""(target) => new Promise((resolve) => {
            const ws = new WebSocket(target);
            ws.onopen = () => { ws.send(JSON.stringify(["stdin", "r"])); resolve("opened"); };
            ws.onerror = () => resolve("refused");
        })""", f"ws://127.0.0.1:{port}/ws")
        assert outcome == "refused"
        assert not ports_file.exists()  # no panel was started for that page
        args_free.close()
        # the panel's own page still opens it
        own = open_panel(browser, url)
        assert wait_for_ports(ports_file, own)["auth"].startswith("http://127.0.0.1:")
        assert proc.stop() == 0
