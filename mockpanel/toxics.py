"""Network faults below HTTP: Toxiproxy's toxics, on the mocks' own connections and on TCP proxies to the user's
services (proxy.py). A toxic acts on the bytes of one direction of a connection — "upstream" what the client sends,
"downstream" what it receives — so every client library meets it exactly as it would meet a real network fault.

Types and attributes are Toxiproxy's (https://github.com/Shopify/toxiproxy#toxics):
  latency      latency, jitter (ms)              every chunk delayed by latency ± jitter
  bandwidth    rate (KB/s, 1,000 bytes)          bytes paced to the rate
  slicer       average_size, size_variation (bytes), delay (µs)   chunks cut small, a pause between
  slow_close   delay (ms)                        the close held back
  timeout      timeout (ms)                      nothing passes; closed after timeout (0: never)
  reset_peer   timeout (ms)                      TCP RST after timeout (mockpanel adds `bytes`: after N bytes)
  limit_data   bytes                             closed once N bytes have passed
Each has a toxicity (the share of connections it applies to, decided once a connection) and, mockpanel's own, an
optional seed: with one, which connections it picks (and the jitter it draws) repeat from run to run. Nothing here blocks the loop: delays are awaited, and a
connection holds at most MAX_BUFFER bytes waiting (its reading is paused beyond that)."""

from __future__ import annotations

import asyncio
import random
import socket
import struct
import time
from collections import deque
from typing import Any, Callable, Iterator, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from .wire import record

MAX_SLICES = 4096  # pieces a slicer cuts one chunk into, at most
YIELD_EVERY = 64  # pieces written between two turns of the loop
MAX_BUFFER = 1024 * 1024  # bytes one direction of one connection may hold back (then the sender is paused)
MAX_TOXICS = 32
MAX_MS = 3_600_000  # an hour: longer than any test waits
TYPES: dict[str, dict[str, tuple[int, int]]] = {  # type: {attribute: (default, maximum)}
    "latency": {"latency": (0, MAX_MS), "jitter": (0, MAX_MS)},
    "bandwidth": {"rate": (0, 10_000_000)},
    "slicer": {"average_size": (0, 1 << 20), "size_variation": (0, 1 << 20), "delay": (0, MAX_MS * 1000)},
    "slow_close": {"delay": (0, MAX_MS)},
    "timeout": {"timeout": (0, MAX_MS)},
    "reset_peer": {"timeout": (0, MAX_MS), "bytes": (0, 1 << 40)},
    "limit_data": {"bytes": (0, 1 << 40)},
}


class ToxicError(ValueError):
    """A toxic that cannot be: an unknown type, attribute or stream, a value out of range, a name taken."""


@record
class Toxic(BaseModel):
    """One toxic as Toxiproxy's API shows it."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field("", max_length=128)
    type: Literal["latency", "bandwidth", "slicer", "slow_close", "timeout", "reset_peer", "limit_data"]
    stream: Literal["upstream", "downstream"] = "downstream"
    toxicity: float = Field(1.0, ge=0.0, le=1.0)
    attributes: dict[str, int] = Field(default_factory=dict)
    seed: int | None = Field(None, ge=0, le=2**63, description="mockpanel's: which connections a toxicity picks and the "
                             "jitter drawn repeat from run to run")
    _random: random.Random = PrivateAttr(default_factory=random.Random)

    @model_validator(mode="after")
    def _check(self) -> "Toxic":
        known = TYPES[self.type]
        unknown = set(self.attributes) - set(known)
        if unknown:
            raise ValueError(f"{self.type} has no attribute {', '.join(sorted(unknown))} (it has {', '.join(known)})")
        for key, value in self.attributes.items():
            if not 0 <= value <= known[key][1]:
                raise ValueError(f"{self.type}.{key} must be between 0 and {known[key][1]}")
        self.attributes = {key: self.attributes.get(key, default) for key, (default, _) in known.items()}
        if not self.name:
            self.name = f"{self.type}_{self.stream}"
        self._random = random.Random(self.seed)
        return self

    def as_json(self) -> dict[str, Any]:
        """Toxiproxy's shape (and the seed, when one is set)."""
        return self.model_dump(exclude={"seed"} if self.seed is None else None)

    def describe(self) -> str:
        shown = " ".join(f"{k}={v}" for k, v in self.attributes.items() if v)
        share = f" {self.toxicity:.0%}" if self.toxicity < 1 else ""
        return f"{self.type} {self.stream[:-6]}{share}{' ' + shown if shown else ''}"


def parse_toxic(data: Any) -> Toxic:
    """A toxic from Toxiproxy's JSON (ToxicError with the reason)."""
    if not isinstance(data, dict):
        raise ToxicError("a toxic is a JSON object: {\"type\": \"latency\", \"attributes\": {\"latency\": 300}}")
    try:
        return Toxic.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        message = first["msg"].removeprefix("Value error, ")
        raise ToxicError(f"{where + ': ' if where else ''}{message}") from None


