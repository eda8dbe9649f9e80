"""`mockpanel attach [URL]`: the panel on mocks running elsewhere — `mockpanel start` in the background, `serve` in
CI, a container — through the same interface the in-process panel uses (hubclient.HubClient), over HTTP.

The mocks' side: every server answers two more control routes (added by the Hub, guarded like the rest of
/__mockpanel/: the Host allow-list, the admin token when set, no request from a page of another site):
  POST /__mockpanel/panel/call    {"op": name, "args": [...]}: one of the panel's operations (@panel_op), by name
  GET  /__mockpanel/panel/events  server-sent events: the bus items (requests, domain events) in batches
The panel's side: RemoteHubClient, which sends the operations and reads the event stream in a thread of its own.
Both ends speak wire.py's JSON. Several panels can watch one set of mocks; closing one leaves the mocks running."""

from __future__ import annotations

import asyncio
import json
import threading
from collections import deque
from typing import Any, AsyncIterator, Callable

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from . import wire
from .hubclient import LOCAL_OPS, OPS, op_name, server_names, server_urls
from .journal import DomainEvent, change_source

CALL_PATH = "/__mockpanel/panel/call"
EVENTS_PATH = "/__mockpanel/panel/events"
MAX_CALL_BYTES = 1024 * 1024  # an operation's arguments are names, numbers, a scenario's text: far below this
FEED_SECONDS = 0.25  # the panel drains its queue this often: batches, not an event a request
FEED_KEEPALIVE_S = 15.0
MAX_FEED_REQUESTS = 2_000  # an attached panel shows the newest requests of a flood (the journal keeps all of them)
MAX_FEED_EVENTS = 2_000
SOURCE = "an attached panel"


def _load_operations() -> None:
    """The panes' operations are registered where the panes are: import them once (in `serve`, on the first call)."""
    if not any(name.startswith("mockpanel.screens.") for name in OPS):
        import mockpanel.app  # noqa: F401  (every pane's module, and the app's own operations)


def _error(status: int, kind: str, message: str) -> Any:
    return JSONResponse({"detail": message, "error": kind}, status_code=status)


