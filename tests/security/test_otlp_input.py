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

