"""The shared middleware's hot path: what it must not do to every request."""

from __future__ import annotations

import gc


from mockpanel.testing import settings_for
from mockpanel.hub import Hub
from mockpanel.servers import SERVERS


async def _asgi_get(app, path: str = "/health", headers=None) -> int:
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
        "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
        "headers": headers or [(b"host", b"test")], "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 8000),
    }
    sent = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    await app(scope, receive, send)
    return sent[0]["status"]


async def test_a_request_leaves_no_reference_cycles():
    """A cycle per request would leave every request's objects to the garbage collector (it cost 10% throughput)."""
    hub = Hub(settings_for(["auth"]), SERVERS)
    app = hub["auth"].app
    for headers in ([(b"host", b"localhost")], [(b"host", b"localhost"), (b"origin", b"http://x.test")]):
        for _ in range(20):
            await _asgi_get(app, headers=headers)
        gc.collect()
        gc.disable()
        try:
            for _ in range(50):
                assert await _asgi_get(app, headers=headers) == 200
            assert gc.collect() == 0
        finally:
            gc.enable()


def test_journal_entries_over_real_http_carry_headers_and_client(client):
    client.get("/health", headers={"X-Trace": "abc"})
    entry = client.get("/__mockpanel/requests").json()["requests"][-1]
    assert ["x-trace", "abc"] in entry["request_headers"]
    assert entry["client"].startswith("127.0.0.1:")
    assert ["content-type", "application/json"] in entry["response_headers"]


def test_cors_request_is_journaled_once(client):
    r = client.get("/health", headers={"Origin": "http://app.test"})
    assert r.headers["access-control-allow-origin"] == "*"
    entries = client.get("/__mockpanel/requests").json()["requests"]
    assert len(entries) == 1 and entries[0]["status"] == 200
    assert ["origin", "http://app.test"] in entries[0]["request_headers"]


def test_injected_faults_carry_cors_headers_so_browsers_see_them(client):
    client.patch("/__mockpanel/faults", json={"fail_next": 1, "fail_next_code": 503})
    r = client.get("/health", headers={"Origin": "http://app.test"})
    assert r.status_code == 503 and r.headers["access-control-allow-origin"] == "*"


def test_simulate_error_with_a_non_ascii_digit_is_a_400(auth_url):
    import httpx2

    r = httpx2.get(f"{auth_url}/health", params={"simulate_error": "5²3"})
    assert r.status_code == 400 and "simulate_error must be an HTTP error status" in r.json()["detail"]
    r = httpx2.get(f"{auth_url}/health", params={"simulate_error": "²"})
    assert r.status_code == 400
