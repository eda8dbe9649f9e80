"""W3C trace context (https://www.w3.org/TR/trace-context/): every request a mock serves is a span of a trace — the
caller's, when it sent a valid `traceparent`, else a new one — and every call a mock makes (client app → image API,
image API → S3 and webhooks, S3 notifications, webhook replays) carries the trace on, with the span of the request
that caused it as the parent. The journal records each request's trace id, span id and parent span id.

The request being served is in a context variable, which asyncio copies into the tasks a request starts, so a job
that runs after the response still belongs to the upload that made it.
"""

from __future__ import annotations

import os
from contextvars import ContextVar
from typing import NamedTuple

_HEX = frozenset(b"0123456789abcdef")


class Span(NamedTuple):
    trace_id: str  # 32 lowercase hex digits
    span_id: str  # 16 lowercase hex digits: this request
    parent_id: str | None  # the caller's span, None for a trace's root
    tracestate: bytes | None = None  # the caller's vendor data, passed on as it came


current: ContextVar[Span | None] = ContextVar("mockpanel_span", default=None)


def _hex(value: bytes, length: int) -> bool:
    return len(value) == length and _HEX.issuperset(value) and value.strip(b"0") != b""


def parse_traceparent(value: bytes | None) -> tuple[str, str] | None:
    """(trace id, parent span id) from a `traceparent` header, or None when it is missing or malformed (then a new
    trace starts, as the spec asks). Version 00 is exactly 55 characters; a later version may append fields."""
    if not value or len(value) < 55:
        return None
    version, trace_id, parent_id, flags = value[:2], value[3:35], value[36:52], value[53:55]
    if value[2:3] != b"-" or value[35:36] != b"-" or value[52:53] != b"-" or not _HEX.issuperset(version + flags):
        return None
    if version == b"ff" or (version == b"00" and len(value) != 55) or (len(value) > 55 and value[55:56] != b"-"):
        return None
    if not (_hex(trace_id, 32) and _hex(parent_id, 16)):
        return None
    return trace_id.decode(), parent_id.decode()


def start(traceparent: bytes | None, tracestate: bytes | None) -> Span:
    """The span of a request that arrived with these headers (the caller's trace, or a new one)."""
    parsed = parse_traceparent(traceparent)
    if parsed is None:
        ids = os.urandom(24).hex()  # one read of the system's randomness per request: trace id and span id
        return Span(ids[:32], ids[32:], None)
    return Span(parsed[0], os.urandom(8).hex(), parsed[1], tracestate if _passable(tracestate) else None)


def _passable(tracestate: bytes | None) -> bool:
    """A tracestate to pass on: at most 512 bytes of printable ASCII, as the spec writes it. HTTP lets a header carry
    bytes above 0x7f, which the mocks' own HTTP client cannot send on (a 500 where the call is made)."""
    return bool(tracestate) and len(tracestate) <= 512 and all(0x20 <= b <= 0x7E for b in tracestate)


def headers() -> dict[str, str]:
    """Headers for a call mockpanel makes now: the trace of the request being served (a new trace outside one)."""
    span = current.get()
    if span is None:
        return {"traceparent": f"00-{os.urandom(16).hex()}-{os.urandom(8).hex()}-01"}
    out = {"traceparent": f"00-{span.trace_id}-{span.span_id}-01"}
    if span.tracestate:
        out["tracestate"] = span.tracestate.decode("latin-1")
    return out
