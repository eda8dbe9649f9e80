"""What every mock server shares: its context (journal, faults, stats) and the pure-ASGI middleware that applies them."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable
from urllib.parse import parse_qsl

from .faults import FaultDecision, FaultInjector
from .journal import EventBus, Journal, RequestEntry
from .settings import ServerSettings

CONTROL_PREFIX = "/__mockpanel/"

# render_error(status, message, scope) -> (content-type, body bytes); each server speaks its own error format.
ErrorRenderer = Callable[[int, str, dict], tuple[bytes, bytes]]


class BodyTooLarge(Exception):
    """A request body passed the server's limit; servers answer 413 in their own format."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"request body is larger than the limit of {limit} bytes")
        self.limit = limit


class ServerStats:
    """Counters behind /health metrics and the panel's Servers pane."""

    __slots__ = ("total", "errors", "endpoints", "latencies", "max_endpoints")

    def __init__(self, max_endpoints: int = 500) -> None:
        self.total = 0
        self.errors = 0
        self.endpoints: dict[str, int] = {}
        self.latencies: deque[float] = deque(maxlen=2048)
        self.max_endpoints = max_endpoints

    def record(self, key: str, status: int, duration_ms: float) -> None:
        self.total += 1
        if status >= 400:
            self.errors += 1
        endpoints = self.endpoints
        if key in endpoints:
            endpoints[key] += 1
        elif len(endpoints) < self.max_endpoints:
            endpoints[key] = 1
        else:
            endpoints["(other)"] = endpoints.get("(other)", 0) + 1
        self.latencies.append(duration_ms)

    def reset(self) -> None:
        self.total = self.errors = 0
        self.endpoints.clear()
        self.latencies.clear()

    def percentile(self, q: float) -> float | None:
        if not self.latencies:
            return None
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    def as_dict(self) -> dict[str, Any]:
        return {
            "total_requests": self.total,
            "total_errors": self.errors,
            "error_rate": round(self.errors / self.total, 3) if self.total else 0.0,
            "endpoints": dict(self.endpoints),
        }


def json_error(status: int, message: str, scope: dict) -> tuple[bytes, bytes]:
    import json

    return b"application/json", json.dumps({"detail": message}).encode()


@dataclass
class ServerContext:
    """Everything a server's app factory gets: its settings and the shared journal, bus and fault injector."""

    name: str
    settings: ServerSettings
    journal: Journal
    faults: FaultInjector
    stats: ServerStats = field(default_factory=ServerStats)
    render_error: ErrorRenderer = json_error
    max_body_bytes: int = 1024 * 1024
    preview_bytes: int = 2048
    reset_hooks: list[Callable[[], Any]] = field(default_factory=list)
    state: Any = None  # the server's domain state (users, buckets, events), for front ends and tests

    @property
    def bus(self) -> EventBus:
        return self.journal.bus

    def event(self, kind: str, **data: Any) -> None:
        self.journal.bus.event(self.name, kind, **data)

    def on_reset(self, hook: Callable[[], Any]) -> None:
        self.reset_hooks.append(hook)

    async def reset(self) -> None:
        for hook in self.reset_hooks:
            result = hook()
            if asyncio.iscoroutine(result):
                await result
        self.stats.reset()
        self.event("reset")


def _transport_of(receive: Any) -> Any:
    # uvicorn's receive is a bound method of its request cycle, which holds the connection's transport.
    return getattr(getattr(receive, "__self__", None), "transport", None)


async def _wait_for_disconnect(receive: Callable[[], Awaitable[dict]]) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


