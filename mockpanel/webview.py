"""`mockpanel --web`: the same panel in a browser, through textual-serve.

textual-serve runs the command once per browser websocket and checks neither Host nor Origin. A page the user has open
elsewhere could then open the websocket (cross-site websocket hijacking: browsers do not apply the same-origin policy to
websockets) or reach it by DNS rebinding, and drive the panel: reset the mocks, read tokens. So this wrapper answers only
loopback and this machine's names (the mocks' Host allow-list), opens the websocket only for a page of its own exact
origin (http, a loopback name, this port: the Origin must be the request's own Host),
and runs one panel at a time: the panel owns the mocks' ports, so a second tab is told where the first one is instead of
starting servers that cannot bind.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import sys
from typing import Sequence, TextIO

from aiohttp import web
from textual_serve.server import Server

from .daemon import stop_on_signals
from .guard import HostGuard

PARENT_VARIABLE = "MOCKPANEL_WEB_PARENT"  # the panel a browser drives quits when this process is no longer its parent
DEFAULT_WEB_PORT = 8080
WEB_HOST = "127.0.0.1"
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")  # the names a page of this server's own is opened at
BUSY_PAGE = """<!DOCTYPE html><html><head><meta charset="utf-8"><title>mockpanel</title></head>
<body style="background:#0c181f;color:#e0e0e0;font-family:monospace;padding:2em">
<h1>mockpanel is open in another tab</h1>
<p>The panel runs the mock servers, so one browser tab shows it at a time. Close the other tab (or press q in it),
then reload this page.</p></body></html>"""


def panel_command(argv: Sequence[str]) -> str:
    """The command line of the panel the browser drives: this one without --web and --web-port."""
    kept: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--web":
            continue
        elif arg == "--web-port":
            skip = True
        elif not arg.startswith("--web-port="):
            kept.append(arg)
    # exec: the panel is the server's own child, so it can tell when the server is gone (see PARENT_VARIABLE)
    return "exec " + shlex.join([sys.executable, "-m", "mockpanel", *kept])


class WebPanel(Server):
    """textual-serve's server with the guards above; `port` 0 takes a free port (see `url` once started)."""

    def __init__(self, command: str, port: int = DEFAULT_WEB_PORT) -> None:
        super().__init__(command, host=WEB_HOST, port=port, title="mockpanel")
        self.hosts = HostGuard()
        self.busy = False  # a browser tab has the panel
        self.sessions: set[asyncio.Task] = set()  # the websocket handlers, each running a panel
        self.url = ""

    def same_origin(self, origin: str | None, host: str | None) -> bool:
        """A page of this server: its Origin is exactly this request's own http://Host, and that Host is a loopback name
        with this server's port. An IP literal is not enough: a page served from http://<any address>:<this port> is
        another site (and, on this machine, 127.0.0.2 is another address that reaches the same loopback)."""
        if not origin or not host:
            return False
        if origin.lower() != f"http://{host}".lower():
            return False
        name, _, port = host.lower().rpartition(":")
        return port == str(self.port) and name in LOOPBACK_NAMES

    async def _make_app(self) -> web.Application:
        app = await super()._make_app()

        @web.middleware
        async def guard(request: web.Request, handler):
            host = request.headers.get("Host")
            if not self.hosts.allows(host.encode("latin-1") if host is not None else None):
                return web.Response(status=403, text=f"mockpanel: Host {host[:100]!r} is not allowed (DNS rebinding guard)\n")
            if request.path == "/ws" and not self.same_origin(request.headers.get("Origin"), host):
                origin = request.headers.get("Origin", "(none)")
                return web.Response(status=403, text=f"mockpanel: the panel's websocket opens only from its own page, not from {origin[:100]}\n")
            return await handler(request)

        app.middlewares.append(guard)
        return app

    async def handle_index(self, request: web.Request) -> web.StreamResponse:  # type: ignore[override]
        if self.busy:
            return web.Response(status=409, text=BUSY_PAGE, content_type="text/html")
        response = await super().handle_index(request)
        # The page asks Google Fonts for its font; the bundled fonts and the browser's monospace do without the network.
        text = response.text or ""
        start = text.find('<link\n      rel="stylesheet"\n      href="https://fonts.googleapis.com')
        if start >= 0:
            response.text = text[:start] + text[text.index("/>", start) + 2:]
        return response

    async def handle_websocket(self, request: web.Request) -> web.WebSocketResponse:  # type: ignore[override]
        if self.busy:
            raise web.HTTPConflict(text="mockpanel: the panel is open in another tab\n")
        self.busy = True
        task = asyncio.current_task()
        assert task is not None
        self.sessions.add(task)
        try:
            return await super().handle_websocket(request)
        finally:
            self.sessions.discard(task)
            self.busy = False

    async def on_shutdown(self, app: web.Application) -> None:
        # aiohttp leaves open websockets to their handlers. Cancelled, textual-serve's handler tells its panel to quit
        # and waits for it, so the mocks' ports are free once the server has stopped.
        sessions = list(self.sessions)
        for task in sessions:
            task.cancel()
        await asyncio.gather(*sessions, return_exceptions=True)

    async def on_startup(self, app: web.Application) -> None:
        pass  # start() prints the address itself, once the port is known

    async def start(self, out: TextIO = sys.stdout) -> web.AppRunner:
        runner = web.AppRunner(await self._make_app(), handle_signals=False, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = self.public_url = f"http://{self.host}:{self.port}"
        out.write(f"mockpanel: the panel is at {self.url} (open it in a browser; one tab at a time; Ctrl+C stops)\n")
        out.flush()
        return runner


async def serve_web(argv: Sequence[str], port: int, out: TextIO = sys.stdout) -> int:
    # Killed (SIGKILL, a crash), this server cannot tell its panels to quit, and textual's web driver ignores the end
    # of its input: they would keep the mocks' ports. Each panel watches for its parent instead (MockPanel.on_mount).
    os.environ[PARENT_VARIABLE] = str(os.getpid())
    server = WebPanel(panel_command(argv), port)
    try:
        runner = await server.start(out)
    except OSError as exc:
        print(f"mockpanel: the browser view cannot listen on {WEB_HOST}:{port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    await stop_on_signals().wait()
    await runner.cleanup()  # closes the websockets; each tab's panel is told to quit and is waited for
    return 0
