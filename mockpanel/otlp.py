"""An OTLP/HTTP trace receiver (`POST /__mockpanel/v1/traces`, protobuf or JSON), so a user's own service,
instrumented with any OpenTelemetry SDK and pointed at mockpanel, adds its spans to the traces the mocks record.

The wire format is the maintained `opentelemetry-proto` package's (imported when the first export arrives, so a
start does not pay for protobuf). Spans are kept in a bounded ring beside the journal; their attributes are cut short.
"""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from .wire import record

MAX_SPANS = 10_000
MAX_SPAN_BYTES = 64 * 1024 * 1024  # what the stored spans may hold, by the size of their strings (see ExternalSpan.size)
SPAN_OVERHEAD = 400  # bytes a span costs besides its strings: the object, its dict, the floats, the index entries
MAX_BODY = 4 * 1024 * 1024
MAX_SPANS_PER_EXPORT = 5_000  # kept of one export; the rest are answered as rejected (OTLP's partial success)
MAX_ATTRIBUTES = 32
MAX_VALUE = 256
MAX_NANOS = 2**64 - 1  # OTLP's times are fixed64 nanoseconds since the epoch (year 2554 at most)
KINDS = {0: "unspecified", 1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}


class OtlpError(ValueError):
    """An export that cannot be read; answered 400 with the reason."""


@record
@dataclass(slots=True)
class ExternalSpan:
    trace_id: str
    span_id: str
    parent_id: str | None
    service: str
    name: str
    kind: str
    start: float  # seconds since the epoch
    end: float
    error: bool
    attributes: dict[str, Any] = field(default_factory=dict)

    def size(self) -> int:
        """About what the span holds in memory: its strings and attributes plus a fixed overhead."""
        strings = len(self.name) + len(self.kind) + len(self.service) + 64
        return SPAN_OVERHEAD + strings + sum(len(k) + len(str(v)) + 150 for k, v in self.attributes.items())

    def as_dict(self) -> dict[str, Any]:
        return {"trace_id": self.trace_id, "span_id": self.span_id, "parent_span_id": self.parent_id, "service": self.service,
                "name": self.name, "kind": self.kind, "time": self.start, "duration_ms": round((self.end - self.start) * 1000, 3),
                "error": self.error, "attributes": self.attributes}


class SpanStore:
    """The spans services exported to any of the mocks, newest last, at most MAX_SPANS and MAX_SPAN_BYTES (the
    oldest go first), found by trace id without a scan (the panel and the trace listing ask for dozens at a time)."""

    def __init__(self, maxlen: int = MAX_SPANS, max_bytes: int = MAX_SPAN_BYTES) -> None:
        self.maxlen = maxlen
        self.max_bytes = max_bytes
        self.bytes = 0
        self.spans: deque[tuple[ExternalSpan, int]] = deque()  # (span, its size)
        self.by_trace: dict[str, deque[ExternalSpan]] = {}

    def add(self, spans: list[ExternalSpan]) -> None:
        for span in spans:
            size = span.size()
            while self.spans and (len(self.spans) >= self.maxlen or self.bytes + size > self.max_bytes):
                oldest, oldest_size = self.spans.popleft()
                self.bytes -= oldest_size
                kept = self.by_trace[oldest.trace_id]
                kept.popleft()  # the oldest of its trace: each keeps the order its spans came in
                if not kept:
                    del self.by_trace[oldest.trace_id]
            self.spans.append((span, size))
            self.bytes += size
            self.by_trace.setdefault(span.trace_id, deque()).append(span)

    def of(self, trace_id: str) -> list[ExternalSpan]:
        return sorted(self.by_trace.get(trace_id, ()), key=lambda s: s.start)

    def __len__(self) -> int:
        return len(self.spans)

    def clear(self) -> None:
        self.spans.clear()
        self.by_trace.clear()
        self.bytes = 0


def _short(value: Any) -> Any:
    """A value as stored: a string cut to MAX_VALUE; a bool, a float or a 64-bit int as it is; anything else (a
    list, an object, a 4,000-digit number) as its JSON text, cut."""
    if isinstance(value, str):
        return value[:MAX_VALUE]
    if isinstance(value, (bool, float)) or (isinstance(value, int) and -(2**63) <= value < 2**64):
        return value
    return json.dumps(value, default=str)[:MAX_VALUE] if isinstance(value, (dict, list, int)) else str(value)[:MAX_VALUE]


def _value(any_value: Any) -> Any:
    """An OTLP AnyValue (protobuf message or JSON object) as a short plain value."""
    if isinstance(any_value, dict):
        for key in ("stringValue", "boolValue", "intValue", "doubleValue"):
            if key in any_value:
                return _short(any_value[key])
        return _short(any_value)
    kind = any_value.WhichOneof("value")
    return _short(getattr(any_value, kind)) if kind in ("string_value", "bool_value", "int_value", "double_value") else str(any_value)[:MAX_VALUE]


def _attributes(items: Any) -> dict[str, Any]:
    out = {}
    for item in list(items)[:MAX_ATTRIBUTES]:
        key = item["key"] if isinstance(item, dict) else item.key
        out[str(key)[:MAX_VALUE]] = _value(item.get("value", {}) if isinstance(item, dict) else item.value)
    return out


