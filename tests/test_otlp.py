"""The OTLP receiver: a user's FastAPI service instrumented with the OpenTelemetry SDK (OTLP/HTTP exporter, protobuf)
calls the S3 mock; its spans and the mock's request land in one trace. OTLP/JSON too; bad exports get a 400."""

from __future__ import annotations

import httpx2
import pytest
from fastapi import FastAPI
from opentelemetry import propagate
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind

from conftest import serving
from mockpanel.testing import Mocks, settings_for


@pytest.fixture(scope="module")
def mocks():
    with Mocks(settings_for(["auth", "s3"])) as running:
        yield running


def orders_service(s3: str, collector: str) -> FastAPI:
    """What a user's service looks like: the SDK, its OTLP exporter pointed at mockpanel, W3C propagation on its calls."""
    provider = TracerProvider(resource=Resource.create({"service.name": "orders"}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=collector)))
    tracer = provider.get_tracer("orders")
    app = FastAPI()

    @app.post("/orders/{order_id}")
    def create(order_id: str) -> dict:
        with tracer.start_as_current_span("POST /orders/{order_id}", kind=SpanKind.SERVER) as span:
            with tracer.start_as_current_span("s3 PutObject", kind=SpanKind.CLIENT):
                headers: dict[str, str] = {}
                propagate.inject(headers)
                httpx2.put(f"{s3}/orders/{order_id}.json", content=b'{"total": 3}', headers=headers).raise_for_status()
            return {"trace_id": format(span.get_span_context().trace_id, "032x")}

    return app


def test_an_instrumented_service_and_the_mocks_share_one_trace(mocks):
    s3 = mocks.url("s3")
    httpx2.put(f"{s3}/orders").raise_for_status()
    collector = f"{mocks.url('auth')}/__mockpanel/v1/traces"  # any server receives: the traces are the Hub's
    with serving(orders_service(s3, collector)) as orders:
        trace_id = httpx2.post(f"{orders}/orders/42").json()["trace_id"]

    trace = httpx2.get(f"{s3}/__mockpanel/traces/{trace_id}").json()
    spans = {span["name"]: span for span in trace["spans"]}
    assert set(spans) == {"POST /orders/{order_id}", "s3 PutObject"} and {s["service"] for s in spans.values()} == {"orders"}
    put, = trace["hops"]
    assert (put["server"], put["method"], put["path"]) == ("s3", "PUT", "/orders/42.json")
    assert put["parent_span_id"] == spans["s3 PutObject"]["span_id"]  # the mock's request is the SDK client span's child
    assert spans["s3 PutObject"]["parent_span_id"] == spans["POST /orders/{order_id}"]["span_id"]
    assert spans["s3 PutObject"]["kind"] == "client"
    assert trace["root"] == "orders: POST /orders/{order_id}" and trace["servers"] == ["orders", "s3"]
    assert mocks.trace(trace_id)[0].span_id == put["span_id"]


def test_otlp_json_and_refusals(mocks):
    url = f"{mocks.url('s3')}/__mockpanel/v1/traces"
    trace_id, span_id = "5b8efff798038103d269b633813fc60c", "eee19b7ec3c1b174"
    export = {"resourceSpans": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "billing"}}]},
                                 "scopeSpans": [{"spans": [{"traceId": trace_id, "spanId": span_id, "name": "charge", "kind": 2,
                                                            "startTimeUnixNano": "1700000000000000000", "endTimeUnixNano": "1700000000250000000",
                                                            "status": {"code": 2}, "attributes": [{"key": "amount", "value": {"intValue": "30"}}]}]}]}]}
    answer = httpx2.post(url, json=export)
    assert answer.status_code == 200 and answer.json() == {}
    trace = httpx2.get(f"{mocks.url('s3')}/__mockpanel/traces/{trace_id}").json()
    span, = trace["spans"]
    assert (span["service"], span["name"], span["kind"], span["duration_ms"], span["error"]) == ("billing", "charge", "server", 250.0, True)
    assert trace["errors"] == 1 and trace["hops"] == []

    bad_id = httpx2.post(url, json={"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "xyz", "spanId": span_id}]}]}]})
    assert bad_id.status_code == 400 and "traceId" in bad_id.json()["message"]
    too_late = {"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": trace_id, "spanId": span_id, "startTimeUnixNano": "9" * 400}]}]}]}
    overflow = httpx2.post(url, json=too_late)  # a time no float holds: a clear 400, not a 500
    assert overflow.status_code == 400 and "startTimeUnixNano" in overflow.json()["message"]
    garbage = httpx2.post(url, content=b"\xff\x00garbage", headers={"content-type": "application/x-protobuf"})
    assert garbage.status_code == 400 and "protobuf" in garbage.json()["message"]
    xml = httpx2.post(url, content=b"<x/>", headers={"content-type": "application/xml"})
    assert xml.status_code == 415  # the control API takes JSON, and protobuf on this one path
    huge = httpx2.post(url, content=b"0" * (5 * 1024 * 1024), headers={"content-type": "application/x-protobuf"})
    assert huge.status_code == 413
    cross_site = httpx2.post(url, json=export, headers={"origin": "http://evil.example"})
    assert cross_site.status_code == 403


