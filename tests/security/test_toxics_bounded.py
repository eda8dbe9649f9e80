"""Toxics from an attacker's side: a slicer asked for one-byte pieces with no delay yields and bounds its work per
chunk (one GET of a 1 MiB object stalled every mock 7 s before), and no toxic touches the control paths — the switch
that turns chaos off always works, through the mock itself and through an attached panel."""

from __future__ import annotations

import hashlib

import httpx2
import pytest

from conftest import make_s3_client
from mockpanel.testing import RunningHub, settings_for


def test_a_slicer_of_one_byte_pieces_does_not_stall_the_loop():
    with RunningHub(settings_for(["s3", "auth"])) as running:
        s3 = make_s3_client(running.urls["s3"])
        s3.create_bucket(Bucket="sliced")
        body = bytes(range(256)) * 4096 * 4  # 4 MiB
        s3.put_object(Bucket="sliced", Key="big", Body=body)
        r = httpx2.post(running.urls["s3"] + "/__mockpanel/toxiproxy/proxies/s3/toxics",
                        json={"type": "slicer", "stream": "downstream", "attributes": {"average_size": 1, "size_variation": 0, "delay": 0}})
        assert r.status_code == 200
        worst_before = running.run(lambda: running.hub.watchdog.worst_ms())
        got = s3.get_object(Bucket="sliced", Key="big")["Body"].read()
        assert hashlib.sha256(got).digest() == hashlib.sha256(body).digest()
        assert httpx2.get(running.urls["auth"] + "/health").status_code == 200
        worst = running.run(lambda: running.hub.watchdog.worst_ms())
        assert worst <= max(worst_before, 250), f"the loop stalled {worst:.0f} ms"


@pytest.mark.parametrize("server", ["auth", "payments"])
def test_a_mocks_toxics_never_touch_its_control_paths(server, tmp_path):
    from mockpanel.attach import RemoteHubClient
    from mockpanel.screens.app_ops import chaos_off

    mappings = tmp_path / "mappings"
    mappings.mkdir()
    (mappings / "a.json").write_text('{"request": {"url": "/a"}, "response": {"status": 200, "body": "a"}}')
    with RunningHub(settings_for([server], stubs={"payments": {"mappings": str(mappings)}} if server == "payments" else None)) as running:
        url = running.urls[server]
        api = url + "/__mockpanel/toxiproxy/proxies/" + server + "/toxics"
        assert httpx2.post(api, json={"type": "timeout", "name": "hang", "stream": "upstream", "attributes": {"timeout": 0}}).status_code == 200
        assert httpx2.post(api, json={"type": "latency", "name": "slow", "stream": "downstream", "attributes": {"latency": 60_000}}).status_code == 200
        own = url + ("/a" if server == "payments" else "/health")
        with pytest.raises(httpx2.ReadTimeout):
            httpx2.get(own, timeout=0.5)  # the mock's own paths hang, as asked
        with httpx2.Client(timeout=10) as http:  # its control paths answer at once, on a new connection and a kept one
            assert {t["name"] for t in http.get(api).json()} == {"hang", "slow"}
            assert http.get(url + "/__mockpanel/faults").status_code == 200
            if server == "payments":
                assert http.get(url + "/__admin/mappings").json()["meta"]["total"] == 1
        # an attached panel switches it all off through the same mock
        with RemoteHubClient(url) as panel:
            cleared = panel.read(chaos_off)
        assert server in cleared[2]
        assert httpx2.get(own, timeout=10).status_code == 200
        assert httpx2.get(api).json() == []
