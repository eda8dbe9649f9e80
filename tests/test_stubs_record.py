"""Record a real service (a local upstream this test starts), then replay it with the upstream stopped; credentials
never reach the recorded files; a request nothing matches is a 404 with its near misses; whatever a request's
path says, recording talks to the configured upstream only."""

from __future__ import annotations

import http.server
import json
import socket
from pathlib import Path

import httpx2

from conftest import http_server
from mockpanel.testing import RunningHub, settings_for

BIG = json.dumps({"items": [{"id": i, "name": f"item {i}"} for i in range(300)]}).encode()


class _Partner(http.server.BaseHTTPRequestHandler):
    """A partner API: GET /api/v1/items (an access token in its answer), GET /api/v1/big, POST /api/v1/items."""

    protocol_version = "HTTP/1.1"

    def _answer(self, status: int, body: bytes, extra: dict | None = None) -> None:
        self.server.seen.append((self.command, self.path, dict(self.headers)))
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path.startswith("/api/v1/big"):
            self._answer(200, BIG)
        else:
            self._answer(200, json.dumps({"items": [1, 2], "access_token": "upstream-token-123"}).encode(),
                         {"set-cookie": "session=upstream-session-456", "x-partner": "yes"})

    def do_POST(self):
        length = int(self.headers.get("content-length", 0))
        body = json.loads(self.rfile.read(length))
        self._answer(201, json.dumps({"created": body["name"]}).encode())

    def log_message(self, *args):
        pass


def partner():
    return http_server(_Partner, seen=[])


def config_for(tmp_path: Path, upstream: str, mode: str | None = None) -> Path:
    config = tmp_path / "mockpanel.toml"
    config.write_text(f'[stubs.partner]\nrecord = "{upstream}"\nmappings = "recorded/mappings"\n' + (f'mode = "{mode}"\n' if mode else ""))
    return config


def exchanges(url: str) -> list[tuple[int, bytes]]:
    with httpx2.Client(base_url=url) as client:
        return [
            (r.status_code, r.content) for r in (
                client.get("/v1/items", params={"page": "1", "api_key": "secret-key-789"}, headers={"authorization": "Bearer user-secret-000"}),
                client.get("/v1/big"),
                client.post("/v1/items", json={"name": "widget", "password": "hunter2"}),
            )
        ]


def test_record_then_replay_with_the_upstream_stopped(tmp_path):
    with partner() as upstream:
        base = f"http://127.0.0.1:{upstream.server_address[1]}/api"
        with RunningHub(settings_for(["partner"], config=config_for(tmp_path, base))) as running:
            url = running.urls["partner"]
            recorded = exchanges(url)
            assert [status for status, _ in recorded] == [200, 200, 201]
            assert [(m, p) for m, p, _ in upstream.seen] == [("GET", "/api/v1/items?page=1&api_key=secret-key-789"),
                                                             ("GET", "/api/v1/big"), ("POST", "/api/v1/items")]
            assert upstream.seen[0][2]["authorization"] == "Bearer user-secret-000"  # the real service got what was sent
            assert httpx2.get(f"{url}/__admin/recordings/status").json() == {"status": "Recording"}
            stopped = httpx2.post(f"{url}/__admin/recordings/stop").json()
            assert len(stopped["mappings"]) == 3

    written = "".join(p.read_text() for p in sorted((tmp_path / "recorded").rglob("*")) if p.is_file())
    for secret in ("secret-key-789", "user-secret-000", "hunter2", "upstream-token-123", "upstream-session-456"):
        assert secret not in written
    assert len(list((tmp_path / "recorded" / "mappings").glob("*.json"))) == 3
    big_files = list((tmp_path / "recorded" / "__files").iterdir())
    assert len(big_files) == 1 and big_files[0].read_bytes() == BIG  # a body over the bound goes to __files

    # The upstream is gone; a fresh start in replay answers from the files alone
    with RunningHub(settings_for(["partner"], config=config_for(tmp_path, base, "replay"))) as running:
        url = running.urls["partner"]
        replayed = exchanges(url)
        assert [status for status, _ in replayed] == [200, 200, 201]
        assert replayed[1][1] == BIG
        assert json.loads(replayed[0][1]) == {"items": [1, 2], "access_token": "***"}
        assert json.loads(replayed[2][1]) == {"created": "widget"}
        # Any key value matches a recorded key parameter; another page does not
        assert httpx2.get(f"{url}/v1/items", params={"page": "1", "api_key": "another"}).status_code == 200
        miss = httpx2.get(f"{url}/v1/items", params={"page": "2", "api_key": "k"})
        assert miss.status_code == 404
        near = miss.json()["nearMisses"][0]
        assert near["mapping"] == "GET /api/v1/items" or near["mapping"].startswith("GET /v1/items")
        assert "query parameter page: expected {\"equalTo\": \"1\"}, got 2" in near["differences"]
        assert httpx2.post(f"{url}/v1/items", json={"name": "gadget", "password": "x"}).status_code == 404
        # Switching to record needs the upstream: it is down, so the client is told so, and nothing is recorded
        httpx2.post(f"{url}/__admin/recordings/start", json={}).raise_for_status()
        down = httpx2.get(f"{url}/v1/items")
        assert down.status_code == 502 and "did not answer" in down.json()["detail"]
        assert len(list((tmp_path / "recorded" / "mappings").glob("*.json"))) == 3


