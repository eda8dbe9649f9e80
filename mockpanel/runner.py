"""Hosting one HTTP mock server with uvicorn, inside an event loop that other servers and the panel share."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import re
import socket
from typing import Any, Iterator

import uvicorn

from .control import create_control_app
from .guard import HostGuard
from .service import ErrorRenderer, ServerContext, ServiceMiddleware
from .spec import ServerSpec
from .toxics import Direction, Link, ToxicSet, ToxicTransport, rst

try:  # httptools is the fast parser (uvicorn[standard]); h11 is the pure-Python fallback
    import httptools  # noqa: F401
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    HTTP_IMPL = "httptools"
except ImportError:  # pragma: no cover
    HttpToolsProtocol = None
    HTTP_IMPL = "h11"

MAX_HEAD_BYTES = 64 * 1024  # request line + headers; httptools alone would buffer any amount


def http_protocol(render_error: "ErrorRenderer", toxics: ToxicSet | None = None, control_prefixes: tuple[str, ...] = ()) -> Any:
    """uvicorn's httptools protocol, refusing a request head over MAX_HEAD_BYTES with 431 in the server's format,
    whether it arrives in one piece or keeps coming (httptools alone would buffer any amount); with the server's
    network toxics on its connections (toxics.py) while it has any — except while a connection carries a request to
    the control paths (`control_prefixes`): the switch that turns chaos off is never subject to it, as Toxiproxy keeps
    its API off its proxies."""
    if HttpToolsProtocol is None:  # pragma: no cover - h11 has its own limit (h11_max_incomplete_event_size)
        return "h11"
    toxic_set = toxics if toxics is not None else ToxicSet()
    control = re.compile(rb"[A-Z]{3,7} (?:%s)" % b"|".join(re.escape(p.encode()) for p in control_prefixes)) if control_prefixes else None
    request_line = re.compile(rb"[A-Z]{3,7} [/*a-z]")

    class LimitedHttpToolsProtocol(HttpToolsProtocol):
        _head_bytes = 0  # bytes received while the current request's head is incomplete
        _up: Direction | None = None  # set once the connection met a toxic: every byte then passes the toxics
        _to_control = False  # the request being received goes to the control paths: no toxic acts on it

        def data_received(self, data: bytes) -> None:
            if self._up is None and not toxic_set.toxics:
                self._receive(data)
                return
            if control is not None and request_line.match(data):  # a request begins: to the control paths or not
                self._to_control = control.match(data) is not None
                if self._up is not None:
                    self._link.exempt = self._to_control
            if self._up is None and self._to_control:  # its body too, whichever read it comes in
                self._receive(data)
                return
            if self._up is None:
                self._attach_toxics()
            self._up.feed(data)  # type: ignore[union-attr]

        def _attach_toxics(self) -> None:
            """From now on this connection's bytes pass the toxics (as long as it lasts: a toxic added later acts on
            it too, which is what Toxiproxy does and what a pooled client needs)."""
            real = self.transport
            link = Link(toxic_set, close=real.close, reset=lambda: rst(real))
            self._link = link
            self._up = Direction(link, "upstream", self._receive, pause=real.pause_reading, resume=real.resume_reading)
            self._down = Direction(link, "downstream", real.write, pause=self.pause_writing, resume=self.resume_writing)
            self.transport = ToxicTransport(real, self._down)
            link.current("upstream")  # timeout and reset_peer timers start now
            link.current("downstream")

        def connection_lost(self, exc: Exception | None) -> None:
            if self._up is not None:
                self._up.cancel()
                self._down.cancel()
                if self._link.ended is None:
                    self._link.ended = "closed"
            super().connection_lost(exc)

        def _receive(self, data: bytes) -> None:
            # Hot path: one length check before parsing and one identity check after.
            cycle = self.cycle
            if len(data) > MAX_HEAD_BYTES and (cycle is None or cycle.response_complete) and data.find(b"\r\n\r\n", 0, MAX_HEAD_BYTES) < 0:
                self._refuse_head()  # a new request whose head does not end within the limit
                return
            super().data_received(data)
            cycle = self.cycle
            if cycle is None or cycle.scope is not getattr(self, "scope", None):  # the head is not complete yet
                self._head_bytes += len(data)
                if self._head_bytes > MAX_HEAD_BYTES and not self.transport.is_closing():
                    self._refuse_head()
            elif self._head_bytes:
                self._head_bytes = 0

        def _refuse_head(self) -> None:
            headers, body = render_error(431, f"the request line and headers exceed {MAX_HEAD_BYTES} bytes", {"path": "", "method": "GET", "headers": []})
            head = b"".join(name + b": " + value + b"\r\n" for name, value in headers)
            self.transport.write(b"HTTP/1.1 431 Request Header Fields Too Large\r\n" + head
                                 + b"content-length: %d\r\nconnection: close\r\n\r\n" % len(body) + body)
            self.transport.close()

    return LimitedHttpToolsProtocol


class EmbeddedServer(uvicorn.Server):
    """A uvicorn server that leaves signals to its host (the panel or the headless loop)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def display_url(host: str, port: int, scheme: str = "http") -> str:
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}:{port}"


