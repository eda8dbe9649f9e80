"""The OTLP receiver takes what any exporter may send, and nothing that could end the panel or grow without bound:
times a clock cannot show are refused, every stored field is cut, the span store is bounded in bytes."""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from pathlib import Path

import httpx
import pytest

from conftest import Terminal

TRACE, SPAN = "5b8efff798038103d269b633813fc60c", "eee19b7ec3c1b174"


def export(service: str = "orders", **span) -> dict:
    fields = {"traceId": TRACE, "spanId": SPAN, "name": "charge", "startTimeUnixNano": "1700000000000000000",
              "endTimeUnixNano": "1700000000250000000", "status": {}, **span}
    return {"resourceSpans": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
                               "scopeSpans": [{"spans": [fields]}]}]}


@pytest.mark.skipif(shutil.which("tmux") is None and not os.environ.get("CI"), reason="needs tmux (apt-get install tmux)")
def test_a_span_time_no_clock_can_show_is_refused_and_the_panel_lives(tmp_path):
    mockpanel = Path(sys.executable).parent / "mockpanel"
    with Terminal("otlp", 120, 36) as term:
        term.send(f"cd {tmp_path} && {mockpanel} --only auth --auth-port 0", "Enter")
        text = term.wait_for(lambda s: re.search(r"auth\s+http://127\.0\.0\.1:\d+\s+running", s), "the Servers pane")
        auth = "http://127.0.0.1:" + re.search(r"auth\s+http://127\.0\.0\.1:(\d+)", text).group(1)
        url = f"{auth}/__mockpanel/v1/traces"
        # the user's service called the mock within the trace it then exports
        assert httpx.get(f"{auth}/health", headers={"traceparent": f"00-{TRACE}-{SPAN}-01"}).status_code == 200
        hostile = httpx.post(url, json=export(startTimeUnixNano="-17" + "0" * 307))
        assert hostile.status_code == 400 and "startTimeUnixNano" in hostile.json()["message"]
        # the latest time OTLP can carry (year 2554) is accepted: the pane shows it
        edge = httpx.post(url, json=export(service="far-future", startTimeUnixNano=str(2**64 - 1), endTimeUnixNano=str(2**64 - 1)))
        assert edge.status_code == 200
        term.send("8")
        term.wait_for(lambda s: "far-future: charge" in s and "1 trace " in s, "the span in the Traces pane")
        term.send("q")
        term.wait_for(lambda s: "Servers" not in s, "the panel to quit as asked (not before)")


def test_every_stored_field_is_cut_and_the_store_is_bounded_in_bytes():
    from mockpanel.otlp import MAX_VALUE, SpanStore, parse

    huge = "k" * 1_000_000
    body = json.dumps(export(kind=huge, name=huge, attributes=[{"key": huge, "value": {"stringValue": huge}}])).encode()
    span, = parse(body, "application/json")
    assert len(span.kind) <= MAX_VALUE and len(span.name) <= MAX_VALUE
    assert all(len(k) <= MAX_VALUE and len(v) <= MAX_VALUE for k, v in span.attributes.items())

    store = SpanStore(maxlen=1_000_000, max_bytes=200_000)
    for i in range(2_000):
        one, = parse(json.dumps(export(spanId=f"{i:016x}", name="n" * 300,
                                       attributes=[{"key": f"a{j}", "value": {"stringValue": "v" * 300}} for j in range(32)])).encode(),
                     "application/json")
        store.add([one])
    assert store.bytes <= 200_000 and 0 < len(store) < 2_000
    assert store.spans[-1][0].span_id == f"{1999:016x}"  # the newest kept, the oldest gone
    assert sum(len(v) for v in store.by_trace.values()) == len(store)
