"""The request journal and event bus every server records into and the front ends read from."""

from __future__ import annotations

import itertools
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, NamedTuple


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


class Journal:
    """A bounded ring buffer of requests, publishing each on the bus as a RequestEntry.

    The buffer holds plain tuples in RequestEntry's field order, the cheapest record to build on the hot path;
    they are wrapped as RequestEntry when read.
    """

    def __init__(self, bus: EventBus | None = None, maxlen: int = 10_000) -> None:
        self.bus = bus or EventBus()
        self._rows: deque[tuple] = deque(maxlen=maxlen)
        self._ids = itertools.count(1)
        self.maxlen = maxlen

    def next_id(self) -> int:
        return next(self._ids)

    def record(self, row: tuple) -> None:
        self._rows.append(row)
        if self.bus.subscribers:
            self.bus.publish(RequestEntry._make(row))

    def __len__(self) -> int:
        return len(self._rows)

    def entries(self) -> list[RequestEntry]:
        return [RequestEntry._make(row) for row in self._rows]

    def filtered(self, keep: Callable[[RequestEntry], bool], limit: int) -> list[RequestEntry]:
        """The newest `limit` entries `keep` accepts, oldest first."""
        found = []
        for row in reversed(self._rows):
            entry = RequestEntry._make(row)
            if keep(entry):
                found.append(entry)
                if len(found) >= limit:
                    break
        found.reverse()
        return found

    def latencies(self, last: int = 2048) -> dict[str, list[float]]:
        """Per server, the durations (ms, sorted) of its most recent answered requests: one pass, newest first."""
        found: dict[str, list[float]] = {}
        for row in reversed(self._rows):
            if row[6]:
                durations = found.setdefault(row[2], [])
                if len(durations) < last:
                    durations.append(row[7])
        for durations in found.values():
            durations.sort()
        return found

    def clear(self, server: str | None = None) -> None:
        if server is None:
            self._rows.clear()
        else:
            kept = [row for row in self._rows if row[2] != server]
            self._rows.clear()
            self._rows.extend(kept)

    def query(
        self,
        *,
        server: str | None = None,
        method: str | None = None,
        status: int | None = None,
        path: str | None = None,
        since: int | None = None,
        limit: int | None = None,
    ) -> list[RequestEntry]:
        """Entries oldest first, filtered; `limit` keeps the newest (found walking back from the newest)."""
        method = method.upper() if method else None

        def keep(row: tuple) -> bool:
            return ((server is None or row[2] == server) and (method is None or row[3] == method)
                    and (status is None or row[6] == status) and (path is None or path in row[4])
                    and (since is None or row[0] > since))

        if limit is not None and limit <= 0:
            return []
        found = []
        for row in reversed(self._rows):
            if since is not None and row[0] <= since:
                break  # ids only grow: everything older is older still
            if keep(row):
                found.append(RequestEntry._make(row))
                if limit is not None and len(found) >= limit:
                    break
        found.reverse()
        return found


def percentile(ordered: list[float], q: float) -> float | None:
    """The q-quantile of an already sorted list (None when empty)."""
    if not ordered:
        return None
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]