def _hex_id(raw: Any, length: int, what: str) -> str | None:
    """An id as lowercase hex: bytes (protobuf) or a hex string (OTLP/JSON); empty means none."""
    text = raw.hex() if isinstance(raw, bytes) else str(raw or "").lower()
    if not text:
        return None
    if len(text) != length or any(c not in "0123456789abcdef" for c in text):
        raise OtlpError(f"{what} must be {length} hex digits")
    return text


def _nanos(raw: Any, what: str) -> float:
    """A span time in seconds: OTLP's unsigned 64-bit nanoseconds (a JSON number or decimal string), nothing else: a
    time no clock can show must not reach the panel."""
    text = str(raw or 0)
    if len(text) > 20 or not text.isdigit() or int(text) > MAX_NANOS:
        raise OtlpError(f"{what} is nanoseconds since the epoch, from 0 to {MAX_NANOS}, not {text[:40]!r}")
    return int(text) / 1e9


def parse(body: bytes, content_type: str, limit: int = MAX_SPANS_PER_EXPORT) -> tuple[list[ExternalSpan], int]:
    """The spans of an ExportTraceServiceRequest, as protobuf (application/x-protobuf) or JSON (application/json): the
    first `limit` of them, and how many more there were (rejected). CPU-bound: the receiver runs it in a thread."""
    if len(body) > MAX_BODY:
        raise OtlpError(f"an export is at most {MAX_BODY // (1024 * 1024)} MiB")
    if content_type == "application/x-protobuf":
        from google.protobuf.message import DecodeError
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

        request = ExportTraceServiceRequest()
        try:
            request.ParseFromString(body)
        except DecodeError as exc:
            raise OtlpError(f"not an OTLP protobuf ExportTraceServiceRequest: {exc}") from None
        resource_spans = [(rs.resource.attributes, [span for ss in rs.scope_spans for span in ss.spans]) for rs in request.resource_spans]
        get = getattr
        names = {"trace": "trace_id", "span": "span_id", "parent": "parent_span_id", "start": "start_time_unix_nano",
                 "end": "end_time_unix_nano", "attributes": "attributes"}
    elif content_type == "application/json":
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise OtlpError(f"not JSON: {exc}") from None
        except RecursionError:
            raise OtlpError("not an OTLP/JSON export: nested too deep") from None
        if not isinstance(data, dict) or not isinstance(data.get("resourceSpans", []), list):
            raise OtlpError("an OTLP/JSON export is an object with resourceSpans")
        try:
            resource_spans = [((rs.get("resource") or {}).get("attributes", []), [span for ss in rs.get("scopeSpans", []) for span in ss.get("spans", [])])
                              for rs in data.get("resourceSpans", [])]
        except (AttributeError, TypeError):
            raise OtlpError("resourceSpans[].scopeSpans[].spans[] are objects in lists") from None
        get = lambda obj, key: obj.get(key)  # noqa: E731 - the same reads over both shapes
        names = {"trace": "traceId", "span": "spanId", "parent": "parentSpanId", "start": "startTimeUnixNano",
                 "end": "endTimeUnixNano", "attributes": "attributes"}
    else:
        raise OtlpError("send application/x-protobuf or application/json (OTLP/HTTP)")
    spans = []
    rejected = 0
    try:
        for resource_attributes, items in resource_spans:
            service = str(_attributes(resource_attributes).get("service.name", "unknown service"))[:MAX_VALUE]
            room = max(0, limit - len(spans))
            rejected += max(0, len(items) - room)
            for span in items[:room]:
                trace_id = _hex_id(get(span, names["trace"]), 32, "traceId")
                span_id = _hex_id(get(span, names["span"]), 16, "spanId")
                if trace_id is None or span_id is None:
                    raise OtlpError("every span has a traceId and a spanId")
                status = get(span, "status")
                # proto3 JSON leaves out fields at their default (a Collector forwarding as JSON sends no status when unset)
                code = 0 if status is None else status.get("code", 0) if isinstance(status, dict) else status.code
                kind = get(span, "kind")
                spans.append(ExternalSpan(trace_id, span_id, _hex_id(get(span, names["parent"]), 16, "parentSpanId"), service,
                                          str(get(span, "name") or "")[:MAX_VALUE], KINDS.get(int(kind or 0), "unspecified")
                                          if not isinstance(kind, str) else kind[:32].removeprefix("SPAN_KIND_").lower(),
                                          _nanos(get(span, names["start"]), "startTimeUnixNano"), _nanos(get(span, names["end"]), "endTimeUnixNano"),
                                          code in (2, "STATUS_CODE_ERROR"), _attributes(get(span, names["attributes"]) or [])))
    except (AttributeError, TypeError, ValueError, OverflowError) as exc:  # OverflowError: a time too large for a float
        if isinstance(exc, OtlpError):
            raise
        raise OtlpError(f"a span is malformed: {exc}"[:200]) from None
    return spans, rejected