def parse_toxic_words(text: str) -> Toxic:
    """A toxic from the panel's prompt: `latency latency=300 jitter=50 stream=upstream toxicity=0.5 name=slow`."""
    words = text.split()
    if not words:
        raise ToxicError("type a toxic: latency latency=300 (types: " + ", ".join(TYPES) + ")")
    data: dict[str, Any] = {"type": words[0], "attributes": {}}
    for word in words[1:]:
        key, sep, value = word.partition("=")
        if not sep:
            raise ToxicError(f"{word!r}: write name=value")
        if key in ("stream", "name"):
            data[key] = value
        elif key == "toxicity":
            try:
                data[key] = float(value.rstrip("%")) / (100 if value.endswith("%") else 1)
            except ValueError:
                raise ToxicError(f"toxicity {value!r} is not a number") from None
        else:
            try:
                data["attributes"][key] = int(value)
            except ValueError:
                raise ToxicError(f"{key} {value!r} is not a whole number") from None
    return parse_toxic(data)


class ToxicSet:
    """One server's or proxy's toxics, changed live: connections read it at every chunk. `on_change` is told of
    every change (the bus event the panel redraws on)."""

    def __init__(self) -> None:
        self.toxics: dict[str, Toxic] = {}
        self.on_change: Callable[[list[Toxic]], None] | None = None

    @property
    def active(self) -> bool:
        return bool(self.toxics)

    def list(self) -> list[Toxic]:
        return [t.model_copy() for t in self.toxics.values()]

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change(self.list())

    def add(self, toxic: Toxic) -> Toxic:
        if toxic.name in self.toxics:
            raise ToxicError(f"toxic {toxic.name} already exists")
        if len(self.toxics) >= MAX_TOXICS:
            raise ToxicError(f"at most {MAX_TOXICS} toxics")
        self.toxics[toxic.name] = toxic
        self._changed()
        return toxic.model_copy()

    def update(self, name: str, data: dict[str, Any]) -> Toxic:
        """Toxiproxy's POST /toxics/{name}: the given fields (attributes merged) changed."""
        current = self.get(name)
        merged = current.model_dump(exclude={"seed"} if current.seed is None else None) | {k: v for k, v in data.items() if k != "attributes"}
        merged["attributes"] = {**current.attributes, **(data.get("attributes") or {})}
        merged["name"] = name
        toxic = parse_toxic(merged)
        self.toxics[name] = toxic
        self._changed()
        return toxic.model_copy()

    def get(self, name: str) -> Toxic:
        try:
            return self.toxics[name]
        except KeyError:
            raise LookupError(f"toxic not found: {name[:128]}") from None

    def remove(self, name: str) -> None:
        self.get(name)
        del self.toxics[name]
        self._changed()

    def clear(self) -> list[str]:
        removed = list(self.toxics)
        if removed:
            self.toxics.clear()
            self._changed()
        return removed

    def describe(self) -> list[str]:
        return [t.describe() for t in self.toxics.values()]


