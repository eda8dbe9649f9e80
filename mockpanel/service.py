"""What every mock server shares: its context (journal, faults, stats) and the pure-ASGI middleware that applies them."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from time import perf_counter
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable
from urllib.parse import parse_qsl

from starlette.middleware.cors import CORSMiddleware

from . import tracing
from .clock import MockClock
from .faults import FaultDecision, FaultInjector
from .guard import Guard, HostGuard, cross_site, host_refused, json_error
from .journal import EventBus, ServerJournal, percentile
from .settings import ServerSettings
from .toxics import ToxicSet

CONTROL_PREFIX = "/__mockpanel/"
OTLP_PATH = "/__mockpanel/v1/traces"
STATE_PATH = "/__mockpanel/state"  # PUT: a state archive, streamed to disk by its route (state.py), never held by the guard
STATE_TYPES = (b"application/x-tar", b"application/octet-stream")
# Wall-clock time = perf_counter() + this: one clock read per request instead of two.
_WALL_OFFSET = time.time() - perf_counter()

# render_error(status, message, scope) -> (headers, body); each server speaks its own error format.
ErrorRenderer = Callable[[int, str, dict], tuple[list[tuple[bytes, bytes]], bytes]]


class BodyTooLarge(Exception):
    """A request body passed the server's limit; servers answer 413 in their own format."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"request body is larger than the limit of {limit} bytes")
        self.limit = limit


class ServerStats:
    """Counters behind /health metrics and the panel's Servers pane, and a running window of answered requests'
    durations for p50/p95 (kept apart from the journal: clearing the journal's view leaves the figures)."""

    __slots__ = ("total", "errors", "endpoints", "max_endpoints", "durations")

    def __init__(self, max_endpoints: int = 500, window: int = 2048) -> None:
        self.total = 0
        self.errors = 0
        self.endpoints: dict[tuple[str, str], int] = {}
        self.max_endpoints = max_endpoints
        self.durations: deque[float] = deque(maxlen=window)

    def record(self, key: tuple[str, str], status: int, duration_ms: float = 0.0) -> None:
        self.total += 1
        if status >= 400 or not status:  # no status: dropped, hung or abandoned, an error all the same
            self.errors += 1
        if status:
            self.durations.append(duration_ms)
        endpoints = self.endpoints
        if key in endpoints:
            endpoints[key] += 1
        elif len(endpoints) < self.max_endpoints:
            endpoints[key] = 1
        else:
            endpoints[("*", "(other)")] = endpoints.get(("*", "(other)"), 0) + 1

    def reset(self) -> None:
        self.total = self.errors = 0
        self.endpoints.clear()
        self.durations.clear()

    def latency(self) -> tuple[float | None, float | None]:
        """p50 and p95 (ms) of the recent answered requests."""
        ordered = sorted(self.durations)
        return percentile(ordered, 0.5), percentile(ordered, 0.95)

    def as_dict(self) -> dict[str, Any]:
        return {
            "total_requests": self.total,
            "total_errors": self.errors,
            "error_rate": round(self.errors / self.total, 3) if self.total else 0.0,
            "endpoints": {f"{method} {path}": n for (method, path), n in self.endpoints.items()},
        }


