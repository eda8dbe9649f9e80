"""The OTLP receiver takes what any exporter may send, and nothing that could end the panel or grow without bound:
times a clock cannot show are refused, every stored field is cut, the span store is bounded in bytes."""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import time
from pathlib import Path

import httpx2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import ServeProcess, Terminal
from mockpanel.testing import RunningHub, settings_for

TRACE, SPAN = "5b8efff798038103d269b633813fc60c", "eee19b7ec3c1b174"


def export(service: str = "orders", **span) -> dict:
    fields = {"traceId": TRACE, "spanId": SPAN, "name": "charge", "startTimeUnixNano": "1700000000000000000",
              "endTimeUnixNano": "1700000000250000000", "status": {}, **span}
    return {"resourceSpans": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
                               "scopeSpans": [{"spans": [fields]}]}]}


@pytest.fixture(scope="module")
def serve_otlp():
    """A `mockpanel serve` of its own, so its watchdog measures the receiver's loop and not this test process's."""
    with ServeProcess("--only", "auth", "--auth-port", "0", "--quiet") as serve:
        auth = serve.urls(1)["auth"]
        with httpx2.Client(timeout=60) as client:
            yield f"{auth}/__mockpanel/v1/traces", client
        loop = serve.loop_stalls(auth)
        assert loop["stalls"] == 0, loop  # nothing any test here sent held the servers' loop 250 ms


@pytest.mark.skipif(shutil.which("tmux") is None and not os.environ.get("CI"), reason="needs tmux (apt-get install tmux)")
def test_a_span_time_no_clock_can_show_is_refused_and_the_panel_lives(tmp_path):
    mockpanel = Path(sys.executable).parent / "mockpanel"
    with Terminal("otlp", 120, 36) as term:
        term.send(f"cd {tmp_path} && {mockpanel} --only auth --auth-port 0", "Enter")
        text = term.wait_for(lambda s: re.search(r"auth\s+http://127\.0\.0\.1:\d+\s+running", s), "the Servers pane")
        auth = "http://127.0.0.1:" + re.search(r"auth\s+http://127\.0\.0\.1:(\d+)", text).group(1)
        url = f"{auth}/__mockpanel/v1/traces"
        # the user's service called the mock within the trace it then exports
        assert httpx2.get(f"{auth}/health", headers={"traceparent": f"00-{TRACE}-{SPAN}-01"}).status_code == 200
        hostile = httpx2.post(url, json=export(startTimeUnixNano="-17" + "0" * 307))
        assert hostile.status_code == 400 and "startTimeUnixNano" in hostile.json()["message"]
        # the latest time OTLP can carry (year 2554) is accepted: the pane shows it
        edge = httpx2.post(url, json=export(service="far-future", startTimeUnixNano=str(2**64 - 1), endTimeUnixNano=str(2**64 - 1)))
        assert edge.status_code == 200
        term.send("8")
        term.wait_for(lambda s: "far-future: charge" in s and "1 trace " in s, "the span in the Traces pane")
        term.send("q")
        term.wait_for(lambda s: "Servers" not in s, "the panel to quit as asked (not before)")


def test_every_stored_field_is_cut_and_the_store_is_bounded_in_bytes():
    from mockpanel.otlp import MAX_VALUE, SpanStore, parse

    huge = "k" * 1_000_000
    body = json.dumps(export(kind=huge, name=huge, attributes=[{"key": huge, "value": {"stringValue": huge}}])).encode()
    (span,), rejected = parse(body, "application/json")
    assert len(span.kind) <= MAX_VALUE and len(span.name) <= MAX_VALUE
    assert all(len(k) <= MAX_VALUE and len(v) <= MAX_VALUE for k, v in span.attributes.items())

    store = SpanStore(maxlen=1_000_000, max_bytes=200_000)
    for i in range(2_000):
        (one,), _ = parse(json.dumps(export(spanId=f"{i:016x}", name="n" * 300,
                                       attributes=[{"key": f"a{j}", "value": {"stringValue": "v" * 300}} for j in range(32)])).encode(),
                     "application/json")
        store.add([one])
    assert store.bytes <= 200_000 and 0 < len(store) < 2_000
    assert store.spans[-1][0].span_id == f"{1999:016x}"  # the newest kept, the oldest gone
    assert sum(len(v) for v in store.by_trace.values()) == len(store)


def test_deep_json_spans_over_the_cap_and_a_missing_status(serve_otlp):
    url, client = serve_otlp
    deep = b'{"resourceSpans": ' + b"[" * 3000 + b"]" * 3000 + b"}"
    r = client.post(url, content=deep, headers={"content-type": "application/json"})
    assert r.status_code == 400 and "deep" in r.json()["message"]
    no_status = export()
    del no_status["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["status"]  # proto3 JSON: a default left out
    assert client.post(url, json=no_status).status_code == 200

    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest, ExportTraceServiceResponse

    many = ExportTraceServiceRequest()
    spans = many.resource_spans.add().scope_spans.add().spans
    for i in range(6_000):
        span = spans.add()
        span.trace_id, span.span_id, span.name = bytes.fromhex(TRACE), i.to_bytes(8, "big"), "s"
    r = client.post(url, content=many.SerializeToString(), headers={"content-type": "application/x-protobuf"})
    answer = ExportTraceServiceResponse.FromString(r.content)
    assert r.status_code == 200 and answer.partial_success.rejected_spans == 1_000
    r = client.post(url, content=json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [
        {"traceId": TRACE, "spanId": f"{i:016x}"} for i in range(5_002)]}]}]}), headers={"content-type": "application/json"})
    assert r.json()["partialSuccess"]["rejectedSpans"] == "2"