def panel_routes(hub: Any) -> Any:
    """The attach routes of one Hub (every server of it answers them: any server's URL attaches)."""
    from .guard import cross_site
    from .scenario import ScenarioError
    from .spec import DomainError

    router = APIRouter(prefix="/__mockpanel/panel", tags=["attached panels"])

    @router.post("/call", summary="Run one of the panel's operations (mockpanel attach); the result in mockpanel's wire JSON")
    async def call(request: Request) -> Any:
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_CALL_BYTES:
                return _error(413, "TooLarge", f"a call is at most {MAX_CALL_BYTES // 1024} KiB")
        try:
            message = wire.loads(bytes(body), records=False)  # plain data only: a call constructs nothing
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
        except (TypeError, ValueError, LookupError) as exc:  # arguments the operation does not take
            return _error(400, "BadCall", f"{name}: {type(exc).__name__}: {exc}")
        finally:
            change_source.reset(token)
        return Response(encoded, media_type="application/json")

    @router.get("/events", summary="Server-sent events for an attached panel: requests and domain events, in batches",
                response_class=StreamingResponse, responses={200: {"content": {"text/event-stream": {}}}})
    async def events(request: Request) -> Any:
        why = cross_site(request.scope)
        if why is not None:  # a page of another site has nothing to read here, nor a connection to hold open
            return _error(403, "CrossSite", f"refused a cross-site request ({why})")
        feed = Feed()
        unsubscribe = hub.bus.subscribe(feed)
        return StreamingResponse(feed.stream(unsubscribe, hub), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    return router


class Feed:
    """One attached panel's share of the bus: bounded (the newest requests of a flood, the newest events), sent as
    one SSE message every FEED_SECONDS with how many were left out."""

    def __init__(self) -> None:
        self.requests: deque = deque(maxlen=MAX_FEED_REQUESTS)
        self.events: deque = deque(maxlen=MAX_FEED_EVENTS)
        self.dropped = 0
        self.wake = asyncio.Event()

    def __call__(self, item: Any) -> None:
        queue = self.events if isinstance(item, DomainEvent) else self.requests
        if len(queue) == queue.maxlen:
            self.dropped += 1
        queue.append(item)
        self.wake.set()

    def take(self) -> str:
        items = [*self.events, *self.requests]
        self.events.clear()
        self.requests.clear()
        dropped, self.dropped = self.dropped, 0
        return f"data: {_dumps_items(items, dropped)}\n\n"

    async def stream(self, unsubscribe: Callable[[], None], hub: Any) -> AsyncIterator[str]:
        try:
            yield "retry: 2000\n\n"
            idle = 0.0
            while not hub.closing:  # checked every second: a stopping Hub ends its streams, not uvicorn's grace period
                try:
                    await asyncio.wait_for(self.wake.wait(), 1.0)
                except asyncio.TimeoutError:
                    idle += 1.0
                    if idle >= FEED_KEEPALIVE_S:
                        idle = 0.0
                        yield ": keep-alive\n\n"
                    continue
                idle = 0.0
                self.wake.clear()
                yield self.take()
                await asyncio.sleep(FEED_SECONDS)
        finally:
            unsubscribe()


def _dumps_items(items: list[Any], dropped: int) -> str:
    encoded = []
    for item in items:
        try:
            encoded.append(wire.encode(item))
        except wire.WireError:  # an event whose data holds something the wire does not carry: its words
            encoded.append(wire.encode(DomainEvent(item.server, item.kind, {"message": repr(item.data)[:500]}, item.time, item.source)))
    return json.dumps({"items": encoded, "dropped": dropped}, separators=(",", ":"), ensure_ascii=False)


class Disconnected(Exception):
    """The mocks an attached panel watched are gone (stopped, or the network between)."""


class RemoteError(Exception):
    """A call the mocks refused for a reason of the call itself (a bug or a version mismatch), in their words."""


def _raise(status: int, payload: Any) -> None:
    from . import spec
    from .scenario import ScenarioError

    kind = payload.get("error", "") if isinstance(payload, dict) else ""
    message = payload.get("detail", "") if isinstance(payload, dict) else str(payload)[:500]
    error = getattr(spec, kind, None)
    if isinstance(error, type) and issubclass(error, spec.DomainError):
        raise error(message)
    if kind == "ScenarioError":
        raise ScenarioError(message)
    if status == 401:
        raise Disconnected(f"the mocks want the admin token: {message} (mockpanel attach --token, or MOCKPANEL_ADMIN_TOKEN)")
    raise RemoteError(f"{status}: {message}")


class RemoteHubClient:
    """HubClient's interface over HTTP (see the module's docstring): `read`/`command` send an operation and return
    what it returned on the mocks' side; `wait` does the same without blocking the panel's loop; `subscribe` feeds
    the event stream to a sink from a reader thread."""

    thread = None
    attached = True

    def __init__(self, url: str, token: str | None = None, timeout: float = 30.0) -> None:
        import httpx2

        self.url = url.rstrip("/")
        headers = {"content-type": "application/json"}
        if token:
            headers["authorization"] = f"Bearer {token}"
        self._headers = headers
        self._http = httpx2.Client(headers=headers, timeout=timeout)
        self._readers: list[_EventReader] = []
        self._others: list[str] = []  # the other servers' URLs: a call goes on through one when this one stops

    def read(self, fn: Callable[..., Any], *args: Any) -> Any:
        import httpx2

        name = op_name(fn)
        if name in LOCAL_OPS:
            raise RemoteError(f"{name} needs the mocks' own process: an attached panel cannot ask it")
        body = wire.dumps({"op": name, "args": list(args)})
        for base in [self.url, *self._others]:
            try:
                response = self._http.post(base + CALL_PATH, content=body)
            except httpx2.TransportError:
                continue
            if base != self.url:
                self.url = base
            if response.status_code != 200:
                try:
                    payload = response.json()
                except ValueError:
                    payload = response.text
                _raise(response.status_code, payload)
            try:
                return wire.loads(response.content)["result"]
            except (wire.WireError, KeyError, TypeError):
                raise RemoteError(f"{base} answered something that is not a panel result (is it mockpanel?)") from None
        raise Disconnected(f"the mocks at {self.url} do not answer")

    command = read

    async def wait(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.to_thread(self.read, fn, *args)

    def subscribe(self, sink: Callable[[Any], None]) -> Callable[[], None]:
        reader = _EventReader(self, sink)
        self._readers.append(reader)
        reader.start()
        return reader.stop

    async def start(self) -> dict[str, str]:
        """Check the mocks answer (and are mockpanel's); their URLs."""
        urls = await self.wait(server_urls)
        self._others = [u for u in urls.values() if u.rstrip("/") != self.url]
        await self.wait(server_names)
        return urls

    async def stop(self) -> None:
        """Stop watching; the mocks keep running."""
        for reader in self._readers:
            reader.stop()
        self._readers.clear()
        self._http.close()


GONE = object()  # put in the sink when the event stream ends for good: the panel says so and leaves


class _EventReader:
    """Reads the event stream in a daemon thread; every bus item goes to the sink (a thread-safe deque's append).
    A stream that breaks is opened again (through another server when this one stopped) while the mocks answer."""

    def __init__(self, client: RemoteHubClient, sink: Callable[[Any], None]) -> None:
        self.client = client
        self.sink = sink
        self.stopped = threading.Event()
        self.connected = threading.Event()
        self._response: Any = None
        self.thread = threading.Thread(target=self._run, name="mockpanel-attach-events", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopped.set()
        response = self._response
        if response is not None:
            try:
                response.close()
            except Exception:  # closing from another thread: the reader sees its stream end
                pass

    def _run(self) -> None:
        import httpx2

        failures = 0
        with httpx2.Client(headers=self.client._headers, timeout=httpx2.Timeout(10.0, read=FEED_KEEPALIVE_S * 2)) as http:
            while not self.stopped.is_set():
                bases = [self.client.url, *self.client._others]
                base = bases[failures % len(bases)]
                try:
                    with http.stream("GET", base + EVENTS_PATH) as response:
                        self._response = response
                        if response.status_code != 200:
                            raise httpx2.TransportError(f"HTTP {response.status_code}")
                        failures = 0
                        self.connected.set()
                        for line in response.iter_lines():
                            if self.stopped.is_set():
                                return
                            if line.startswith("data: "):
                                self._deliver(line[6:])
                except (httpx2.HTTPError, OSError, RuntimeError):
                    pass
                finally:
                    self._response = None
                if self.stopped.is_set():
                    return
                failures += 1
                if failures > 3 * len(bases):
                    self.sink(GONE)
                    return
                self.stopped.wait(min(0.1 * failures, 1.0))

    def _deliver(self, data: str) -> None:
        try:
            message = wire.loads(data)
        except wire.WireError:
            return
        for item in message.get("items", ()):
            self.sink(item)
