"""The request journal and event bus every server records into and the front ends read from."""

from __future__ import annotations

import heapq
import itertools
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, NamedTuple


def _decode(raw: bytes) -> str:
    return raw.decode("latin-1")


class RequestEntry(NamedTuple):
    """One request to one server, as front ends and the control API read it. Headers stay bytes until read."""

    id: int
    time: float  # wall clock, seconds since the epoch, at arrival
    server: str
    method: str
    path: str
    raw_query: bytes
    status: int  # 0: no response was sent (dropped, hung, client gone)
    duration_ms: float
    request_size: int
    response_size: int
    raw_request_headers: list  # [(name, value), ...] as bytes, as the ASGI server gave them
    raw_response_headers: list
    request_preview: bytes
    response_preview: bytes
    fault: str | None = None
    peer: tuple = ()  # (host, port) of the client
    route: str | None = None

    @property
    def query(self) -> str:
        return self.raw_query.decode("latin-1")

    @property
    def client(self) -> str | None:
        return f"{self.peer[0]}:{self.peer[1]}" if self.peer else None

    @property
    def request_headers(self) -> list[tuple[str, str]]:
        return [(_decode(k), _decode(v)) for k, v in self.raw_request_headers]

    @property
    def response_headers(self) -> list[tuple[str, str]]:
        return [(_decode(k), _decode(v)) for k, v in self.raw_response_headers]

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "time": self.time,
            "server": self.server,
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "status": self.status,
            "duration_ms": round(self.duration_ms, 3),
            "request_size": self.request_size,
            "response_size": self.response_size,
            "request_headers": self.request_headers,
            "response_headers": self.response_headers,
            "request_body_preview": self.request_preview.decode("utf-8", "replace"),
            "response_body_preview": self.response_preview.decode("utf-8", "replace"),
            "fault": self.fault,
            "client": self.client,
        }


@dataclass(slots=True)
class DomainEvent:
    """Something a server did that a front end may show: user registered, object stored, ..."""

    server: str
    kind: str
    data: dict[str, Any] = field(default_factory=dict)
    time: float = field(default_factory=time.time)


Subscriber = Callable[[Any], None]


class EventBus:
    """Synchronous fan-out inside the one event loop; subscribers must be quick (the UI batches)."""

    def __init__(self) -> None:
        self.subscribers: list[Subscriber] = []

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        self.subscribers.append(callback)

        def unsubscribe() -> None:
            if callback in self.subscribers:
                self.subscribers.remove(callback)

        return unsubscribe

    def publish(self, item: Any) -> None:
        for callback in self.subscribers:
            callback(item)

    def event(self, server: str, kind: str, **data: Any) -> None:
        self.publish(DomainEvent(server, kind, data))


class ServerJournal:
    """One server's bounded ring of requests, publishing each on the bus as a RequestEntry.

    The ring holds plain tuples in RequestEntry's field order, the cheapest record to build on the hot path; they are
    wrapped as RequestEntry when read. A flood on one server cannot push another server's requests out.
    """

    __slots__ = ("server", "bus", "rows", "next_id")

    def __init__(self, server: str, bus: EventBus, ids: Callable[[], int], maxlen: int) -> None:
        self.server = server
        self.bus = bus
        self.rows: deque[tuple] = deque(maxlen=maxlen)
        self.next_id = ids  # shared by every server's ring: ids order requests across servers

    def record(self, row: tuple) -> None:
        self.rows.append(row)
        if self.bus.subscribers:
            self.bus.publish(RequestEntry._make(row))

    def __len__(self) -> int:
        return len(self.rows)

    def clear(self) -> None:
        self.rows.clear()

    def query(self, **criteria: Any) -> list[RequestEntry]:
        """As Journal.query, over this server's requests only."""
        return _select([self.rows], **criteria)


class Journal:
    """Every server's ring (capacity `maxlen` each), read together: entries and queries are ordered by id."""

    def __init__(self, bus: EventBus | None = None, maxlen: int = 10_000) -> None:
        self.bus = bus or EventBus()
        self.maxlen = maxlen
        self.servers: dict[str, ServerJournal] = {}
        self._ids = itertools.count(1).__next__

    def of(self, server: str) -> ServerJournal:
        """The server's ring, made on first use."""
        ring = self.servers.get(server)
        if ring is None:
            ring = self.servers[server] = ServerJournal(server, self.bus, self._ids, self.maxlen)
        return ring

    def record(self, row: tuple) -> None:
        self.of(row[2]).record(row)

    def __len__(self) -> int:
        return sum(len(ring) for ring in self.servers.values())

    def entries(self) -> list[RequestEntry]:
        return _select([ring.rows for ring in self.servers.values()])

    def clear(self, server: str | None = None) -> None:
        for name, ring in self.servers.items():
            if server is None or name == server:
                ring.clear()

    def query(self, *, server: str | None = None, **criteria: Any) -> list[RequestEntry]:
        rings = [ring.rows for name, ring in self.servers.items() if server is None or name == server]
        return _select(rings, **criteria)


def _newest_first(rings: list[deque[tuple]]) -> Iterator[tuple]:
    if len(rings) == 1:
        return reversed(rings[0])
    return heapq.merge(*(reversed(ring) for ring in rings), key=lambda row: -row[0])


def _select(
    rings: list[deque[tuple]],
    *,
    method: str | None = None,
    status: int | None = None,
    path: str | None = None,
    since: int | None = None,
    limit: int | None = None,
    keep: Callable[[RequestEntry], bool] | None = None,
) -> list[RequestEntry]:
    """Entries oldest first, filtered; `limit` keeps the newest (found walking back from the newest); `keep` is any
    further test of an entry (the Requests pane's filter)."""
    method = method.upper() if method else None
    if limit is not None and limit <= 0:
        return []
    found = []
    for row in _newest_first(rings):
        if since is not None and row[0] <= since:
            break  # ids only grow: everything older is older still
        if ((method is None or row[3] == method) and (status is None or row[6] == status)
                and (path is None or path in row[4])):
            entry = RequestEntry._make(row)
            if keep is None or keep(entry):
                found.append(entry)
                if limit is not None and len(found) >= limit:
                    break
    found.reverse()
    return found


def percentile(ordered: list[float], q: float) -> float | None:
    """The q-quantile of an already sorted list (None when empty)."""
    if not ordered:
        return None
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]
