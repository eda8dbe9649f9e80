"""What each pane looks like, at 120x36 and 80x24 (and the Requests split view at 200x50), with fixed data (no clock, port or random id shows)."""

from __future__ import annotations

import calendar
import time

import pytest

from mockpanel.app import create_app
from mockpanel.servers.s3.storage import ObjectMeta
from mockpanel.servers.webhooks import WebhookEvent
from mockpanel.servers.webhooks.signatures import verify
from mockpanel.testing import settings_for
from mockpanel.toxics import parse_toxic

FIXED = calendar.timegm((2026, 1, 15, 10, 30, 0, 0, 0, 0))


@pytest.fixture(autouse=True)
def utc(monkeypatch):
    """Times on screen are local: pin the zone so the snapshots are the same on every machine."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()
SECRETS = {"auth": {"jwt_secret": "snapshot-secret-0123456789abcdef-xyz"}, "s3": {"access_keys": "snap:shot"},
           "webhooks": {"webhook_secret": "snapshot-webhook-secret"}, "client": {"jwt_secret": "snapshot-client-secret-0123456789"},
           "imageapi": {"jwt_secret": "snapshot-client-secret-0123456789"}}


def fixed_app():
    settings = settings_for(["auth", "s3", "webhooks", "client", "imageapi"], SECRETS)
    for number, server in enumerate(settings.servers.values()):
        server.port = 18000 + number
    app = create_app(settings, start_servers=False)
    hub = app.hub
    for number, runner in enumerate(hub.runners.values()):
        runner.status, runner.url = "running", f"http://127.0.0.1:{18000 + number}"
    hub["auth"].ctx.faults.update(delay_enabled=True, min_delay_ms=20, max_delay_ms=80)
    hub["s3"].ctx.faults.update(error_rate=0.3, error_codes=[503])
    requests = [("auth", "POST", "/api/auth/login", 200, 3.2, None), ("auth", "GET", "/api/auth/me", 401, 0.8, None),
                ("s3", "PUT", "/photos/cat.jpg", 200, 1.9, None), ("s3", "GET", "/photos/cat.jpg", 503, 0.3, "error_rate:503"),
                ("webhooks", "POST", "/webhooks/client-123", 200, 1.1, None)]
    for i, (server, method, path, status, ms, fault) in enumerate(requests, 1):
        hub.journal.record((i, FIXED + i, server, method, path, b"", status, ms, 10, 20, ((b"host", b"localhost"),),
                            ((b"content-type", b"application/json"),), b"", b"{}", fault, ("127.0.0.1", 50000 + i), path,
                            f"{i:032x}", f"{i:016x}", None, None))
        hub[server].ctx.stats.record((method, path), status, ms)
    storage = hub.facade("s3")
    bucket = storage.create_bucket("photos", "us-east-1")
    bucket.created = FIXED
    for key, size, kind in (("cat.jpg", 48213, "image/jpeg"), ("docs/readme.txt", 1024, "text/plain")):
        storage.commit(bucket, ObjectMeta(key, size, '"9e107d9d372bb6826bd81d3542a419d6"', FIXED, kind, {"owner": "alice"}, body=b"x"))
    receiver = hub.facade("webhooks")
    body = b'{"event_type": "image.processed", "image_id": "img-1", "status": "completed"}'
    for i, (client, headers) in enumerate((("client-123", {"x-webhook-signature": "0" * 64}), ("test-client", {}))):
        check = verify(headers, body, "snapshot-webhook-secret", "WEBHOOK_SECRET", 300, FIXED)
        receiver.add(WebhookEvent(f"event-{i}", client, FIXED + i, "POST", "", list(headers.items()), body, "127.0.0.1:50100",
                                  "image.processed", check, f"sha256:{i}", 1, None, 200))
    proxy = hub.network.add_proxy("postgres", 15432, "localhost:5432", from_api=False)  # a proxy to a service of the user's
    proxy.status, proxy.stats.connections, proxy.stats.open, proxy.stats.bytes_up, proxy.stats.bytes_down = "running", 12, 2, 4_812, 1_310_720
    proxy.toxics.add(parse_toxic({"type": "latency", "attributes": {"latency": 300, "jitter": 50}}))
    hub["s3"].ctx.toxics.add(parse_toxic({"type": "bandwidth", "attributes": {"rate": 50}}))
    hub.facade("client").remember({"job_id": "job-0001", "image_id": "img-1", "status": "completed", "user_id": "test-user-123",
                                "filename": "sunset.png", "http_status": 202, "uploaded_at": "2026-01-15T10:30:05Z"})
    return app


@pytest.mark.parametrize("size", [(120, 36), (80, 24)], ids=["120x36", "80x24"])
@pytest.mark.parametrize("key", ["1", "2", "3", "4", "5", "6", "7", "9", "0"])
def test_pane_snapshot(snap_compare, key, size):
    assert snap_compare(fixed_app(), press=[key], terminal_size=size)


def test_requests_split_view_snapshot(snap_compare):
    """From 160 columns the highlighted request's detail shows beside the list."""
    assert snap_compare(fixed_app(), press=["2", "up"], terminal_size=(200, 50))


def test_traces_pane_snapshot(snap_compare):
    """The Traces pane with one upload's trace as a waterfall (README's picture): client app, image API, the S3
    PUTs (one failed by an injected fault, then retried by nobody: the job failed), the webhook not reached."""
    app = fixed_app()
    trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    hops = [(10, 0.000, "client", "POST", "/api/upload", 202, 48.0, None, "a1", None),
            (11, 0.012, "imageapi", "POST", "/api/v1/images/upload", 202, 21.5, None, "b2", "a1"),
            (12, 0.050, "s3", "PUT", "/uploads/images/img-1/original-sunset.png", 200, 4.1, None, "c3", "b2"),
            (13, 0.058, "s3", "PUT", "/uploads/images/img-1/thumbnail.png", 200, 2.2, None, "c4", "b2"),
            (14, 0.063, "s3", "PUT", "/uploads/images/img-1/medium.png", 503, 0.4, "error_rate:503", "c5", "b2")]
    for i, start, server, method, path, status, ms, fault, span, parent in hops:
        app.hub.journal.record((i, FIXED + 60 + start, server, method, path, b"", status, ms, 10, 20, ((b"host", b"localhost"),),
                                ((b"content-type", b"application/json"),), b"", b"{}", fault, ("127.0.0.1", 50000 + i), path,
                                trace, span.rjust(16, "0"), parent.rjust(16, "0") if parent else None, None))
    assert snap_compare(app, press=["8"], terminal_size=(160, 30))
