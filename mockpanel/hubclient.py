"""How the panel reaches the Hub. The servers run on a loop of their own in a thread of this process (the servers'
loop: every runner, the scenario clock, the servers' watchdog); the Textual app keeps the main thread and its loop.
A key then waits for the panel's own work only — not behind the requests the servers' loop has queued (measured by
benchmarks/bench_panel.py at 200 connections: key-to-repaint p95 292 ms with one shared loop, 131 ms with two, the
servers' throughput unchanged).

The panel touches the Hub only through a HubClient: `read`/`command` run a function of the Hub on the servers' loop
and hand back what it returns (plain, immutable data: tuples, named tuples, strings), `wait` awaits a coroutine of
the Hub there without blocking the panel's loop, and `subscribe` delivers bus items (requests, domain events) to a
thread-safe sink the panel drains in batches. No pane holds a facade, a store or a journal object: what it draws
was computed on the servers' loop. `serve` keeps one loop (no panel to protect)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from typing import Any, Awaitable, Callable

from .journal import change_source

READ_TIMEOUT_S = 30.0  # a read waits for one turn of the servers' loop; this long only if that loop is stuck


def new_loop() -> asyncio.AbstractEventLoop:
    """uvloop where it is installed (uvicorn[standard] brings it), else asyncio's own."""
    try:
        import uvloop

        return uvloop.new_event_loop()
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux and macOS
        return asyncio.new_event_loop()


class HubThread:
    """An event loop running in a daemon thread of its own, and the two ways to run something on it from another
    thread: `run` (a plain function, its result returned) and `submit` (a coroutine, a concurrent future)."""

    def __init__(self, name: str = "mockpanel-servers") -> None:
        self.loop = new_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)

    def start(self) -> "HubThread":
        self.thread.start()
        return self

    @property
    def running(self) -> bool:
        return self.thread.is_alive()

    def submit(self, coro: Awaitable[Any]) -> concurrent.futures.Future:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)  # type: ignore[arg-type]

    def run(self, fn: Callable[..., Any], *args: Any, timeout: float = READ_TIMEOUT_S) -> Any:
        """`fn(*args)` on the loop's thread, its result (or exception) here; from that thread itself, a plain call."""
        if threading.current_thread() is self.thread:
            return fn(*args)
        future: concurrent.futures.Future = concurrent.futures.Future()

        def call() -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                future.set_result(fn(*args))
            except BaseException as exc:  # surfaced to the caller
                future.set_exception(exc)

        self.loop.call_soon_threadsafe(call)
        return future.result(timeout)

    def stop(self) -> None:
        """Cancel what is still running there, stop the loop, wait for the thread, close the loop."""
        if self.thread.is_alive():
            self.submit(_cancel_pending()).result(30)
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
        if not self.loop.is_closed() and not self.thread.is_alive():
            self.loop.close()


async def _cancel_pending() -> None:
    """Tasks the servers left (image jobs, dashboard feeds) end with the Hub, not with the process."""
    current = asyncio.current_task()
    pending = [t for t in asyncio.all_tasks() if t is not current]
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)


def as_source(source: str, fn: Callable[..., Any], *args: Any) -> Any:
    """`fn(*args)` with the domain events it causes told they came from `source` (see journal.change_source)."""
    token = change_source.set(source)
    try:
        return fn(*args)
    finally:
        change_source.reset(token)


# --- the panel's reads and commands, by name: what an attached panel may ask of the mocks ---

OPS: dict[str, Callable[..., Any]] = {}
LOCAL_OPS: set[str] = set()  # in-process only (they hand over objects or touch this machine's files): never remote


def panel_op(fn: Callable[..., Any] | None = None, *, local: bool = False) -> Any:
    """Register `fn(hub, *args)` as one of the panel's operations (decorator). A HubClient runs nothing else, so
    every read and command the panel makes has a name an attached panel can send (see wire.py and attach.py)."""

    def register(fn: Callable[..., Any]) -> Callable[..., Any]:
        name = f"{fn.__module__}:{fn.__qualname__}"
        OPS[name] = fn
        if local:
            LOCAL_OPS.add(name)
        fn.op_name = name  # type: ignore[attr-defined]
        return fn

    return register(fn) if fn is not None else register


