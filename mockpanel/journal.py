"""The request journal and event bus every server records into and the front ends read from."""

from __future__ import annotations

import heapq
import itertools
import time
from collections import deque
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, NamedTuple

from . import tracing
from .wire import record
from .otlp import ExternalSpan, SpanStore


def _decode(raw: bytes) -> str:
    return raw.decode("latin-1")


@record
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
    raw_request_headers: tuple  # ((name, value), ...) as bytes, as the ASGI server gave them
    raw_response_headers: tuple
    request_preview: bytes
    response_preview: bytes
    fault: str | None = None
    peer: tuple = ()  # (host, port) of the client
    route: str | None = None
    trace_id: str | None = None  # W3C trace context (tracing.py): the trace, this request's span, the caller's span
    span_id: str | None = None
    parent_id: str | None = None
    mock_time: float | None = None  # the mocks' clock at arrival when it was not the wall clock (clock.py)

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
            "trace_id": self.trace_id,
            "span_id": self.span_id,
            "parent_span_id": self.parent_id,
            "mock_time": self.mock_time,
        }


# Who made a change: set where changes enter — the control API, the panel, a scenario's steps, the pytest plugin —
# and carried by every domain event made meanwhile, so serve's log says "by the control API". Unset, a change made
# while a request is served (its trace span is current: a user registered, an object stored) is that request's, any
# other mockpanel's own (a server stopping): derived, so the request path sets nothing more.
change_source: ContextVar[str | None] = ContextVar("mockpanel_change_source", default=None)


def _source() -> str:
    return change_source.get() or ("a request" if tracing.current.get() is not None else "mockpanel")


@record
@dataclass(slots=True)
class DomainEvent:
    """Something a server did that a front end may show: user registered, object stored, ..."""

    server: str
    kind: str
    data: dict[str, Any] = field(default_factory=dict)
    time: float = field(default_factory=time.time)
    source: str = field(default_factory=_source)


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


# What one journal entry keeps of a request's head, as body previews keep a part of its body: a flood of 60 KB
# queries or headers costs the journal what a flood of small requests does.
MAX_PATH_KEPT = 2048  # characters of the path
MAX_QUERY_KEPT = 2048  # bytes of the query string
MAX_HEADER_KEPT = 1024  # bytes of one header value
MAX_HEADERS_KEPT = 8192  # bytes of one side's headers (names and values); the rest is counted in one more header
CUT = "[cut]"  # ASCII: headers and the query are read as latin-1
# What Python spends on an entry besides the bytes of its strings (measured with tracemalloc: the row tuple, its
# numbers, the objects around each string, a header's pair tuple), so the budget counts memory, not text.
ENTRY_OVERHEAD = 700
HEADER_OVERHEAD = 150


def _cut_headers(headers: tuple) -> tuple[tuple, int]:
    """Headers as kept (each value and all of them bounded) and the bytes they hold."""
    kept, size = [], 0
    for at, (name, value) in enumerate(headers):
        if len(value) > MAX_HEADER_KEPT:
            value = value[:MAX_HEADER_KEPT] + CUT.encode()
        if size + len(name) + len(value) > MAX_HEADERS_KEPT:
            left = headers[at:]
            kept.append((b"x-mockpanel-cut", b"%d more headers, %d bytes" % (len(left), sum(len(k) + len(v) for k, v in left))))
            size += 60 + HEADER_OVERHEAD
            break
        kept.append((name, value))
        size += len(name) + len(value) + HEADER_OVERHEAD
    return tuple(kept), size