class Link:
    """The toxics of one connection: which apply to it (drawn once per toxic), the timers they start, what it sent
    each way, and how it ended. `close` and `reset` end the real connection (both sides, for a proxy)."""

    def __init__(self, toxics: ToxicSet, close: Callable[[], None], reset: Callable[[], None]) -> None:
        self.set = toxics
        self._close = close
        self._reset = reset
        self.drawn: dict[str, bool] = {}
        self.sent = {"upstream": 0, "downstream": 0}
        self.applied: set[str] = set()  # types that acted on this connection
        self.ended: str | None = None  # None, "closed", "reset", "timeout", "limit_data"
        self.exempt = False  # set while the connection carries a control request: no toxic acts on it
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self.started = time.monotonic()

    def current(self, stream: str) -> list[Toxic]:
        """The toxics of `stream` that apply to this connection now (new ones drawn as they are first seen)."""
        if not self.set.toxics or self.exempt:
            return []
        found = []
        for toxic in self.set.toxics.values():
            applies = self.drawn.get(toxic.name)
            if applies is None:
                applies = self.drawn[toxic.name] = toxic.toxicity >= 1 or (toxic.toxicity > 0 and toxic._random.random() < toxic.toxicity)
            if applies and toxic.stream == stream:
                found.append(toxic)
                self._start_timer(toxic)
        return found

    def _start_timer(self, toxic: Toxic) -> None:
        if toxic.type not in ("timeout", "reset_peer") or toxic.name in self._timers:
            return
        wait = toxic.attributes["timeout"] / 1000
        if toxic.type == "timeout" and wait == 0:
            self._timers[toxic.name] = None  # type: ignore[assignment]  (data dropped, never closed)
            return
        if toxic.type == "reset_peer" and (toxic.attributes["bytes"] or not toxic.attributes["timeout"]):
            self._timers[toxic.name] = None  # type: ignore[assignment]  (at the next byte or after N, in Direction.feed)
            return
        end = self.reset if toxic.type == "reset_peer" else (lambda: self.end("timeout"))
        self._timers[toxic.name] = asyncio.get_running_loop().call_later(wait + 0.001, end)  # a timer may fire up to 1 ms early

    def end(self, why: str) -> None:
        if self.ended is None and not self.exempt:
            self.ended = why
            self._cancel()
            self._close()

    def reset(self) -> None:
        if self.ended is None and not self.exempt:
            self.ended = "reset"
            self.applied.add("reset_peer")
            self._cancel()
            self._reset()

    def _cancel(self) -> None:
        for timer in self._timers.values():
            if timer is not None:
                timer.cancel()

    def slow_close_s(self) -> float:
        return max((t.attributes["delay"] / 1000 for t in self.current("downstream") + self.current("upstream") if t.type == "slow_close"),
                   default=0.0)

    async def pass_through(self, stream: str, data: bytes, arrived: float, write: Callable[[bytes], None]) -> None:
        """`data` (arrived at `arrived`, time.monotonic()) through this stream's toxics, in their order, to `write`."""
        chunks: Any = [data]
        for toxic in self.current(stream):
            kind, attrs = toxic.type, toxic.attributes
            if kind == "timeout":
                self.applied.add(kind)
                return  # nothing passes while it is there
            if kind == "latency" and (attrs["latency"] or attrs["jitter"]):
                self.applied.add(kind)
                delay = (attrs["latency"] + toxic._random.uniform(-attrs["jitter"], attrs["jitter"])) / 1000
                await sleep_at_least(arrived + max(delay, 0) - time.monotonic())
            elif kind == "slicer" and attrs["average_size"]:
                self.applied.add(kind)
                chunks = self._slices(chunks, attrs, toxic._random)  # lazily: a piece is cut when it is written
        limit = self._limit(stream)
        pause = next((t.attributes["delay"] / 1_000_000 for t in self.current(stream) if t.type == "slicer" and t.attributes["average_size"]), 0)
        for i, chunk in enumerate(chunks):
            if i and pause:
                await sleep_at_least(pause)  # between two pieces, never after the last
            elif i and i % YIELD_EVERY == 0:
                await asyncio.sleep(0)  # thousands of pieces with no delay between: the loop serves others meanwhile
            if limit is not None:
                room = limit[0] - self.sent[stream]
                if len(chunk) >= room:
                    if room > 0:
                        write(chunk[:room])
                        self.sent[stream] += room
                    self.applied.add(limit[1])
                    if limit[1] == "reset_peer":
                        self.reset()
                    else:
                        self.end("limit_data")
                    return
            await self._paced(stream, chunk, write)
            if self.ended:
                return

    def _limit(self, stream: str) -> tuple[int, str] | None:
        found = [(t.attributes["bytes"], "limit_data") for t in self.current(stream) if t.type == "limit_data"]
        found += [(t.attributes["bytes"], "reset_peer") for t in self.current(stream) if t.type == "reset_peer" and t.attributes["bytes"]]
        return min(found) if found else None

    async def _paced(self, stream: str, chunk: bytes, write: Callable[[bytes], None]) -> None:
        rates = [t.attributes["rate"] for t in self.current(stream) if t.type == "bandwidth"]
        if not rates:
            write(chunk)
            self.sent[stream] += len(chunk)
            return
        self.applied.add("bandwidth")
        rate = max(min(rates), 1) * 1000  # bytes a second
        step = max(int(rate / 10), 1)  # a tenth of a second's worth at a time: the rate holds within a read
        for start in range(0, len(chunk), step):  # each piece waits its time first: no byte comes sooner than the rate allows
            piece = chunk[start:start + step]
            await sleep_at_least(len(piece) / rate)
            if self.ended:
                return
            write(piece)
            self.sent[stream] += len(piece)

    def _slices(self, chunks: Any, attrs: dict[str, int], rng: random.Random) -> Iterator[bytes]:
        """The chunks cut into pieces of about `average_size`, one at a time; a chunk is cut into at most
        MAX_SLICES pieces (a 1 MiB write at average_size 1 is 4,096 pieces of 256 bytes, not a million writes)."""
        for chunk in chunks:
            floor = -(-len(chunk) // MAX_SLICES)
            at = 0
            while at < len(chunk):
                size = max(attrs["average_size"] + rng.randint(-attrs["size_variation"], attrs["size_variation"]), floor, 1)
                if at == 0 and size < len(chunk):
                    self.applied.add("slicer")
                yield chunk[at:at + size]
                at += size


async def sleep_at_least(seconds: float) -> None:
    """Sleep no less than `seconds`: the loop's timers have millisecond grain and may fire a little early, and a
    toxic promises a lower bound (no byte sooner than its latency or rate allows)."""
    due = time.monotonic() + seconds
    while (left := due - time.monotonic()) > 0:
        await asyncio.sleep(left)


def rst(transport: Any) -> None:
    """End a connection with a TCP RST (SO_LINGER 0, then close), as a peer that resets it would."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    transport.abort()


class Direction:
    """One direction of a connection whose bytes come as calls (a protocol's data_received, a transport's write):
    with no toxic they pass at once; otherwise they queue (at most MAX_BUFFER bytes, beyond which `pause` is
    called until the queue drains, then `resume`) and a task passes them through the link's toxics in order."""

    def __init__(self, link: Link, stream: str, write: Callable[[bytes], None], pause: Callable[[], None] | None = None,
                 resume: Callable[[], None] | None = None) -> None:
        self.link = link
        self.stream = stream
        self._write = write
        self._pause, self._resume = pause, resume
        self.queue: deque[tuple[bytes, float]] = deque()
        self.queued = 0
        self.paused = False
        self._task: asyncio.Task | None = None
        self._eof: Callable[[], None] | None = None
        self.gate = asyncio.Event()  # cleared while the receiving socket is full: the queue waits, not its buffer
        self.gate.set()

    def feed(self, data: bytes) -> None:
        link = self.link
        if link.ended:
            return
        toxics = link.current(self.stream)
        if not self.queue and self._task is None and not toxics:
            self._write(data)  # no toxic on this stream: straight through
            link.sent[self.stream] += len(data)
            return
        if any(t.type == "reset_peer" and not t.attributes["timeout"] and not t.attributes["bytes"] for t in toxics):
            link.reset()  # reset_peer at 0: the first byte that meets it is answered with a RST, nothing passes
            self.cancel()
            return
        self.queue.append((data, time.monotonic()))
        self.queued += len(data)
        if self.queued > MAX_BUFFER and not self.paused and self._pause is not None:
            self.paused = True
            self._pause()
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._pump())

    def close_after(self, done: Callable[[], None]) -> None:
        """Call `done` once what is queued has passed (and a slow_close's delay)."""
        self._eof = done
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._pump())

    async def _pump(self) -> None:
        try:
            while self.queue and not self.link.ended:
                await self.gate.wait()
                data, arrived = self.queue.popleft()
                self.queued -= len(data)
                await self.link.pass_through(self.stream, data, arrived, self._write)
                if self.paused and self.queued <= MAX_BUFFER // 2 and self._resume is not None:
                    self.paused = False
                    self._resume()
            if self._eof is not None and not self.link.ended:
                if any(t.type == "timeout" for t in self.link.current(self.stream)):
                    return  # the connection hangs: the timeout toxic ends it (or, at 0, nothing does)
                delay = self.link.slow_close_s()
                if delay:
                    self.link.applied.add("slow_close")
                    await sleep_at_least(delay)
                self._eof()
        except asyncio.CancelledError:
            pass
        finally:
            self._task = None
            if self.queue and not self.link.ended:  # fed while finishing
                self._task = asyncio.get_running_loop().create_task(self._pump())

    def cancel(self) -> None:
        if self._task is not None:
            self._task.cancel()
        self.queue.clear()
        self.queued = 0


