"""Attached panels' event streams during a flood: one broadcast encodes each batch for every reader, readers are
capped, and one that never reads is dropped (its connection closed) once its budget is full, while a real attached
panel keeps hearing."""

from __future__ import annotations

import socket
import time
from urllib.parse import urlsplit

import httpx2

from mockpanel.panel_api import EVENTS_PATH, MAX_READERS
from mockpanel.testing import RunningHub, settings_for


def _unread_stream(url: str) -> socket.socket:
    """An event stream opened and never read, with a small receive buffer: its socket fills at once."""
    parts = urlsplit(url)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((parts.hostname, parts.port))
    sock.sendall(f"GET {EVENTS_PATH} HTTP/1.1\r\nHost: {parts.netloc}\r\n\r\n".encode())
    return sock


def _closed(sock: socket.socket, limit: float = 30) -> bool:
    """Whether the mocks closed the connection: read (and throw away) until EOF or a reset."""
    sock.settimeout(limit)
    try:
        while sock.recv(1 << 20):
            pass
    except ConnectionResetError:
        pass
    return True


def test_readers_are_capped_share_one_encoding_and_one_that_never_reads_is_dropped():
    from mockpanel.attach import RemoteHubClient

    with RunningHub(settings_for(["auth"])) as running:
        auth = running.urls["auth"]
        broadcast = running.run(lambda: next(r for r in running.hub["auth"].ctx.control_routers if hasattr(r, "broadcast")).broadcast)
        unread = [_unread_stream(auth) for _ in range(MAX_READERS - 1)]
        heard: list = []
        panel = RemoteHubClient(auth)
        stop = panel.subscribe(heard.append)
        deadline = time.monotonic() + 20
        while running.run(lambda: len(broadcast.readers)) < MAX_READERS and time.monotonic() < deadline:
            time.sleep(0.02)
        assert running.run(lambda: len(broadcast.readers)) == MAX_READERS
        # one subscription to the bus for all of them: a batch is encoded once
        assert running.run(lambda: sum(1 for s in running.hub.bus.subscribers if s is broadcast)) == 1
        r = httpx2.get(auth + EVENTS_PATH)
        assert r.status_code == 503 and r.json()["error"] == "TooManyReaders"
        try:
            with httpx2.Client(timeout=30) as http:
                big = {f"x-h{i}": "h" * 1000 for i in range(6)}
                for i in range(4000):
                    http.get(auth + f"/health?flood={i}", headers=big)
                    if i % 500 == 0 and running.run(lambda: len(broadcast.readers)) == 1:
                        break
            for sock in unread:
                assert _closed(sock)
            assert running.run(lambda: len(broadcast.readers)) == 1  # only the panel that reads is left
            httpx2.get(auth + "/health?after=flood")
            deadline = time.monotonic() + 20
            while not any(getattr(i, "query", "") == "after=flood" for i in list(heard)) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert any(getattr(i, "query", "") == "after=flood" for i in heard)
            # a reader place freed is taken again
            with httpx2.Client() as again, again.stream("GET", auth + EVENTS_PATH) as stream:
                assert stream.status_code == 200
        finally:
            stop()
            panel.close()
            for sock in unread:
                sock.close()