def _kept(row: tuple) -> tuple[tuple, int]:
    """The row as the journal keeps it (path, query and headers cut when long) and what it costs in bytes."""
    path, query, request_headers, response_headers = row[4], row[5], row[10], row[11]
    size = ENTRY_OVERHEAD + len(path) + len(query) + len(row[12]) + len(row[13])
    head = longest = 0  # one pass over both sides' headers (every request runs this)
    for headers in (request_headers, response_headers):
        for name, value in headers:
            head += len(name) + len(value) + HEADER_OVERHEAD
            if len(value) > longest:
                longest = len(value)
    if len(path) <= MAX_PATH_KEPT and len(query) <= MAX_QUERY_KEPT and head <= MAX_HEADERS_KEPT and longest <= MAX_HEADER_KEPT:
        return row, size + head  # the common case: nothing to cut, nothing copied
    row = list(row)
    if len(path) > MAX_PATH_KEPT:
        row[4] = path[:MAX_PATH_KEPT] + CUT
    if len(query) > MAX_QUERY_KEPT:
        row[5] = query[:MAX_QUERY_KEPT] + CUT.encode()
    row[10], request_size = _cut_headers(request_headers)
    row[11], response_size = _cut_headers(response_headers)
    return tuple(row), ENTRY_OVERHEAD + len(row[4]) + len(row[5]) + len(row[12]) + len(row[13]) + request_size + response_size


class ServerJournal:
    """One server's bounded ring of requests, publishing each on the bus as a RequestEntry.

    The ring holds plain tuples in RequestEntry's field order, the cheapest record to build on the hot path; they are
    wrapped as RequestEntry when read. It is bounded in count (`maxlen`) and in bytes (`max_bytes`, what its entries
    cost in memory), oldest out first; the whole journal bounds all rings together.
    """

    __slots__ = ("server", "bus", "rows", "sizes", "bytes", "maxlen", "max_bytes", "next_id", "whole")

    def __init__(self, server: str, bus: EventBus, ids: Callable[[], int], maxlen: int, whole: "Journal",
                 max_bytes: int = 1 << 62) -> None:
        self.whole = whole  # every server's journal: a trace crosses servers
        self.server = server
        self.bus = bus
        self.rows: deque[tuple] = deque()
        self.sizes: deque[int] = deque()  # bytes of each row, in step with rows
        self.bytes = 0
        self.maxlen = maxlen
        self.max_bytes = max_bytes
        self.next_id = ids  # shared by every server's ring: ids order requests across servers

    def record(self, row: tuple) -> None:
        row, size = _kept(row)
        self.rows.append(row)
        self.sizes.append(size)
        self.bytes += size
        whole = self.whole
        whole.bytes += size
        while len(self.rows) > self.maxlen or (self.bytes > self.max_bytes and len(self.rows) > 1):
            self.drop_oldest()
        if whole.bytes > whole.max_bytes:
            whole.shed()
        if self.bus.subscribers:
            self.bus.publish(RequestEntry._make(row))

    def drop_oldest(self) -> None:
        self.rows.popleft()
        size = self.sizes.popleft()
        self.bytes -= size
        self.whole.bytes -= size

    def __len__(self) -> int:
        return len(self.rows)

    def clear(self) -> None:
        self.rows.clear()
        self.sizes.clear()
        self.whole.bytes -= self.bytes
        self.bytes = 0

    def query(self, **criteria: Any) -> list[RequestEntry]:
        """As Journal.query, over this server's requests only."""
        return _select([self.rows], **criteria)