@dataclass
class ServerContext:
    """Everything a server's builder gets: its settings, its journal ring (and through it the bus), its fault injector."""

    name: str
    settings: ServerSettings
    journal: ServerJournal
    faults: FaultInjector
    stats: ServerStats = field(default_factory=ServerStats)
    render_error: ErrorRenderer = json_error
    max_body_bytes: int = 1024 * 1024
    preview_bytes: int = 2048
    reset_hooks: list[Callable[[], Any]] = field(default_factory=list)
    stop_hooks: list[Callable[[], Any]] = field(default_factory=list)  # awaited when the server stops (close clients)
    control_routers: list[Any] = field(default_factory=list)  # extra /__mockpanel/ routes a server adds (APIRouter)
    peers: Callable[[], dict[str, str]] = dict  # {server: url} of the servers running beside this one (set by the Hub)
    admin_token: str | None = None  # when set, every control API call must carry it (MOCKPANEL_ADMIN_TOKEN)
    allowed_hosts: tuple[str, ...] = ()  # the allowed_hosts setting (the Host allow-list adds the defaults)
    trusted_proxies: tuple[str, ...] = ()  # whose X-Forwarded-* uvicorn believes (none unless configured)
    admin_scope: str = "control"  # what admin_token guards: the control API, or "all" (the seeds' admin endpoints too)
    clock: MockClock = field(default_factory=MockClock)  # the mocks' one clock (the Hub's): clock() is "now" (clock.py)
    notices: list[str] = field(default_factory=list)  # the settings' notices: what a server says once it is built
    watch: list[Any] = field(default_factory=lambda: [None, None])  # the Hub's watchdog slot: [server, scope]
    loop_health: Callable[[], dict[str, Any]] = dict  # the Hub's watchdog summary (stalls of the shared loop)
    cors_owner: Callable[[dict], bool] | None = None  # True: the server answers this request's CORS itself (S3 bucket rules)
    toxics: ToxicSet = field(default_factory=ToxicSet)  # network faults on this server's connections (toxics.py)
    smtp_peer: Callable[[], "tuple[str, int] | None"] = lambda: None  # (host, port) of the mail server beside it (the Hub's)
    http_faults: bool = True  # False: the fault policy acts on the server's other protocol only (the mail catcher's SMTP)

    def __post_init__(self) -> None:
        # Every change of the policy is an event, whoever made it (a key, the palette, the control API, a scenario).
        self.faults.on_change = lambda policy: self.event("faults_changed", active=policy.active, faults=policy.describe())
        self.toxics.on_change = lambda toxics: self.event("toxics_changed", toxics=[t.describe() for t in toxics])

    @property
    def bus(self) -> EventBus:
        return self.journal.bus

    def event(self, kind: str, **data: Any) -> None:
        self.journal.bus.event(self.name, kind, **data)

    def on_reset(self, hook: Callable[[], Any]) -> None:
        self.reset_hooks.append(hook)

    def on_stop(self, hook: Callable[[], Any]) -> None:
        self.stop_hooks.append(hook)

    async def reset(self) -> None:
        if self.clock.virtual:  # the clock is every server's state: any server's reset puts it back to the wall clock
            self.clock.reset()
        for hook in self.reset_hooks:
            result = hook()
            if asyncio.iscoroutine(result):
                await result
        self.stats.reset()
        self.event("reset")


def _transport_of(receive: Any) -> Any:
    # uvicorn's receive is a bound method of its request cycle, which holds the connection's transport.
    return getattr(getattr(receive, "__self__", None), "transport", None)


async def wait_for_disconnect(receive: Callable[[], Awaitable[dict]]) -> None:
    """Hold until the client goes away (with the body read, the ASGI server's receive answers only then)."""
    while (await receive())["type"] != "http.disconnect":
        pass


