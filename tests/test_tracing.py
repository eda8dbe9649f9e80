"""W3C trace context across the mocks: each request is a span of its caller's trace (or of a new one), the calls the
mocks make carry the trace on, and /__mockpanel/traces (and the plugin's trace()) put one upload's hops together —
client app, image API, the S3 PUTs, the webhook — with the parent links right, and show an injected fault on its hop."""

from __future__ import annotations

import io
import time

import httpx2
import pytest
from PIL import Image

from conftest import wait_for_job
from mockpanel.testing import Mocks, settings_for
from mockpanel.tracing import parse_traceparent

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"


@pytest.mark.parametrize("header, parsed", [
    (f"00-{TRACE}-{PARENT}-01", (TRACE, PARENT)),
    (f"00-{TRACE}-{PARENT}-00", (TRACE, PARENT)),  # not sampled: still the same trace
    (f"cc-{TRACE}-{PARENT}-01-later-fields", (TRACE, PARENT)),  # a future version may append fields
    (f"00-{TRACE}-{PARENT}-01-extra", None),  # version 00 is exactly 55 characters
    (f"00-{'0' * 32}-{PARENT}-01", None),  # all-zero ids are invalid
    (f"00-{TRACE}-{'0' * 16}-01", None),
    (f"00-{TRACE.upper()}-{PARENT}-01", None),  # lowercase hex only
    (f"ff-{TRACE}-{PARENT}-01", None),  # version ff is forbidden
    ("garbage", None), ("", None),
])
def test_traceparent_is_parsed_as_the_spec_says(header, parsed):
    assert parse_traceparent(header.encode()) == parsed


def png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (300, 200), (20, 120, 200)).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def mocks():
    with Mocks(settings_for(["auth", "s3", "webhooks", "client", "imageapi"], {"imageapi": {"enabled": "true"}})) as running:
        yield running


@pytest.fixture(autouse=True)
def clean(mocks):
    mocks.reset()




def test_a_request_joins_its_callers_trace_or_starts_one(mocks):
    auth = mocks.url("auth")
    httpx2.get(f"{auth}/health", headers={"traceparent": f"00-{TRACE}-{PARENT}-01", "tracestate": "vendor=1"})
    httpx2.get(f"{auth}/health", headers={"traceparent": "00-broken"})
    joined, fresh = mocks.requests("auth", path="/health")
    assert (joined.trace_id, joined.parent_id) == (TRACE, PARENT) and len(joined.span_id) == 16
    assert fresh.trace_id not in (None, TRACE) and len(fresh.trace_id) == 32 and fresh.parent_id is None
    entry = httpx2.get(f"{auth}/__mockpanel/requests").json()["requests"][0]
    assert (entry["trace_id"], entry["parent_span_id"]) == (TRACE, PARENT)


def test_one_upload_is_one_trace_across_every_service(mocks):
    client = mocks.url("client")
    answer = httpx2.post(f"{client}/api/upload", files={"file": ("a.png", png(), "image/png")}, data={"user_id": "tracer"},
                        headers={"traceparent": f"00-{TRACE}-{PARENT}-01"})
    assert answer.status_code == 202, answer.text
    assert wait_for_job(client, answer.json()["job_id"])["status"] == "completed"

    hops = mocks.trace(answer.json()["request_id"])  # by the X-Request-ID the client app sent on
    assert {hop.trace_id for hop in hops} == {TRACE}
    by_server = {}
    for hop in hops:
        by_server.setdefault(hop.server, []).append(hop)
    upload, = by_server["client"][:1]
    assert (upload.path, upload.parent_id) == ("/api/upload", PARENT)  # the caller's span is the root's parent
    api, = by_server["imageapi"]
    assert api.path == "/api/v1/images/upload" and api.parent_id == upload.span_id
    assert len(by_server["s3"]) == 4 and all(h.method == "PUT" and h.parent_id == api.span_id for h in by_server["s3"])
    hook, = by_server["webhooks"]
    assert hook.path == "/webhooks/image-api" and hook.parent_id == api.span_id
    assert [h.server for h in hops][:2] == ["client", "imageapi"] and hops.index(hook) > max(hops.index(h) for h in by_server["s3"])

    found = httpx2.get(f"{client}/__mockpanel/traces/{TRACE}").json()
    assert found["root"] == "client POST /api/upload" and found["servers"] == ["client", "imageapi", "s3", "webhooks"]
    assert found["errors"] == 0 and [h["span_id"] for h in found["hops"]] == [h.span_id for h in hops]
    listed = httpx2.get(f"{mocks.url('auth')}/__mockpanel/traces").json()["traces"]  # the status polls are traces of their own
    assert [t["requests"] for t in listed if t["trace_id"] == TRACE] == [len(hops)]