class Journal:
    """Every server's ring (`maxlen` entries each, at most half of `max_bytes` each, `max_bytes` all together), read
    together: entries and queries are ordered by id. Over the total, the ring holding the most bytes gives up its
    oldest: a flood on one server does not push the others' requests out."""

    def __init__(self, bus: EventBus | None = None, maxlen: int = 10_000, max_bytes: int = 128 * 1024 * 1024) -> None:
        self.bus = bus or EventBus()
        self.maxlen = maxlen
        self.max_bytes = max_bytes
        self.bytes = 0
        self.servers: dict[str, ServerJournal] = {}
        self._ids = itertools.count(1).__next__
        self.external = SpanStore()  # spans the user's own services exported (OTLP), joined to the mocks' by trace id

    def of(self, server: str) -> ServerJournal:
        """The server's ring, made on first use."""
        ring = self.servers.get(server)
        if ring is None:
            ring = self.servers[server] = ServerJournal(server, self.bus, self._ids, self.maxlen, self, self.max_bytes // 2)
        return ring

    def shed(self) -> None:
        """Back under the total: the fullest rings give up their oldest entries."""
        while self.bytes > self.max_bytes:
            fullest = max(self.servers.values(), key=lambda ring: ring.bytes)
            if len(fullest.rows) <= 1:
                return
            fullest.drop_oldest()

    def record(self, row: tuple) -> None:
        self.of(row[2]).record(row)

    def find_trace(self, key: str) -> str | None:
        """The trace id `key` is, or of the newest request that carried X-Request-ID: key."""
        wanted = key.encode("latin-1", "replace")
        for row in _newest_first([ring.rows for ring in self.servers.values()]):
            if row[17] == key:
                return key
            if any(name == b"x-request-id" and value == wanted for name, value in row[10]):
                return row[17]
        return None

    def trace(self, trace_id: str) -> list[RequestEntry]:
        """Every journaled request of a trace, in the order they started."""
        return _in_start_order([row for ring in self.servers.values() for row in ring.rows if row[17] == trace_id])

    def traces(self, limit: int = 50, errors_only: bool = False, scan: int | None = None) -> list[dict[str, Any]]:
        """The newest traces (by their latest request), each summed up: root, servers touched, span, errors, faults.
        `scan`: look at that many of the newest requests only (the panel redraws this under load)."""
        groups: dict[str, list[tuple]] = {}
        for seen, row in enumerate(_newest_first([ring.rows for ring in self.servers.values()])):
            if scan is not None and seen >= scan:
                break
            if row[17] is None:
                continue
            group = groups.get(row[17])
            if group is None:
                if len(groups) >= limit and not errors_only:
                    continue
                group = groups[row[17]] = []
            group.append(row)
        found = [summarize(_in_start_order(rows), self.external.of(trace_id)) for trace_id, rows in groups.items()]
        if errors_only:
            found = [t for t in found if t["errors"]]
        return found[:limit]

    def __len__(self) -> int:
        return sum(len(ring) for ring in self.servers.values())

    def entries(self) -> list[RequestEntry]:
        return _select([ring.rows for ring in self.servers.values()])

    def clear(self, server: str | None = None) -> None:
        for name, ring in self.servers.items():
            if server is None or name == server:
                ring.clear()
        if server is None:
            self.external.clear()

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


def _in_start_order(rows: list[tuple]) -> list[RequestEntry]:
    """A trace's rows as entries, by arrival (ids break ties)."""
    return [RequestEntry._make(row) for row in sorted(rows, key=lambda row: (row[1], row[0]))]


def summarize(hops: list[RequestEntry], external: list[ExternalSpan] = ()) -> dict[str, Any]:
    """A trace's row: its root (the first request or exported span whose parent is not in the trace), the servers
    and services in the order first touched, how long from the first start to the last end, and what went wrong
    (5xx, no answer, an exported span with an error status, faults injected)."""
    spans = {hop.span_id for hop in hops} | {span.span_id for span in external}
    roots = [(hop.time, f"{hop.server} {hop.method} {hop.path}") for hop in hops if hop.parent_id not in spans]
    roots += [(span.start, f"{span.service}: {span.name}") for span in external if span.parent_id not in spans]
    starts = [hop.time for hop in hops] + [span.start for span in external]
    ends = [hop.time + hop.duration_ms / 1000 for hop in hops] + [span.end for span in external]
    touched = sorted([(hop.time, hop.server) for hop in hops] + [(span.start, span.service) for span in external])
    errors = sum(hop.status >= 500 or hop.status == 0 for hop in hops) + sum(span.error for span in external)
    return {"trace_id": (hops[0].trace_id if hops else external[0].trace_id), "root": min(roots)[1] if roots else "",
            "started": min(starts), "duration_ms": round((max(ends) - min(starts)) * 1000, 3),
            "servers": list(dict.fromkeys(name for _, name in touched)), "requests": len(hops), "spans": len(external),
            "errors": errors, "faults": [hop.fault for hop in hops if hop.fault]}


def percentile(ordered: list[float], q: float) -> float | None:
    """The q-quantile of an already sorted list (None when empty)."""
    if not ordered:
        return None
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]
