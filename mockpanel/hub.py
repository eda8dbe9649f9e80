"""The Hub: builds the enabled servers from Settings and runs each uvicorn.Server as a task in one event loop."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Mapping

import uvicorn

from .control import create_control_app
from .export import JournalWriter
from .faults import FaultInjector, policy_from_settings
from .journal import EventBus, Journal
from .service import ErrorRenderer, ServerContext, ServiceMiddleware, json_error
from .settings import ServerSettings, Setting, Settings

try:  # httptools is the fast parser (uvicorn[standard]); h11 is the pure-Python fallback
    import httptools  # noqa: F401
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    HTTP_IMPL = "httptools"
except ImportError:  # pragma: no cover
    HttpToolsProtocol = None
    HTTP_IMPL = "h11"

MAX_HEAD_BYTES = 64 * 1024  # request line + headers; httptools alone would buffer any amount


def http_protocol(render_error: "ErrorRenderer") -> Any:
    """uvicorn's httptools protocol, refusing a request head over MAX_HEAD_BYTES with 431 in the server's format,
    whether it arrives in one piece or keeps coming (httptools alone would buffer any amount)."""
    if HttpToolsProtocol is None:  # pragma: no cover - h11 has its own limit (h11_max_incomplete_event_size)
        return "h11"

    class LimitedHttpToolsProtocol(HttpToolsProtocol):
        _head_bytes = 0  # bytes received while the current request's head is incomplete

        def data_received(self, data: bytes) -> None:
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


@dataclass(frozen=True)
class ServerSpec:
    """How to build one kind of mock server."""

    name: str
    title: str
    default_port: int
    build: Callable[[ServerContext], Any]  # returns the ASGI app; may set ctx.state
    settings: tuple[Setting, ...] = ()
    enabled_by_default: bool = True
    render_error: ErrorRenderer = json_error
    max_body_bytes: int = 1024 * 1024
    preview_bytes_limit: int | None = None  # cap on journal body previews (S3 bodies are mostly binary)
    cors: bool = True


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


class ServerRunner:
    """One mock server: its context, its app and the uvicorn server task that serves it."""

    def __init__(self, spec: ServerSpec, settings: ServerSettings, journal: Journal, preview_bytes: int) -> None:
        self.spec = spec
        self.name = spec.name
        self.settings = settings
        self.ctx = ServerContext(
            name=spec.name,
            settings=settings,
            journal=journal,
            faults=FaultInjector(policy_from_settings(settings.values)),
            render_error=spec.render_error,
            max_body_bytes=spec.max_body_bytes,
            preview_bytes=min(preview_bytes, spec.preview_bytes_limit) if spec.preview_bytes_limit is not None else preview_bytes,
        )
        app = spec.build(self.ctx)
        self._protocol = http_protocol(spec.render_error)
        self.app = ServiceMiddleware(app, self.ctx, create_control_app(self.ctx), cors=spec.cors)
        self.status = "stopped"
        self.reason: str | None = None
        self.url: str | None = None
        self.port: int | None = None
        self._server: EmbeddedServer | None = None
        self._task: asyncio.Task | None = None
        self._stopping = False

    @property
    def state(self) -> Any:
        return self.ctx.state

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
        if self.status != "failed":
            self._set_status("stopped")

    async def restart(self) -> bool:
        await self.stop()
        return await self.start()


class _LogToBus(logging.Handler):
    """uvicorn's own log lines go to the bus (and a short buffer), never straight into the terminal."""

    def __init__(self, hub: "Hub") -> None:
        super().__init__(logging.WARNING)
        self.hub = hub

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
            if record.exc_info and record.exc_info[1] is not None:
                message += f": {type(record.exc_info[1]).__name__}: {record.exc_info[1]}"
            self.hub.log.append(message)
            self.hub.bus.event("mockpanel", "log", level=record.levelname.lower(), message=message)
        except Exception:  # pragma: no cover - logging must never raise
            pass


class Hub:
    """Runs every enabled server in the current event loop; the TUI, headless mode and tests share it."""

    def __init__(self, settings: Settings, specs: Mapping[str, ServerSpec] | None = None) -> None:
        if specs is None:
            from .servers import SERVERS

            specs = SERVERS
        self.settings = settings
        self.bus = EventBus()
        self.journal = Journal(self.bus, maxlen=settings.journal_size)
        self.log: deque[str] = deque(maxlen=200)
        self.runners: dict[str, ServerRunner] = {}
        for srv in settings.enabled():
            self.runners[srv.name] = ServerRunner(specs[srv.name], srv, self.journal, settings.body_preview_bytes)
            self.runners[srv.name].ctx.peers = self.urls
            self.runners[srv.name].ctx.admin_token = settings.admin_token
        self._log_handler = _LogToBus(self)
        self.scenario_run: Any = None  # the ScenarioRun in progress or last run
        self._writers: list[JournalWriter] = []

    def __getitem__(self, name: str) -> ServerRunner:
        return self.runners[name]

    def __contains__(self, name: str) -> bool:
        return name in self.runners

    def urls(self) -> dict[str, str]:
        return {name: r.url for name, r in self.runners.items() if r.status == "running" and r.url}

    def failed(self) -> dict[str, str]:
        return {name: r.reason or "failed" for name, r in self.runners.items() if r.status == "failed"}

    async def start(self) -> dict[str, str]:
        """Start every enabled server; returns {name: url} of those running (failures are in .failed())."""
        for name in ("uvicorn", "uvicorn.error", "uvicorn.asgi"):
            logger = logging.getLogger(name)
            logger.propagate = False
            if self._log_handler not in logger.handlers:
                logger.addHandler(self._log_handler)
        await asyncio.gather(*(r.start() for r in self.runners.values()))
        return self.urls()

    async def stop(self) -> None:
        await self.stop_scenario()
        await asyncio.gather(*(r.stop() for r in self.runners.values()))
        for name in ("uvicorn", "uvicorn.error", "uvicorn.asgi"):
            logging.getLogger(name).removeHandler(self._log_handler)
        for writer in self._writers:
            writer.close()
        self._writers.clear()

    def write_journal(self, path: Any) -> JournalWriter:
        """Append every request from now on to `path` as JSON lines (closed when the Hub stops)."""
        writer = JournalWriter(path)
        self.bus.subscribe(writer)
        self._writers.append(writer)
        return writer

    async def start_scenario(self, scenario: Any) -> Any:
        """Run a Scenario from now (a running one is stopped first and its active steps reverted)."""
        from .scenario import ScenarioRun

        await self.stop_scenario()
        self.scenario_run = ScenarioRun(self, scenario).start()
        return self.scenario_run

    async def stop_scenario(self) -> None:
        if self.scenario_run is not None:
            await self.scenario_run.stop()

    async def reset(self) -> None:
        for runner in self.runners.values():
            await runner.ctx.reset()
