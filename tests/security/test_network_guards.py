"""Network faults from an attacker's side: Toxiproxy's API from a page of another site or a rebinding name, hostile
toxics, a proxy asked to listen on every interface, a flood of connections, a client that never reads."""

from __future__ import annotations

import socket
import time

import httpx2
import pytest

from conftest import http_upstream
from mockpanel.testing import RunningHub, settings_for

BIG = b"z" * (8 * 1024 * 1024)


@pytest.fixture(scope="module")
def upstream():
    with http_upstream(BIG) as port:
        yield port


@pytest.fixture(scope="module")
def hub():
    with RunningHub(settings_for(["auth"], {"mockpanel": {"toxiproxy_port": "0"}})) as running:
        yield running


def api(hub) -> str:
    return hub.run(lambda: hub.hub.toxiproxy_url)


def proxies(hub) -> set[str]:
    return set(httpx2.get(api(hub) + "/proxies").json())


def test_a_page_of_another_site_or_a_rebinding_name_cannot_make_a_relay(hub, upstream):
    body = b'{"name": "relay", "listen": "127.0.0.1:0", "upstream": "internal.example:22"}'
    for headers in ({"Origin": "http://evil.example", "Content-Type": "text/plain"}, {"Origin": "http://evil.example", "Content-Type": "application/json"},
                    {"Sec-Fetch-Site": "cross-site", "Content-Type": "application/json"}, {"Content-Type": "text/plain"},
                    {"Host": "attacker.example", "Content-Type": "application/json"}):
        r = httpx2.post(api(hub) + "/proxies", content=body, headers=headers)
        assert r.status_code in (403, 415) and "error" in r.json(), headers
    auth = hub.urls["auth"]
    r = httpx2.post(auth + "/__mockpanel/toxiproxy/proxies", content=body, headers={"Origin": "http://evil.example", "Content-Type": "text/plain"})
    assert r.status_code == 403
    assert "relay" not in proxies(hub)
    r = httpx2.post(auth + "/__mockpanel/toxiproxy/proxies/auth/toxics", json={"type": "timeout"}, headers={"Origin": "http://evil.example"})
    assert r.status_code == 403 and httpx2.get(auth + "/health").status_code == 200


def test_a_proxy_made_through_the_api_listens_on_loopback_only(hub, upstream):
    r = httpx2.post(api(hub) + "/proxies", json={"name": "wide", "listen": "0.0.0.0:0", "upstream": f"127.0.0.1:{upstream}"})
    assert r.status_code == 201 and r.json()["listen"].startswith("127.0.0.1:")
    httpx2.delete(api(hub) + "/proxies/wide")
    for listen, upstream, why in (("nonsense", f"127.0.0.1:{upstream}", "listen"), ("127.0.0.1:99999", f"127.0.0.1:{upstream}", "0-65535"),
                                  ("127.0.0.1:0", "evil host:80", "not a host name"), ("127.0.0.1:0", None, "upstream")):
        r = httpx2.post(api(hub) + "/proxies", json={"name": "bad", "listen": listen, "upstream": upstream})
        assert r.status_code == 400 and why in r.json()["error"], (listen, upstream, r.text)
    assert "bad" not in proxies(hub)
    # a mock listed as a proxy keeps its address and cannot be removed through the API
    assert httpx2.delete(api(hub) + "/proxies/auth").json() == {"error": "auth is a mock of this mockpanel: stop it from the panel or "
                                                                "the command line", "status": 409}
    assert httpx2.post(api(hub) + "/proxies/auth", json={"listen": "127.0.0.1:1"}).status_code == 409
    assert httpx2.get(hub.urls["auth"] + "/health").status_code == 200


@pytest.mark.parametrize("toxic, why", [
    ({"type": "fork_bomb"}, "type"),
    ({"type": "latency", "attributes": {"latency": -1}}, "between 0"),
    ({"type": "latency", "attributes": {"latency": 10**30}}, ""),
    ({"type": "bandwidth", "attributes": {"rate": "fast"}}, ""),
    ({"type": "latency", "attributes": {"nope": 1}}, "no attribute nope"),
    ({"type": "latency", "stream": "sideways"}, "stream"),
    ({"type": "latency", "toxicity": 2}, "toxicity"),
    ({"type": "latency", "name": "x" * 1000}, "name"),
    ([1, 2, 3], "JSON object"),
])
def test_hostile_toxics_are_refused_in_toxiproxys_error_shape(hub, toxic, why):
    r = httpx2.post(api(hub) + "/proxies/auth/toxics", json=toxic)
    assert 400 <= r.status_code < 500 and r.json()["status"] == r.status_code and why in r.json()["error"]
    assert httpx2.get(api(hub) + "/proxies/auth/toxics").json() == []


def test_toxics_and_proxies_are_bounded(hub, upstream):
    for i in range(32):
        assert httpx2.post(api(hub) + "/proxies/auth/toxics", json={"type": "latency", "name": f"t{i}"}).status_code == 200
    r = httpx2.post(api(hub) + "/proxies/auth/toxics", json={"type": "latency", "name": "one-too-many"})
    assert r.status_code == 400 and "at most 32" in r.json()["error"]
    assert httpx2.post(api(hub) + "/reset").status_code == 204
    r = httpx2.post(api(hub) + "/proxies", content=b"[" * 50_000, headers={"content-type": "application/json"})
    assert r.status_code == 400


def test_a_flood_of_connections_and_a_client_that_never_reads_stay_bounded(hub, upstream):
    from mockpanel.proxy import MAX_CONNECTIONS
    from mockpanel.toxics import MAX_BUFFER

    r = httpx2.post(api(hub) + "/proxies", json={"name": "flood", "listen": "127.0.0.1:0", "upstream": f"127.0.0.1:{upstream}"})
    port = int(r.json()["listen"].rsplit(":", 1)[1])
    httpx2.post(api(hub) + "/proxies/flood/toxics", json={"type": "latency", "attributes": {"latency": 1}})
    try:
        # a client that asks for 8 MiB and never reads: what the proxy holds for it stays bounded
        stuck = socket.create_connection(("127.0.0.1", port))
        stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stuck.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")

        def held() -> int:  # what the proxy keeps for it: queued for the toxics, and buffered for the socket
            return hub.run(lambda: max((c.down.queued + c.transport.get_write_buffer_size() for c in hub.hub.network.proxy("flood").links
                                        if c.down is not None), default=0))

        def upstream_paused() -> bool:
            return hub.run(lambda: any(c.upstream is not None and not c.upstream.is_reading() for c in hub.hub.network.proxy("flood").links))

        deadline = time.monotonic() + 20
        while not upstream_paused():
            assert time.monotonic() < deadline, "the proxy never stopped reading its upstream"
            time.sleep(0.05)
        assert held() <= 2 * MAX_BUFFER  # 1 MiB queued for the toxics, one read more, and the socket's own buffer
        # more connections than a proxy holds at once: the rest are closed at once, counted, and the mocks serve on
        flood = [socket.create_connection(("127.0.0.1", port)) for _ in range(MAX_CONNECTIONS + 50)]
        deadline = time.monotonic() + 20
        while hub.run(lambda: hub.hub.network.proxy("flood").stats.refused) < 50:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert hub.run(lambda: len(hub.hub.network.proxy("flood").links)) <= MAX_CONNECTIONS
        assert httpx2.get(hub.urls["auth"] + "/health").status_code == 200
        for sock in flood:
            sock.close()
        stuck.close()
    finally:
        httpx2.delete(api(hub) + "/proxies/flood")
