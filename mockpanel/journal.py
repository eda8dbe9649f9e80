"""The request journal and event bus every server records into and the front ends read from."""

from __future__ import annotations

import itertools
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable


def _decode(raw: bytes) -> str:
    return raw.decode("latin-1")


@dataclass(slots=True)
class RequestEntry:
    """One request to one server. Headers stay raw bytes until someone reads them (the hot path stays cheap)."""

    id: int
    time: float  # wall clock, seconds since the epoch, at arrival
    server: str
    method: str
    path: str
    query: str
    status: int
    duration_ms: float
    request_size: int
    response_size: int
    raw_request_headers: list
    raw_response_headers: list
    request_preview: bytes
    response_preview: bytes
    fault: str | None = None
    client: str | None = None
    route: str | None = None

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
        self._subscribers: list[Subscriber] = []

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        self._subscribers.append(callback)

        def unsubscribe() -> None:
            if callback in self._subscribers:
                self._subscribers.remove(callback)

        return unsubscribe

    def publish(self, item: Any) -> None:
        for callback in self._subscribers:
            callback(item)

    def event(self, server: str, kind: str, **data: Any) -> None:
        self.publish(DomainEvent(server, kind, data))


class Journal:
    """A bounded ring buffer of RequestEntry, publishing each on the bus."""

    def __init__(self, bus: EventBus | None = None, maxlen: int = 10_000) -> None:
        self.bus = bus or EventBus()
        self._entries: deque[RequestEntry] = deque(maxlen=maxlen)
        self._ids = itertools.count(1)
        self.maxlen = maxlen

    def next_id(self) -> int:
        return next(self._ids)

    def record(self, entry: RequestEntry) -> None:
        self._entries.append(entry)
        self.bus.publish(entry)

    def __len__(self) -> int:
        return len(self._entries)

    def entries(self) -> list[RequestEntry]:
        return list(self._entries)

    def clear(self, server: str | None = None) -> None:
        if server is None:
            self._entries.clear()
        else:
            kept = [e for e in self._entries if e.server != server]
            self._entries.clear()
            self._entries.extend(kept)

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
        """Entries oldest first, filtered; `limit` keeps the newest."""

        def keep(e: RequestEntry) -> bool:
            return (
                (server is None or e.server == server)
                and (method is None or e.method == method.upper())
                and (status is None or e.status == status)
                and (path is None or path in e.path)
                and (since is None or e.id > since)
            )

        found: Iterable[RequestEntry] = (e for e in self._entries if keep(e))
        result = list(found)
        if limit is not None:
            result = result[-limit:] if limit > 0 else []
        return result