class ServiceMiddleware:
    """Pure ASGI: applies the fault policy, enforces the body limit and records every request in the journal.

    The control API (/__mockpanel/...) passes straight through: no faults, not journaled.
    """

    def __init__(self, app: Callable, ctx: ServerContext, control: Callable | None = None, cors: bool = False,
                 hosts: HostGuard | None = None, admin_paths: tuple[tuple[str, str], ...] = (),
                 same_site_paths: tuple[tuple[str, str], ...] = (), control_prefixes: tuple[str, ...] = (),
                 door_limits: dict[str, int] | None = None) -> None:
        from .otlp import MAX_BODY as OTLP_MAX_BODY

        self.app = app
        self.ctx = ctx
        self.control = control or app
        self.hosts = hosts or HostGuard()
        # Every door of this server (the control API, attach, a stub server's /__admin/) passes this one guard.
        self.guard = Guard(self.hosts, ctx.admin_token, json_error, other_types={OTLP_PATH: (b"application/x-protobuf",)},
                           limits={OTLP_PATH: OTLP_MAX_BODY, **(door_limits or {})}, streamed={STATE_PATH: STATE_TYPES})
        # The seeds' admin endpoints need the admin token too when admin_token_scope = "all".
        self.admin_paths = admin_paths if ctx.admin_token and ctx.admin_scope == "all" else ()
        self.same_site_paths = same_site_paths  # state changes a page on another site must not make (webhook replay)
        self.guarded = bool(self.admin_paths or self.same_site_paths)
        self.control_prefixes = (CONTROL_PREFIX, *control_prefixes)  # guarded alike: no faults, not journaled
        # CORS goes outside faults (so browsers see injected errors) but costs ~9 us a request: only for requests with Origin.
        origins = list(ctx.settings.get("cors_origins") or ("*",))
        self.cors = (
            CORSMiddleware(self, allow_origins=origins, allow_methods=["*"], allow_headers=["*"], expose_headers=["*"])
            if cors
            else None
        )

    async def _refuse(self, send: Callable, scope: dict, status: int, message: str) -> None:
        """A refusal before anything else ran: the server's own error format, the connection closed (its body, if
        any, is never read)."""
        await self._send_error(send, scope, status, message, body_unread=True)

    def _guarded_path(self, scope: dict, paths: tuple[tuple[str, str], ...]) -> bool:
        method, path = scope["method"], scope["path"]
        return any(method == m and path.startswith(p) for m, p in paths)

    async def _send_error(self, send: Callable, scope: dict, status: int, message: str, cap: list | None = None,
                          body_unread: bool = False) -> None:
        """Answer with an error in the server's own format; `cap` (the request's capture) records what was sent.

        With the request body unread (a client that sent `Expect: 100-continue` never sends it), the connection is
        closed after the answer: kept alive, its next request would be read as the rest of this body.
        """
        headers, body = self.ctx.render_error(status, message, scope)
        if scope["method"] == "HEAD":
            body = b""
        headers = [*headers, (b"content-length", str(len(body)).encode())]
        if body_unread:
            headers.append((b"connection", b"close"))
        if cap is not None:
            cap[0], cap[1], cap[2], cap[3] = status, headers, len(body), body[: self.ctx.preview_bytes]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        """Every request runs this once: it is the hot path, so it keeps raw values and formats nothing."""
        if scope["type"] != "http":
            hosts = [v for k, v in scope["headers"] if k == b"host"] if scope["type"] == "websocket" else []
            if scope["type"] == "websocket" and (len(hosts) != 1 or not self.hosts.allows(hosts[0])):
                await send({"type": "websocket.close", "code": 1008})  # DNS rebinding: refused before the handshake (403)
                return
            await self.app(scope, receive, send)
            return
        # One pass over the headers: the Host, the declared body size, whether a body comes at all, an Origin.
        host = None
        declared = None
        has_body = False
        origin = False
        traceparent = tracestate = None
        for key, value in scope["headers"]:
            if key == b"host":
                if host is not None:  # RFC 9112 3.2: the guard would judge one Host and the app use the other
                    await self._refuse(send, scope, 400, "a request has one Host header, this one has several")
                    return
                host = value
            elif key == b"content-length":
                declared = value
                has_body = value != b"0"
            elif key == b"transfer-encoding":
                has_body = True
            elif key == b"origin":
                origin = True
            elif key == b"traceparent":
                traceparent = value
            elif key == b"tracestate":
                tracestate = value
        if not self.hosts.allows(host):  # DNS rebinding: a page's own name resolving to 127.0.0.1
            await self._refuse(send, scope, 403, host_refused(host))
            return
        if scope["path"].startswith(self.control_prefixes):
            self.ctx.watch[0], self.ctx.watch[1] = self.ctx.name, scope  # a control call holding the loop is named too
            # The control API speaks JSON on every server; other doors (a stub's /__admin/) the server's own format.
            await self.guard(scope, receive, send, self.control, "the control API",
                             None if scope["path"].startswith(CONTROL_PREFIX) else self.ctx.render_error)
            return
        if self.guarded:
            if self.admin_paths and self._guarded_path(scope, self.admin_paths) and not self.guard.token_ok(scope):
                await self.guard.refuse(send, scope, 401, "this admin endpoint needs the admin token (admin_token_scope = \"all\")")
                return
            if self.same_site_paths and self._guarded_path(scope, self.same_site_paths):
                why = cross_site(scope)
                if why is not None:
                    await self._refuse(send, scope, 403, f"refused a cross-site request ({why}): this call changes state")
                    return
        if origin and self.cors is not None and "mockpanel.cors" not in scope and not (self.ctx.cors_owner and self.ctx.cors_owner(scope)):
            scope["mockpanel.cors"] = True  # CORSMiddleware calls back into this method once
            await self.cors(scope, receive, send)
            return
        ctx = self.ctx
        watch = ctx.watch
        watch[0], watch[1] = ctx.name, scope  # the request in progress, should the loop stall
        span = tracing.start(traceparent, tracestate)
        span_token = tracing.current.set(span)  # the calls this request makes carry its trace (tracing.headers())
        started = perf_counter()
        limit = ctx.max_body_bytes
        preview_limit = ctx.preview_bytes
        # Shared by the wrappers: [status, response headers, response size, response preview,
        # request size, request preview, body over the limit]
        cap: list[Any] = [0, (), 0, b"", 0, b"", False]
        fault: FaultDecision | None = None

        async def receive_wrapper() -> dict:
            message = await receive()
            chunk = message.get("body")
            if chunk:
                size = cap[4] = cap[4] + len(chunk)
                if size > limit:
                    cap[6] = True
                    raise BodyTooLarge(limit)
                if len(cap[5]) < preview_limit:
                    cap[5] += chunk[: preview_limit - len(cap[5])]
            return message

        async def send_wrapper(message: dict) -> None:
            if cap[6]:
                # Whatever the app made of the exception (FastAPI: a 400), the client gets one clear 413.
                # (Through `send`, never `send_wrapper`: a closure that refers to itself is a reference cycle, and a
                # cycle per request leaves every request's objects to the garbage collector: -10% throughput.)
                if message["type"] == "http.response.start":
                    await self._send_error(send, scope, 413, f"request body is larger than the limit of {limit} bytes", cap, True)
                return
            if message["type"] == "http.response.start":
                cap[0] = message["status"]
                cap[1] = message.get("headers", ())
            else:
                chunk = message.get("body")
                if chunk:
                    cap[2] += len(chunk)
                    if len(cap[3]) < preview_limit:
                        cap[3] += chunk[: preview_limit - len(cap[3])]
            await send(message)

        try:
            if declared is not None and len(declared) > 18 or (declared and declared.isdigit() and int(declared) > limit):
                await self._send_error(send, scope, 413, f"request body is larger than the limit of {limit} bytes", cap, has_body)
                return
            simulate = None
            qs = scope["query_string"]
            if b"simulate_error" in qs:
                raw = dict(parse_qsl(qs.decode("latin-1"))).get("simulate_error")
                if raw is not None:
                    if not (raw.isascii() and raw.isdigit() and 400 <= int(raw) <= 599):
                        await self._send_error(send, scope, 400, f"simulate_error must be an HTTP error status from 400 to 599, got {raw!r}", cap, has_body)
                        return
                    simulate = int(raw)
            fault = ctx.faults.decide(simulate) if (simulate is not None or (ctx.faults.active and ctx.http_faults)) else None
            if fault is not None:
                if fault.delay_s:
                    await asyncio.sleep(fault.delay_s)
                if fault.drop:
                    transport = _transport_of(receive)
                    if transport is not None:
                        transport.abort()
                        await wait_for_disconnect(receive)
                        return
                if fault.hang:
                    await wait_for_disconnect(receive)
                    return
                if fault.status is not None:
                    await self._send_error(send, scope, fault.status, f"injected fault: {fault.label}", cap, has_body)
                    return
            try:
                await self.app(scope, receive_wrapper if has_body else receive, send_wrapper)
            except BodyTooLarge:
                if not cap[0]:
                    await self._send_error(send, scope, 413, f"request body is larger than the limit of {limit} bytes", cap, True)
        finally:
            duration_ms = (perf_counter() - started) * 1000
            route = scope.get("route")
            template = route.path if route is not None and hasattr(route, "path") else scope["path"]
            method = scope["method"]
            ctx.stats.record((method, template), cap[0], duration_ms)
            # A plain tuple in RequestEntry's field order, of tuples, strings, bytes and numbers only: the garbage
            # collector stops tracking such a tuple at its first pass, so 10,000 journaled requests a server add
            # nothing to the full collections that pause the shared loop (header lists would keep each row tracked).
            ctx.journal.record(
                (
                    ctx.journal.next_id(), started + _WALL_OFFSET, ctx.name, method, scope["path"], scope["query_string"], cap[0],
                    duration_ms, cap[4], cap[2], tuple(scope["headers"]), tuple(cap[1]), cap[5], cap[3],
                    fault.label if fault is not None else None, scope.get("client") or (), template,
                    span.trace_id, span.span_id, span.parent_id, ctx.clock.virtual_now(),
                )
            )
            tracing.current.reset(span_token)
