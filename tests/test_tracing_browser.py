"""One upload from the client page in Chromium, against `mockpanel serve --demo`, is one trace with every hop —
the page's upload, the image API, the S3 PUTs, the webhook — in order and with the parent links right."""

from __future__ import annotations

import httpx2
from conftest import ServeProcess, upload_from_page

SERVERS = ("auth", "s3", "webhooks", "client", "imageapi")


def test_a_page_upload_under_demo_is_one_trace(page, tmp_path):
    ports = [arg for name in SERVERS for arg in (f"--{name}-port", "0")]
    with ServeProcess("--demo", *ports) as serve:
        urls = serve.urls(len(SERVERS))
        upload_from_page(page, urls["client"], tmp_path / "trace.png", (400, 300), (30, 160, 220))

        listed = httpx2.get(f"{urls['auth']}/__mockpanel/traces", params={"limit": 1000}).json()["traces"]
        upload, = [t for t in listed if t["root"] == "client POST /api/upload"]
        trace = httpx2.get(f"{urls['auth']}/__mockpanel/traces/{upload['trace_id']}").json()
        assert serve.stop() == 0

    hops = trace["hops"]
    assert [h["server"] for h in hops] == ["client", "imageapi", "s3", "s3", "s3", "s3", "webhooks"]
    root, api, *puts, hook = hops
    assert root["parent_span_id"] is None and root["path"] == "/api/upload"  # the page sent no traceparent: a new trace
    assert api["parent_span_id"] == root["span_id"] and api["path"] == "/api/v1/images/upload"
    assert all(p["method"] == "PUT" and p["parent_span_id"] == api["span_id"] for p in puts)
    assert hook["parent_span_id"] == api["span_id"] and hook["path"] == "/webhooks/image-api"
    assert trace["servers"] == ["client", "imageapi", "s3", "webhooks"] and trace["errors"] == 0