def bind_socket(host: str, port: int) -> socket.socket:
    """Bind a listening socket; raises OSError with a message for people ("port 8000 is in use")."""
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise OSError(f"cannot resolve host {host!r}: {exc.strerror}") from None
    family, socktype, proto, _, address = infos[0]
    sock = socket.socket(family, socktype, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6 and host == "::":
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind(address)
        sock.listen(2048)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise OSError(f"port {port} is in use") from None
        if exc.errno == errno.EACCES:
            raise OSError(f"permission denied binding {host}:{port}") from None
        if exc.errno == errno.EADDRNOTAVAIL:
            raise OSError(f"address {host} is not available on this machine") from None
        raise OSError(f"cannot bind {host}:{port}: {exc.strerror}") from None
    return sock


class UvicornRunner:
    """One HTTP mock server: its context, its facade, its app and the uvicorn server task that serves it."""

    def __init__(self, spec: ServerSpec, ctx: ServerContext) -> None:
        self.spec = spec
        self.name = spec.name
        self.settings = ctx.settings
        self.ctx = ctx
        built = spec.build(ctx)
        self.facade = built.facade
        self._protocol = http_protocol(spec.render_error, ctx.toxics, ("/__mockpanel/", *spec.control_prefixes))
        hosts = HostGuard(ctx.allowed_hosts, ctx.settings.get("virtual_host_suffixes") or ())
        self.app = ServiceMiddleware(built.app, ctx, create_control_app(ctx), cors=spec.cors, hosts=hosts,
                                     admin_paths=spec.admin_paths, same_site_paths=spec.same_site_paths,
                                     control_prefixes=spec.control_prefixes, door_limits=spec.door_limits)
        self.status = "stopped"
        self.reason: str | None = None
        self.url: str | None = None
        self.port: int | None = None
        self._server: EmbeddedServer | None = None
        self._task: asyncio.Task | None = None
        self._stopping = False

    def _set_status(self, status: str, reason: str | None = None) -> None:
        self.status = status
        self.reason = reason
        self.ctx.event("status", status=status, url=self.url, reason=reason)

    def describe(self) -> str:
        if self.status == "running":
            return f"{self.name}: running at {self.url}"
        if self.status == "failed":
            return f"{self.name}: failed: {self.reason}"
        return f"{self.name}: {self.status}"

    async def start(self) -> bool:
        if self.status in ("running", "starting"):
            return True
        self._stopping = False
        self._set_status("starting")
        host, port = self.settings.host, (self.port if self.port and self.settings.port == 0 else self.settings.port)
        try:
            sock = bind_socket(host, port)
        except OSError as exc:
            self._set_status("failed", str(exc))
            return False
        self.port = sock.getsockname()[1]
        tls_cert, tls_key = self.settings.get("tls_cert"), self.settings.get("tls_key")
        self.url = display_url(host, self.port, "https" if tls_cert else "http")
        config = uvicorn.Config(
            self.app,
            ssl_certfile=tls_cert,
            ssl_keyfile=tls_key,
            log_config=None,
            access_log=False,
            http=self._protocol,
            h11_max_incomplete_event_size=MAX_HEAD_BYTES,
            lifespan="off",
            timeout_graceful_shutdown=2,
            timeout_keep_alive=30,
            server_header=False,
            proxy_headers=bool(self.ctx.trusted_proxies),  # uvicorn would believe any local process by default
            forwarded_allow_ips=list(self.ctx.trusted_proxies) or None,
        )
        try:
            config.load()  # reads the certificate: a bad one fails this server, not the Hub
        except (OSError, ValueError) as exc:
            sock.close()
            self._set_status("failed", f"cannot load TLS certificate: {exc}")
            return False
        server = EmbeddedServer(config)
        self._server = server
        self._task = asyncio.create_task(self._serve(server, sock), name=f"mockpanel-{self.name}")
        while not server.started and not self._task.done():
            await asyncio.sleep(0.005)
        if server.started:
            self._set_status("running")
            return True
        return False

    async def _serve(self, server: EmbeddedServer, sock: socket.socket) -> None:
        try:
            await server.serve(sockets=[sock])
        except SystemExit as exc:
            self._set_status("failed", f"server exited during start-up (code {exc.code})")
            return
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a crashed server is reported; the others keep serving
            for listener in getattr(server, "servers", []):
                listener.close()
            self._set_status("failed", f"crashed: {type(exc).__name__}: {exc}")
            return
        finally:
            with contextlib.suppress(OSError):
                sock.close()
        if self._stopping:
            self._set_status("stopped")
        elif self.status != "failed":
            self._set_status("failed", "server stopped unexpectedly")

    async def stop(self) -> None:
        if self._task is None:
            return
        self._stopping = True
        if self._server is not None:
            self._server.should_exit = True
        try:
            await asyncio.wait_for(asyncio.shield(self._task), timeout=10)
        except asyncio.TimeoutError:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        self._task = None
        self._server = None
        for hook in self.ctx.stop_hooks:
            with contextlib.suppress(Exception):
                await hook()
        if self.status not in ("failed", "stopped"):  # _serve said so already when it ended as asked
            self._set_status("stopped")

    async def restart(self) -> bool:
        await self.stop()
        return await self.start()


