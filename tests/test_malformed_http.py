"""Malformed HTTP on one server — slow heads, huge heads, garbage, bodies over the limit — gets a clear answer
(or a closed connection) and stalls no server, the attacked one included."""

from __future__ import annotations

import socket
import threading

import httpx2
import pytest

from mockpanel.runner import MAX_HEAD_BYTES
from mockpanel.testing import RunningHub, settings_for


@pytest.fixture(scope="module")
def hub():
    with RunningHub(settings_for(["auth", "s3", "webhooks"])) as running:
        yield running


def address(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    return host, int(port)


def raw(url: str, data: bytes, read: bool = True) -> bytes:
    with socket.create_connection(address(url), timeout=10) as s:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
        if not read:
            return b""
        chunks = []
        try:
            while chunk := s.recv(65536):
                chunks.append(chunk)
        except (ConnectionResetError, socket.timeout):
            pass
        return b"".join(chunks)


def everyone_answers(hub) -> None:
    with httpx2.Client(timeout=5) as client:
        assert client.get(hub.urls["auth"] + "/health").status_code == 200
        assert client.get(hub.urls["webhooks"] + "/health").status_code == 200
        assert client.put(hub.urls["s3"] + "/alive/k", content=b"x").status_code == 200


def test_slow_heads_on_one_server_stall_nobody(hub):
    url = hub.urls["s3"]
    slow = [socket.create_connection(address(url), timeout=10) for _ in range(200)]
    try:
        for s in slow:
            s.sendall(b"GET /alive/k HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")  # and never finish the head
        everyone_answers(hub)
        for s in slow[:50]:
            s.sendall(b"still-coming")
        everyone_answers(hub)
    finally:
        for s in slow:
            s.close()
    everyone_answers(hub)


def test_a_head_that_keeps_growing_gets_431_in_the_servers_format(hub):
    for name, marker in (("s3", b"<Code>RequestHeaderSectionTooLarge</Code>"), ("auth", b'{"detail":')):
        with socket.create_connection(address(hub.urls[name]), timeout=10) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n")
            answer = b""
            try:
                for _ in range(64):  # 64 x 8 KiB, sent as a slow client would
                    s.sendall(b"X-Pad: " + b"a" * 8185 + b"\r\n")
            except (BrokenPipeError, ConnectionResetError):
                pass
            try:
                while chunk := s.recv(65536):
                    answer += chunk
            except ConnectionResetError:
                pass
        assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
        assert marker in answer and b"exceed %d bytes" % MAX_HEAD_BYTES in answer
        # the same head in one piece: parsed at once, refused all the same
        whole = raw(hub.urls[name], b"GET /x HTTP/1.1\r\nHost: localhost\r\nX-Pad: " + b"a" * 100_000 + b"\r\n\r\n")
        assert whole.startswith(b"HTTP/1.1 431 ") and marker in whole, whole[:200]
    everyone_answers(hub)


def test_garbage_and_lies_get_4xx_not_5xx(hub):
    auth = hub.urls["auth"]
    assert raw(auth, b"NOT HTTP AT ALL\r\n\r\n").startswith(b"HTTP/1.1 400 ")
    assert raw(auth, b"GET / HTTP/1.1\r\nHost: localhost\r\nContent-Length: -5\r\n\r\n").startswith(b"HTTP/1.1 400 ")
    # a declared body over the limit is refused before it is read, in the server's format
    over = raw(auth, b"POST /api/auth/login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 50000000\r\n\r\n{")
    assert over.startswith(b"HTTP/1.1 413 ") and b'"detail"' in over
    # a chunked body that grows past the limit is cut off with 413
    chunk = b"%x\r\n%s\r\n" % (256 * 1024, b"a" * 256 * 1024)
    big = raw(auth, b"POST /api/auth/login HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk * 8 + b"0\r\n\r\n")
    assert big.startswith(b"HTTP/1.1 413 "), big[:200]
    s3_over = raw(hub.urls["s3"], b"PUT /alive/k HTTP/1.1\r\nHost: localhost\r\nContent-Length: 99999999999999\r\n\r\n")
    assert s3_over.startswith(b"HTTP/1.1 4") and b"<Error><Code>" in s3_over, s3_over[:300]
    everyone_answers(hub)


def test_clients_that_vanish_mid_body_leave_nothing_behind(hub):
    s3 = hub.urls["s3"]
    httpx2.put(s3 + "/alive/whole", content=b"whole").raise_for_status()

    def vanish() -> None:
        raw(s3, b"PUT /alive/whole HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1000000\r\n\r\n" + b"p" * 300_000, read=False)

    threads = [threading.Thread(target=vanish) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert httpx2.get(s3 + "/alive/whole").content == b"whole"  # no torn object
    everyone_answers(hub)


def test_two_host_headers_a_host_that_is_not_a_host_and_forwarded_headers_from_anyone(hub):
    auth = hub.urls["auth"]
    port = address(auth)[1]
    twice = raw(auth, f"GET /.well-known/openid-configuration HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nHost: evil.example\r\n"
                      "Connection: close\r\n\r\n".encode())
    assert twice.startswith(b"HTTP/1.1 400") and b"one Host header" in twice and b"evil.example" not in twice
    for host in ("evil.example/x.localhost", "evil.example?.localhost", "a b.localhost", "evil.example#.localhost"):
        r = httpx2.get(f"{auth}/.well-known/openid-configuration", headers={"Host": host})
        assert r.status_code == 403 and "evil" not in r.text.split("is not allowed")[1], host
    # X-Forwarded-Proto from a local process is not believed unless trusted_proxies says so
    config = httpx2.get(f"{auth}/.well-known/openid-configuration", headers={"X-Forwarded-Proto": "https"}).json()
    assert config["issuer"] == auth
    with RunningHub(settings_for(["auth"], environ={"MOCKPANEL_TRUSTED_PROXIES": "127.0.0.1"})) as proxied:
        url = proxied.urls["auth"]
        config = httpx2.get(f"{url}/.well-known/openid-configuration", headers={"X-Forwarded-Proto": "https"}).json()
        assert config["issuer"] == url.replace("http://", "https://")