class ServiceMiddleware:
    """Pure ASGI: applies the fault policy, enforces the body limit and records every request in the journal.

    The control API (/__mockpanel/...) passes straight through: no faults, not journaled.
    """

    def __init__(self, app: Callable, ctx: ServerContext, control: Callable | None = None) -> None:
        self.app = app
        self.ctx = ctx
        self.control = control or app

    async def _send_error(self, send: Callable, scope: dict, status: int, message: str) -> None:
        content_type, body = self.ctx.render_error(status, message, scope)
        if scope["method"] == "HEAD":
            body = b""
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", content_type), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"].startswith(CONTROL_PREFIX):
            await self.control(scope, receive, send)
            return
        ctx = self.ctx
        wall = time.time()
        started = time.perf_counter()
        limit = ctx.max_body_bytes
        preview_limit = ctx.preview_bytes
        # Mutable capture shared by the wrappers: [status, response headers, response size, response preview,
        # request size, request preview]
        cap: list[Any] = [0, [], 0, b"", 0, b""]
        fault: FaultDecision | None = None
        too_large = [False]

        async def receive_wrapper() -> dict:
            message = await receive()
            if message["type"] == "http.request":
                chunk = message.get("body", b"")
                if chunk:
                    size = cap[4] + len(chunk)
                    cap[4] = size
                    if size > limit:
                        too_large[0] = True
                        raise BodyTooLarge(limit)
                    if len(cap[5]) < preview_limit:
                        cap[5] += chunk[: preview_limit - len(cap[5])]
            return message

        async def send_wrapper(message: dict) -> None:
            if too_large[0]:
                # Whatever the app made of the exception (FastAPI: a 400), the client gets one clear 413.
                if message["type"] == "http.response.start":
                    too_large[0] = False
                    await self._send_error(send_wrapper, scope, 413, f"request body is larger than the limit of {limit} bytes")
                    too_large[0] = True
                return
            if message["type"] == "http.response.start":
                cap[0] = message["status"]
                cap[1] = message.get("headers", [])
            else:
                chunk = message.get("body", b"")
                if chunk:
                    cap[2] += len(chunk)
                    if len(cap[3]) < preview_limit:
                        cap[3] += chunk[: preview_limit - len(cap[3])]
            await send(message)

        try:
            declared = None
            for key, value in scope["headers"]:
                if key == b"content-length":
                    declared = value
                    break
            if declared is not None and declared.isdigit() and int(declared) > limit:
                await self._send_error(send_wrapper, scope, 413, f"request body is larger than the limit of {limit} bytes")
                return

            simulate = None
            qs = scope["query_string"]
            if b"simulate_error" in qs:
                raw = dict(parse_qsl(qs.decode("latin-1"))).get("simulate_error")
                if raw is not None:
                    if not (raw.isdigit() and 400 <= int(raw) <= 599):
                        await self._send_error(send_wrapper, scope, 400, f"simulate_error must be an HTTP error status from 400 to 599, got {raw!r}")
                        return
                    simulate = int(raw)
            fault = ctx.faults.decide(simulate)
            if fault is not None:
                if fault.delay_s:
                    await asyncio.sleep(fault.delay_s)
                if fault.drop:
                    transport = _transport_of(receive)
                    if transport is not None:
                        transport.abort()
                        await _wait_for_disconnect(receive)
                        return
                if fault.hang:
                    await _wait_for_disconnect(receive)
                    return
                if fault.status is not None:
                    await self._send_error(send_wrapper, scope, fault.status, f"injected fault: {fault.label}")
                    return
            try:
                await self.app(scope, receive_wrapper, send_wrapper)
            except BodyTooLarge:
                if not cap[0]:
                    too_large[0] = False
                    await self._send_error(send_wrapper, scope, 413, f"request body is larger than the limit of {limit} bytes")
        finally:
            duration_ms = (time.perf_counter() - started) * 1000
            route = scope.get("route")
            path = scope["path"]
            template = getattr(route, "path", None) or path
            method = scope["method"]
            status = cap[0]
            ctx.stats.record(f"{method} {template}", status, duration_ms)
            client = scope.get("client")
            ctx.journal.record(
                RequestEntry(
                    ctx.journal.next_id(),
                    wall,
                    ctx.name,
                    method,
                    path,
                    scope["query_string"].decode("latin-1"),
                    status,
                    duration_ms,
                    cap[4],
                    cap[2],
                    scope["headers"],
                    cap[1],
                    cap[5],
                    cap[3],
                    fault.label if fault is not None else None,
                    f"{client[0]}:{client[1]}" if client else None,
                    template,
                )
            )
