"""TCP proxies to the user's own services (a database, a cache, a broker, a partner API), hosted beside the mocks:
`[proxies.postgres] listen = 15432, upstream = "localhost:5432"` in mockpanel.toml, or made at runtime (the control
API, Toxiproxy's API, the Proxies pane). Each relays to its one configured upstream only — no open relay — and
applies its toxics (toxics.py) to what passes each way. Every connection is journaled when it ends: the bytes each
way, the toxics that acted, and how it ended (closed, reset, timeout, limit_data, upstream refused)."""

from __future__ import annotations

import asyncio
import time
from typing import Any, Callable

from .addresses import LOOPBACK, NAME, ProxyError
from .runner import bind_socket
from .toxics import Direction, Link, ToxicSet, rst

MAX_CONNECTIONS = 1024  # open at once on one proxy; more are refused (closed at once) and counted

class Valve:
    """Whether a transport reads, when more than one thing may want it paused (the toxics' queue is full, the other
    side's socket buffer is full, the upstream is not connected yet): it reads again only when none does."""

    def __init__(self, transport: Any) -> None:
        self.transport = transport
        self.reasons: set[str] = set()

    def pause(self, why: str) -> None:
        if not self.reasons and not self.transport.is_closing():
            self.transport.pause_reading()
        self.reasons.add(why)

    def resume(self, why: str) -> None:
        if why in self.reasons:
            self.reasons.discard(why)
            if not self.reasons and not self.transport.is_closing():
                self.transport.resume_reading()


class ProxyStats:
    __slots__ = ("connections", "open", "bytes_up", "bytes_down", "resets", "timeouts", "refused")

    def __init__(self) -> None:
        self.connections = self.open = self.bytes_up = self.bytes_down = self.resets = self.timeouts = self.refused = 0


class Proxy:
    """One TCP proxy: its listener, its upstream, its toxics and its live connections."""

    def __init__(self, name: str, listen: tuple[str, int], upstream: tuple[str, int], journal: Any, on_event: Callable[..., None],
                 enabled: bool = True, toxics: ToxicSet | None = None) -> None:
        if not NAME.match(name):
            raise ProxyError(f"proxy name {name[:80]!r}: letters, digits, _ . - (up to 64)")
        self.name = name
        self.host, self.port = listen
        self.wanted_port = self.port
        self.upstream_host, self.upstream_port = upstream
        self.enabled = enabled
        self.toxics = toxics or ToxicSet()
        self.toxics.on_change = lambda toxics: on_event("toxics_changed", proxy=name, toxics=[t.describe() for t in toxics])
        self.journal = journal
        self.event = on_event
        self.stats = ProxyStats()
        self.status = "stopped"
        self.reason: str | None = None
        self._server: asyncio.AbstractServer | None = None
        self.links: set[_Connection] = set()

    @property
    def listen(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def upstream(self) -> str:
        host = f"[{self.upstream_host}]" if ":" in self.upstream_host else self.upstream_host
        return f"{host}:{self.upstream_port}"

    @property
    def url(self) -> str | None:
        return f"tcp://{self.listen}" if self.status == "running" else None

    def as_toxiproxy(self) -> dict[str, Any]:
        return {"name": self.name, "listen": self.listen, "upstream": self.upstream, "enabled": self.enabled,
                "toxics": [t.as_json() for t in self.toxics.toxics.values()]}

    def view(self) -> tuple:
        """What the Proxies pane shows of it."""
        s = self.stats
        return (self.name, self.listen, self.upstream, self.status if self.enabled else "disabled", self.reason, s.open, s.connections,
                s.bytes_up, s.bytes_down, tuple(self.toxics.describe()))

    async def start(self) -> bool:
        if self.status == "running" or not self.enabled:
            return self.status == "running"
        try:
            sock = bind_socket(self.host, self.wanted_port)
        except OSError as exc:
            self._status("failed", str(exc))
            return False
        self.port = self.wanted_port = sock.getsockname()[1]  # a free port taken once is kept: enabled again, it is the same
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _Connection(self), sock=sock)
        self._status("running")
        return True

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for link in list(self.links):
            link.abort("closed")
        if self.status != "failed":
            self._status("stopped")

    async def set_enabled(self, enabled: bool) -> None:
        """Toxiproxy's enabled: disabled stops listening and drops every connection."""
        self.enabled = enabled
        if enabled:
            await self.start()
        else:
            await self.stop()

    def _status(self, status: str, reason: str | None = None) -> None:
        self.status, self.reason = status, reason
        self.event("proxy_status", proxy=self.name, status=status, listen=self.listen, upstream=self.upstream, reason=reason)

    def record(self, conn: "_Connection") -> None:
        """A connection that ended, as a journal entry: method TCP, the path client → upstream, the bytes each
        way as sizes, how it ended and the toxics that acted as its fault."""
        link = conn.link
        ended = link.ended or "closed"
        if ended == "reset":
            self.stats.resets += 1
        elif ended == "timeout":
            self.stats.timeouts += 1
        fault = ", ".join(([ended] if ended != "closed" else []) + sorted(link.applied - {"reset_peer"})) or None
        peer = conn.peer
        duration = (time.monotonic() - link.started) * 1000
        row = (self.journal.next_id(), conn.opened_at, self.name, "TCP", f"{conn.client} → {self.upstream}", b"", 0, duration,
               link.sent["upstream"], link.sent["downstream"], (), (), b"", b"", fault, peer, None, None, None, None, None)
        self.journal.record(row)


