"""The mocks' side of `mockpanel attach`: two routes every server answers under its control API (so behind the one
guard every door passes: guard.Guard), and one broadcast of the bus that every attached panel shares.

  POST /__mockpanel/panel/call    {"op": name, "args": [...]}: one of the panel's operations (@panel_op), by name
  GET  /__mockpanel/panel/events  server-sent events: the bus items (requests, domain events) in batches

A batch is encoded once for every reader (16 readers cost what one does), readers are capped, and a reader whose
socket stays full past its byte budget is dropped, its connection closed: a panel that stops reading costs the
mocks a bounded amount, never the flood. The panel's side (the client) is attach.py."""

from __future__ import annotations

import asyncio
import importlib
import json
import pkgutil
from collections import deque
from typing import Any, AsyncIterator, Callable

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from . import wire
from .guard import cross_site
from .hubclient import LOCAL_OPS, OPS
from .journal import DomainEvent, change_source
from .service import _transport_of
from .spec import DomainError, ScenarioError

CALL_PATH = "/__mockpanel/panel/call"
EVENTS_PATH = "/__mockpanel/panel/events"
FEED_SECONDS = 0.25  # batches, not an event a request: the panel drains its queue this often
FEED_KEEPALIVE_S = 15.0
MAX_FEED_REQUESTS = 2_000  # an attached panel shows the newest requests of a flood (the journal keeps all of them)
MAX_FEED_EVENTS = 2_000
MAX_READERS = 16  # attached panels (event streams) at once, over every server of the Hub
MAX_READER_BYTES = 8 * 1024 * 1024  # encoded batches waiting for one reader; past it, the reader is dropped
SOURCE = "an attached panel"


def _load_operations() -> None:
    """The panes' operations are registered where the panes are: every module of mockpanel.screens, imported once
    (in `serve`, at the first call). The app itself is not imported: it imports the Hub."""
    global _loaded
    if _loaded:  # not "any screen's operation is known": one screen imported alone (a test, a tool) registers only its own
        return
    from . import screens

    for module in pkgutil.iter_modules(screens.__path__):
        importlib.import_module(f"{screens.__name__}.{module.name}")
    _loaded = True


_loaded = False


def _error(status: int, kind: str, message: str) -> Any:
    return JSONResponse({"detail": message, "error": kind}, status_code=status)