def test_a_trace_exports_as_otlp_json_that_the_protobuf_definitions_read_and_as_har(mocks):
    import base64

    from google.protobuf import json_format
    from opentelemetry.proto.trace.v1.trace_pb2 import TracesData

    s3, trace_id = mocks.url("s3"), "0af7651916cd43dd8448eb211c80319c"
    httpx2.put(f"{s3}/exported").raise_for_status()
    with mocks.faults("s3", fail_next=1, fail_next_code=503):
        httpx2.put(f"{s3}/exported/a.txt", content=b"a", headers={"traceparent": f"00-{trace_id}-b7ad6b7169203331-01"})
    httpx2.put(f"{s3}/exported/a.txt", content=b"a", headers={"traceparent": f"00-{trace_id}-b7ad6b7169203331-01"})
    otlp = httpx2.get(f"{s3}/__mockpanel/traces/{trace_id}", params={"format": "otlp"}).json()

    def as_protobuf_json(node):  # OTLP/JSON writes ids as hex; the protobuf JSON mapping wants bytes as base64
        if isinstance(node, dict):
            return {k: base64.b64encode(bytes.fromhex(v)).decode() if k in ("traceId", "spanId", "parentSpanId") else as_protobuf_json(v)
                    for k, v in node.items()}
        return [as_protobuf_json(v) for v in node] if isinstance(node, list) else node

    data = json_format.ParseDict(as_protobuf_json(otlp), TracesData())  # unknown or mistyped fields would raise
    resource, = data.resource_spans
    assert resource.resource.attributes[0].value.string_value == "mockpanel-s3"
    failed, stored = resource.scope_spans[0].spans
    assert failed.trace_id.hex() == trace_id and failed.parent_span_id.hex() == "b7ad6b7169203331"
    assert failed.status.code == 2 and stored.status.code == 1 and failed.name == "PUT /exported/a.txt"
    assert {a.key: a.value.string_value for a in failed.attributes}["mockpanel.fault"] == "fail_next:503"

    har = httpx2.get(f"{s3}/__mockpanel/traces/{trace_id}", params={"format": "har"}).json()
    assert [e["response"]["status"] for e in har["log"]["entries"]] == [503, 200]


def test_the_span_store_keeps_the_newest_and_finds_them_by_trace():
    from mockpanel.otlp import ExternalSpan, SpanStore

    def span(trace: str, n: int) -> ExternalSpan:
        return ExternalSpan(trace * 32, f"{n:016x}", None, "orders", f"step {n}", "internal", float(n), n + 0.5, False)

    store = SpanStore(maxlen=3)
    store.add([span("a", 1), span("b", 2), span("a", 3)])
    store.add([span("b", 4), span("a", 5)])  # 1 and 2 go, the oldest
    assert len(store) == 3
    assert [s.name for s in store.of("a" * 32)] == ["step 3", "step 5"]
    assert [s.name for s in store.of("b" * 32)] == ["step 4"]
    store.add([span("c", 6), span("c", 7)])
    assert store.of("b" * 32) == [] and "b" * 32 not in store.by_trace  # nothing left of b: its index entry goes too
    store.clear()
    assert len(store) == 0 and store.of("c" * 32) == []