def test_a_tracestate_the_mocks_cannot_send_on_is_dropped_not_a_500(mocks):
    # HTTP allows bytes above 0x7f in a header; the client app's call to the image API could not carry them on.
    client = mocks.url("client")
    for tracestate in (b"vendor=caf\xe9", b"vendor=1"):
        answer = httpx2.post(f"{client}/api/upload", files={"file": ("a.png", png(), "image/png")}, data={"user_id": "tracer"},
                            headers={"traceparent": f"00-{TRACE}-{PARENT}-01", "tracestate": tracestate})
        assert answer.status_code == 202, answer.text
        assert wait_for_job(client, answer.json()["job_id"])["status"] == "completed"
    hops = mocks.trace(TRACE)
    assert {hop.server for hop in hops} == {"client", "imageapi", "s3", "webhooks"} and len(hops) == 14


def test_a_fault_in_s3_shows_on_its_hop_and_marks_the_trace_failed(mocks):
    client = mocks.url("client")
    with mocks.faults("s3", fail_next=1, fail_next_code=503):
        answer = httpx2.post(f"{client}/api/upload", files={"file": ("a.png", png(), "image/png")}, data={"user_id": "tracer"})
        assert wait_for_job(client, answer.json()["job_id"])["status"] == "failed"
    trace = httpx2.get(f"{client}/__mockpanel/traces/{answer.json()['request_id']}").json()
    s3 = [h for h in trace["hops"] if h["server"] == "s3"]
    assert s3[0]["status"] == 503 and s3[0]["fault"] == "fail_next:503"
    assert trace["errors"] >= 1 and trace["faults"] == ["fail_next:503"]
    failed = httpx2.get(f"{client}/__mockpanel/traces", params={"errors": "true"}).json()["traces"]
    assert [t["trace_id"] for t in failed] == [trace["trace_id"]]


def test_an_s3_notification_carries_the_puts_trace(mocks):
    s3, webhooks = mocks.url("s3"), mocks.url("webhooks")
    httpx2.put(f"{s3}/traced")
    httpx2.put(f"{s3}/__mockpanel/notifications/traced", json={"url": f"{webhooks}/webhooks/s3-events", "events": ["s3:ObjectCreated:*"]})
    httpx2.put(f"{s3}/traced/report.txt", content=b"hello", headers={"traceparent": f"00-{TRACE}-{PARENT}-01"})
    deadline = time.monotonic() + 10
    while not mocks.requests("webhooks", path="/webhooks/s3-events") and time.monotonic() < deadline:
        time.sleep(0.05)
    put, = [h for h in mocks.trace(TRACE) if h.server == "s3"]
    delivered, = mocks.requests("webhooks", path="/webhooks/s3-events")
    assert (delivered.trace_id, delivered.parent_id) == (TRACE, put.span_id)


def test_an_unknown_trace_is_a_clear_404(mocks):
    missing = httpx2.get(f"{mocks.url('auth')}/__mockpanel/traces/nothing-like-it")
    assert missing.status_code == 404 and "nothing-like-it" in missing.json()["detail"]