class _Connection(asyncio.Protocol):
    """The client's side of one proxied connection; the upstream's side is _Upstream."""

    def __init__(self, proxy: Proxy) -> None:
        self.proxy = proxy
        self.transport: Any = None
        self.upstream: Any = None
        self.link: Link = None  # type: ignore[assignment]
        self.up: Direction | None = None
        self.down: Direction | None = None
        self.peer: tuple = ()
        self.client = "?"
        self.opened_at = time.time()
        self.recorded = False
        self.pending: list[bytes] = []
        self.client_eof = False

    def connection_made(self, transport: Any) -> None:
        proxy = self.proxy
        self.transport = transport
        peer = transport.get_extra_info("peername") or ()
        self.peer = tuple(peer[:2])
        self.client = f"{peer[0]}:{peer[1]}" if peer else "?"
        proxy.stats.connections += 1
        if len(proxy.links) >= MAX_CONNECTIONS:
            proxy.stats.refused += 1
            transport.abort()
            return
        proxy.stats.open += 1
        proxy.links.add(self)
        self.link = Link(proxy.toxics, close=self.close_both, reset=self.reset_both)
        self.client_valve = Valve(transport)
        self.client_valve.pause("connecting")  # until the upstream answers
        asyncio.get_running_loop().create_task(self._connect())

    async def _connect(self) -> None:
        proxy = self.proxy
        loop = asyncio.get_running_loop()
        try:
            upstream_transport, _ = await loop.create_connection(lambda: _Upstream(self), proxy.upstream_host, proxy.upstream_port)
        except OSError as exc:
            self.link.ended = "upstream refused"
            self.link.applied.add(f"upstream: {exc.strerror or exc}"[:80])
            self.transport.close()
            return
        if self.link.ended or self.transport.is_closing():
            upstream_transport.close()
            return
        self.upstream = upstream_transport
        self.upstream_valve = upstream = Valve(upstream_transport)
        client = self.client_valve
        self.up = Direction(self.link, "upstream", self._to_upstream, pause=lambda: client.pause("queue"), resume=lambda: client.resume("queue"))
        self.down = Direction(self.link, "downstream", self._to_client, pause=lambda: upstream.pause("queue"),
                              resume=lambda: upstream.resume("queue"))
        self.link.current("upstream")  # timers of timeout and reset_peer start with the connection
        self.link.current("downstream")
        for data in self.pending:
            self.up.feed(data)
        self.pending.clear()
        if self.client_eof:
            self.up.close_after(self._upstream_eof)
        self.client_valve.resume("connecting")

    def _to_upstream(self, data: bytes) -> None:
        self.upstream.write(data)
        self.proxy.stats.bytes_up += len(data)

    def _to_client(self, data: bytes) -> None:
        self.transport.write(data)
        self.proxy.stats.bytes_down += len(data)

    def _upstream_eof(self) -> None:
        if self.upstream is not None and not self.upstream.is_closing() and self.upstream.can_write_eof():
            self.upstream.write_eof()

    def data_received(self, data: bytes) -> None:
        if self.up is None:
            self.pending.append(data)
        else:
            self.up.feed(data)

    def eof_received(self) -> bool:
        self.client_eof = True
        if self.up is not None:
            self.up.close_after(self._upstream_eof)
        return True  # half-closed: the answer may still come

    def pause_writing(self) -> None:  # the client reads slower than the upstream sends: stop reading the upstream
        if self.upstream is not None:
            self.upstream_valve.pause("socket")
        if self.down is not None:
            self.down.gate.clear()

    def resume_writing(self) -> None:
        if self.upstream is not None:
            self.upstream_valve.resume("socket")
        if self.down is not None:
            self.down.gate.set()

    def upstream_done(self) -> None:
        """The upstream closed its side: what it sent still passes the toxics, then the client's connection ends."""
        if self.down is not None:
            self.down.close_after(self.close_both)
        else:
            self.close_both()

    def close_both(self) -> None:
        for transport in (self.transport, self.upstream):
            if transport is not None and not transport.is_closing():
                transport.close()

    def reset_both(self) -> None:
        rst(self.transport)
        if self.upstream is not None:
            self.upstream.abort()

    def abort(self, why: str) -> None:
        if self.link is not None and self.link.ended is None:
            self.link.ended = why
        self.transport.abort()
        if self.upstream is not None:
            self.upstream.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        proxy = self.proxy
        if self in proxy.links:
            proxy.links.discard(self)
            proxy.stats.open -= 1
        for direction in (self.up, self.down):
            if direction is not None:
                direction.cancel()
        if self.upstream is not None and not self.upstream.is_closing():
            self.upstream.close()
        if self.link is not None and not self.recorded:
            self.recorded = True
            proxy.record(self)


class _Upstream(asyncio.Protocol):
    def __init__(self, conn: _Connection) -> None:
        self.conn = conn

    def data_received(self, data: bytes) -> None:
        down = self.conn.down
        if down is not None:
            down.feed(data)

    def eof_received(self) -> bool:
        self.conn.upstream_done()
        return True

    def pause_writing(self) -> None:  # the upstream reads slower than the client sends
        self.conn.client_valve.pause("socket")
        if self.conn.up is not None:
            self.conn.up.gate.clear()

    def resume_writing(self) -> None:
        self.conn.client_valve.resume("socket")
        if self.conn.up is not None:
            self.conn.up.gate.set()

    def connection_lost(self, exc: Exception | None) -> None:
        self.conn.upstream_done()


def loopback_only(host: str) -> str:
    """The listen host a proxy made through an API gets: loopback unless it is loopback already (a proxy open to
    the network is configured in mockpanel.toml, on purpose)."""
    return host if host in LOOPBACK else "127.0.0.1"