def test_a_4_mib_export_of_130k_spans_decodes_off_the_loop(serve_otlp):
    """One export of 130,000 tiny spans stalled every server 770 ms when decoded on the loop."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest, ExportTraceServiceResponse

    url, client = serve_otlp
    flood = ExportTraceServiceRequest()
    spans = flood.resource_spans.add().scope_spans.add().spans
    for i in range(130_000):
        span = spans.add()
        span.trace_id, span.span_id = bytes.fromhex(TRACE), i.to_bytes(8, "big")
    body = flood.SerializeToString()
    assert 3_500_000 < len(body) <= 4 * 1024 * 1024
    for _ in range(3):
        r = client.post(url, content=body, headers={"content-type": "application/x-protobuf"})
        assert r.status_code == 200 and ExportTraceServiceResponse.FromString(r.content).partial_success.rejected_spans == 125_000


def test_the_watchdog_names_an_otlp_export_that_holds_the_loop():
    with RunningHub(settings_for(["auth"])) as running:
        url = running.urls["auth"]
        httpx2.get(f"{url}/health")
        assert httpx2.post(f"{url}/__mockpanel/v1/traces", json=export()).status_code == 200
        running.run(lambda: time.sleep(0.6))  # as a decode on the loop would
        deadline = time.monotonic() + 10
        while not running.run(lambda: list(running.hub.watchdog.stalls)) and time.monotonic() < deadline:
            time.sleep(0.05)
        stall = running.run(lambda: running.hub.watchdog.stalls[-1])
        assert (stall.server, stall.request) == ("auth", "POST /__mockpanel/v1/traces")


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=20)
span_fields = st.fixed_dictionaries({}, optional={
    "traceId": st.one_of(st.just(TRACE), st.text(max_size=40), json_values), "spanId": st.one_of(st.just(SPAN), st.text(max_size=20), json_values),
    "parentSpanId": st.one_of(st.just(""), st.text(max_size=20), json_values), "name": json_values,
    "kind": st.one_of(st.integers(-5, 10), st.sampled_from(["SPAN_KIND_SERVER", "x"]), json_values),
    "startTimeUnixNano": st.one_of(st.integers(-(2**70), 2**70).map(str), st.integers(-(2**70), 2**70), json_values),
    "endTimeUnixNano": st.one_of(st.integers(0, 2**64).map(str), json_values),
    "status": st.one_of(st.none(), st.fixed_dictionaries({}, optional={"code": json_values}), json_values),
    "attributes": st.one_of(st.lists(st.fixed_dictionaries({"key": json_values, "value": json_values}), max_size=4), json_values),
})
exports = st.one_of(
    json_values,
    st.builds(lambda spans, service: {"resourceSpans": [{"resource": {"attributes": [{"key": "service.name", "value": service}]},
                                                         "scopeSpans": [{"spans": spans}]}]}, st.lists(span_fields, max_size=5), json_values),
)
FUZZ = settings(max_examples=400 if os.environ.get("CI") else 150, deadline=None, derandomize=bool(os.environ.get("CI")),
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def otlp_answer(r: httpx2.Response) -> None:
    """Accepted, or refused with OTLP's JSON error ({"code": 3, "message": ...}): never a 500."""
    assert r.status_code in (200, 400), (r.status_code, r.text[:300])
    if r.status_code == 400:
        assert r.json()["code"] == 3 and r.json()["message"]


@FUZZ
@given(body=exports)
def test_fuzz_otlp_json(serve_otlp, body):
    url, client = serve_otlp
    otlp_answer(client.post(url, content=json.dumps(body), headers={"content-type": "application/json"}))


@FUZZ
@given(cut=st.integers(0, 400), flips=st.lists(st.tuples(st.integers(0, 399), st.integers(0, 255)), max_size=8), junk=st.binary(max_size=64))
def test_fuzz_otlp_protobuf(serve_otlp, cut, flips, junk):
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    request = ExportTraceServiceRequest()
    resource = request.resource_spans.add()
    resource.resource.attributes.add(key="service.name").value.string_value = "fuzz"
    for i in range(3):
        span = resource.scope_spans.add().spans.add()
        span.trace_id, span.span_id, span.name = bytes.fromhex(TRACE), bytes([i + 1]) * 8, "op"
        span.start_time_unix_nano, span.end_time_unix_nano = 1_700_000_000_000_000_000, 1_700_000_000_100_000_000
        span.attributes.add(key="k").value.kvlist_value.values.add(key="nested").value.int_value = i
    body = bytearray(request.SerializeToString())
    for at, value in flips:
        if body:
            body[at % len(body)] = value
    url, client = serve_otlp
    otlp_answer(client.post(url, content=bytes(body[:cut]) + junk, headers={"content-type": "application/x-protobuf"}))