def panel_routes(hub: Any) -> APIRouter:
    """The attach routes of one Hub (every server of it answers them: any server's URL attaches)."""
    router = APIRouter(prefix="/__mockpanel/panel", tags=["attached panels"])
    broadcast = Broadcast(hub)

    @router.post("/call", summary="Run one of the panel's operations (mockpanel attach); the result in mockpanel's wire JSON")
    async def call(request: Request) -> Any:
        body = await request.body()  # the guard bounded it (1 MiB) and refused what is not JSON, or too deep
        try:
            message = wire.loads(body, records=False)  # plain data only: a call constructs nothing
        except wire.WireError as exc:
            return _error(400, "WireError", f"not a panel call: {exc}")
        if not isinstance(message, dict) or not isinstance(message.get("op"), str) or not isinstance(message.get("args", []), list):
            return _error(400, "WireError", 'not a panel call: expected {"op": name, "args": [...]}')
        _load_operations()
        name = message["op"]
        fn = OPS.get(name)
        if fn is None or name in LOCAL_OPS:
            return _error(404, "UnknownOperation", f"no panel operation {name[:80]!r} (the panel and the mocks are different versions?)")
        token = change_source.set(SOURCE)
        try:
            result = fn(hub, *message.get("args", []))
            if asyncio.iscoroutine(result):
                result = await result
            encoded = wire.dumps({"result": result})
        except DomainError as exc:
            return _error(exc.status, type(exc).__name__, exc.message)
        except ScenarioError as exc:
            return _error(400, "ScenarioError", str(exc))
        except (TypeError, ValueError, LookupError, OverflowError) as exc:  # arguments the operation does not take
            return _error(400, "BadCall", f"{name}: {type(exc).__name__}: {str(exc)[:300]}")
        finally:
            change_source.reset(token)
        return Response(encoded, media_type="application/json")

    @router.get("/events", summary="Server-sent events for an attached panel: requests and domain events, in batches",
                response_class=StreamingResponse, responses={200: {"content": {"text/event-stream": {}}}})
    async def events(request: Request) -> Any:
        why = cross_site(request.scope)
        if why is not None:  # a page of another site has nothing to read here, nor a connection to hold open
            return _error(403, "CrossSite", f"refused a cross-site request ({why})")
        transport = _transport_of(request.receive)
        reader = broadcast.join(transport.abort if transport is not None else None)
        if reader is None:
            return _error(503, "TooManyReaders", f"at most {MAX_READERS} attached panels at once; close one")
        return StreamingResponse(reader.stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    router.broadcast = broadcast  # type: ignore[attr-defined]  (tests and the Hub read how many are attached)
    return router


class Broadcast:
    """The bus as every attached panel reads it: subscribed once while any reader is attached, bounded (the newest
    requests of a flood, the newest events), encoded once every FEED_SECONDS for all readers."""

    def __init__(self, hub: Any) -> None:
        self.hub = hub
        self.readers: list[Reader] = []
        self.requests: deque = deque(maxlen=MAX_FEED_REQUESTS)
        self.events: deque = deque(maxlen=MAX_FEED_EVENTS)
        self.dropped = 0
        self._unsubscribe: Callable[[], None] | None = None
        self._flush: asyncio.TimerHandle | None = None

    def __call__(self, item: Any) -> None:
        queue = self.events if isinstance(item, DomainEvent) else self.requests
        if len(queue) == queue.maxlen:
            self.dropped += 1
        queue.append(item)
        if self._flush is None:
            self._flush = asyncio.get_running_loop().call_later(FEED_SECONDS, self.flush)

    def flush(self) -> None:
        self._flush = None
        items = [*self.events, *self.requests]
        self.events.clear()
        self.requests.clear()
        dropped, self.dropped = self.dropped, 0
        if not items:
            return
        chunk = f"data: {_dumps_items(items, dropped)}\n\n".encode()
        for reader in list(self.readers):
            reader.offer(chunk)

    def join(self, abort: Callable[[], None] | None) -> "Reader | None":
        if len(self.readers) >= MAX_READERS:
            return None
        reader = Reader(self, abort)
        self.readers.append(reader)
        if self._unsubscribe is None:
            self._unsubscribe = self.hub.bus.subscribe(self)
        return reader

    def leave(self, reader: "Reader") -> None:
        if reader in self.readers:
            self.readers.remove(reader)
        if not self.readers and self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
            if self._flush is not None:
                self._flush.cancel()
                self._flush = None
            self.requests.clear()
            self.events.clear()


class Reader:
    """One attached panel's stream: the encoded batches waiting for its socket, at most MAX_READER_BYTES."""

    def __init__(self, broadcast: Broadcast, abort: Callable[[], None] | None) -> None:
        self.broadcast = broadcast
        self.abort = abort
        self.waiting: deque[bytes] = deque()
        self.bytes = 0
        self.dropped = False
        self.wake = asyncio.Event()

    def offer(self, chunk: bytes) -> None:
        if self.dropped:
            return
        if self.bytes + len(chunk) > MAX_READER_BYTES:
            # Its socket has stayed full for megabytes of batches: it reads no more. Drop it and end its connection
            # (a send blocked on a full socket would otherwise wait for ever).
            self.dropped = True
            self.waiting.clear()
            self.bytes = 0
            self.broadcast.leave(self)
            if self.abort is not None:
                self.abort()
        else:
            self.waiting.append(chunk)
            self.bytes += len(chunk)
        self.wake.set()

    async def stream(self) -> AsyncIterator[bytes]:
        hub = self.broadcast.hub
        try:
            yield b"retry: 2000\n\n"
            idle = 0.0
            while not hub.closing and not self.dropped:  # checked every second: a stopping Hub ends its streams
                if not self.waiting:
                    self.wake.clear()
                    try:
                        await asyncio.wait_for(self.wake.wait(), 1.0)
                    except asyncio.TimeoutError:
                        idle += 1.0
                        if idle >= FEED_KEEPALIVE_S:
                            idle = 0.0
                            yield b": keep-alive\n\n"
                    continue
                idle = 0.0
                chunk = self.waiting.popleft()
                self.bytes -= len(chunk)
                yield chunk
        finally:
            self.broadcast.leave(self)


def _dumps_items(items: list[Any], dropped: int) -> str:
    encoded = []
    for item in items:
        try:
            encoded.append(wire.encode(item))
        except wire.WireError:  # an event whose data holds something the wire does not carry: its words
            encoded.append(wire.encode(DomainEvent(item.server, item.kind, {"message": repr(item.data)[:500]}, item.time, item.source)))
    return json.dumps({"items": encoded, "dropped": dropped}, separators=(",", ":"), ensure_ascii=False)