def test_recording_goes_to_the_configured_upstream_whatever_the_request_says(tmp_path):
    with partner() as upstream:
        base = f"http://127.0.0.1:{upstream.server_address[1]}/api"
        with RunningHub(settings_for(["partner"], config=config_for(tmp_path, base))) as running:
            url = running.urls["partner"]
            port = int(url.rsplit(":", 1)[1])
            for target in (b"//evil.example/steal", b"http://evil.example/steal", b"/..%2f..%2fadmin"):
                with socket.create_connection(("127.0.0.1", port)) as sock:
                    sock.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                    answer = b""
                    while chunk := sock.recv(65536):
                        answer += chunk
                assert answer.startswith(b"HTTP/1.1 200")
            assert all(path.startswith("/api/") for _, path, _ in upstream.seen)
            assert len(upstream.seen) == 3
            # The admin API will not point the recording elsewhere either
            moved = httpx2.post(f"{url}/__admin/recordings/start", json={"targetBaseUrl": "http://evil.example"})
            assert moved.status_code == 400 and "records only its configured upstream" in moved.json()["detail"]
            forged = httpx2.post(f"{url}/__admin/mappings", json={"request": {"url": "/x"}, "response": {"proxyBaseUrl": "http://169.254.169.254"}})
            assert forged.status_code == 422 and "proxies go only to this stub server's record upstream" in forged.json()["detail"]

            # Replaying, a mapping may still send some requests on to the upstream (and change their headers)
            httpx2.post(f"{url}/__admin/recordings/stop").raise_for_status()
            httpx2.post(f"{url}/__admin/mappings", json={"request": {"urlPathPattern": "/v1/live/.*"}, "response": {
                "proxyBaseUrl": base, "additionalProxyRequestHeaders": {"X-Added": "by-stub"},
                "removeProxyRequestHeaders": ["X-Private"]}}).raise_for_status()
            assert httpx2.get(f"{url}/v1/live/1", headers={"X-Private": "no", "X-Kept": "yes"}).json()["access_token"] == "upstream-token-123"
            _, path, sent = upstream.seen[-1]
            headers = {k.lower(): v for k, v in sent.items()}
            assert path == "/api/v1/live/1" and headers.get("x-added") == "by-stub" and headers.get("x-kept") == "yes"
            assert "x-private" not in headers
            assert "cookie" not in headers  # the upstream's Set-Cookie while recording was not kept to send again


class _Order(http.server.BaseHTTPRequestHandler):
    """An order whose status moves on: pending, pending, paid, paid…"""

    protocol_version = "HTTP/1.1"

    def do_GET(self):
        self.server.calls += 1
        body = json.dumps({"order": 1, "status": "pending" if self.server.calls <= 2 else "paid"}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_a_request_recorded_again_with_another_answer_replays_in_order(tmp_path):
    with http_server(_Order, calls=0) as server:
        config = config_for(tmp_path, f"http://127.0.0.1:{server.server_address[1]}")
        with RunningHub(settings_for(["partner"], config=config)) as running:
            url = running.urls["partner"]
            recorded = [httpx2.get(f"{url}/orders/1").json()["status"] for _ in range(4)]
            assert recorded == ["pending", "pending", "paid", "paid"]
    files = [json.loads(p.read_text()) for p in sorted((tmp_path / "recorded" / "mappings").glob("*.json"))]
    assert len(files) == 2  # an identical answer again adds nothing; another one continues a scenario
    assert {f["requiredScenarioState"] for f in files} == {"Started", "recorded GET /orders/1 #2"}
    with RunningHub(settings_for(["partner"], config=config_for(tmp_path, "http://127.0.0.1:9", "replay"))) as running:
        url = running.urls["partner"]
        assert [httpx2.get(f"{url}/orders/1").json()["status"] for _ in range(3)] == ["pending", "paid", "paid"]
        httpx2.post(f"{url}/__admin/scenarios/reset").raise_for_status()
        assert httpx2.get(f"{url}/orders/1").json()["status"] == "pending"