def op_name(fn: Callable[..., Any]) -> str:
    name = getattr(fn, "op_name", None)
    if name is None or OPS.get(name) is not fn:
        raise TypeError(f"{getattr(fn, '__qualname__', fn)!r} is not a panel operation: the panel reaches the Hub only through "
                        "functions marked @panel_op (an attached panel sends their names)")
    return name


@panel_op
def server_urls(hub: Any) -> dict[str, str]:
    return hub.urls()


@panel_op
def server_names(hub: Any) -> tuple[str, ...]:
    """The servers this Hub runs (enabled ones; fixed for its life)."""
    return tuple(hub.runners)


@panel_op
def notices(hub: Any) -> list[str]:
    """What the mocks noted at start-up: development-default secrets, servers bound beyond loopback."""
    return list(hub.settings.notices)


@panel_op
def failed(hub: Any) -> dict[str, str]:
    return hub.failed()


@panel_op
def journal_entries(hub: Any) -> list[Any]:
    return hub.journal.entries()


@panel_op
async def reset_all(hub: Any) -> None:
    await hub.reset()


@panel_op
async def reset_server(hub: Any, server: str) -> None:
    await hub[server].ctx.reset()


@panel_op
async def stop_scenario(hub: Any) -> None:
    await hub.stop_scenario()


@panel_op
async def run_scenario(hub: Any, text: str, path: str | None) -> str:
    """Read a scenario (TOML text, as read from `path`) against this Hub's servers and run it from now; its name.
    The text crosses, not a parsed object: the mocks judge every step themselves (ScenarioError: the reason)."""
    from pathlib import Path

    from .scenario import read_scenario

    scenario = read_scenario(text, hub.runners, Path(path) if path else None)
    await hub.start_scenario(scenario)
    return scenario.name


@panel_op(local=True)
def _subscribe(hub: Any, sink: Callable[[Any], None]) -> Callable[[], None]:
    return hub.bus.subscribe(sink)


@panel_op(local=True)
def _unsubscribe(hub: Any, unsubscribe: Callable[[], None]) -> None:
    unsubscribe()


@panel_op(local=True)
async def _start(hub: Any) -> dict[str, str]:
    return await hub.start()


@panel_op(local=True)
async def _stop(hub: Any) -> None:
    await hub.stop()


class HubClient:
    """The panel's one way to the Hub (see the module's docstring). In-process: the Hub on a HubThread; without one
    (`thread=None`) the Hub shares the panel's loop, as before the split (kept for bench_panel.py's comparison)."""

    def __init__(self, hub: Any, thread: HubThread | None) -> None:
        self._hub = hub
        self.thread = thread

    def read(self, fn: Callable[..., Any], *args: Any) -> Any:
        """`fn(hub, *args)` on the servers' loop; what it returns. Reads return immutable data."""
        op_name(fn)
        if self.thread is None:
            return as_source("the panel", fn, self._hub, *args)
        return self.thread.run(as_source, "the panel", fn, self._hub, *args)

    command = read  # a change (fault, reset of a store, token) is a call like a read: it returns what it did

    async def wait(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        """Await the coroutine `fn(hub, *args)` on the servers' loop, without blocking the panel's loop."""
        op_name(fn)
        hub = self._hub

        async def run() -> Any:
            token = change_source.set("the panel")  # this task's own context: what it changes is the panel's doing
            try:
                return await fn(hub, *args)
            finally:
                change_source.reset(token)

        if self.thread is None:
            return await run()

        return await asyncio.wrap_future(self.thread.submit(run()))

    def subscribe(self, sink: Callable[[Any], None]) -> Callable[[], None]:
        """Every bus item from now on goes to `sink`, called on the servers' thread: it must be thread-safe
        (deque.append is). Returns the unsubscribe function (which runs there too)."""
        unsubscribe = self.read(_subscribe, sink)
        return lambda: self.read(_unsubscribe, unsubscribe)

    async def start(self) -> dict[str, str]:
        if self.thread is not None and not self.thread.running:
            self.thread.start()
        return await self.wait(_start)

    async def stop(self) -> None:
        if self.thread is None:
            await self._hub.stop()
        elif self.thread.running:
            await self.wait(_stop)
            await asyncio.to_thread(self.thread.stop)