class ToxicTransport:
    """What a mock's HTTP protocol writes to once its connection has toxics: writes pass the downstream toxics, a
    close waits for them (and a slow_close), the rest is the real transport's."""

    def __init__(self, real: Any, down: Direction) -> None:
        self._real = real
        self._down = down
        self._closing = False

    def write(self, data: bytes) -> None:
        if not self._closing:
            self._down.feed(bytes(data))

    def writelines(self, chunks: Any) -> None:
        for chunk in chunks:
            self.write(chunk)

    def close(self) -> None:
        if not self._closing:
            self._closing = True
            self._down.close_after(self._real.close)

    def is_closing(self) -> bool:
        return self._closing or self._real.is_closing()

    def abort(self) -> None:
        self._closing = True
        self._down.cancel()
        self._real.abort()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._real.get_extra_info(name, default)

    def pause_reading(self) -> None:
        self._real.pause_reading()

    def resume_reading(self) -> None:
        self._real.resume_reading()

    def is_reading(self) -> bool:
        return self._real.is_reading()

    def can_write_eof(self) -> bool:
        return False

    def get_write_buffer_size(self) -> int:
        return self._down.queued + self._real.get_write_buffer_size()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._real.set_write_buffer_limits(high, low)

    def get_protocol(self) -> Any:
        return self._real.get_protocol()
