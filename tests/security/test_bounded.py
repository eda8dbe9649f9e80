"""Nothing a client sends may hold the loop every server shares, or grow memory without bound."""

from __future__ import annotations

import io
import json
import struct
import time
import zlib

import httpx2
import jwt
import pytest
from textual.widgets import DataTable

from conftest import until
from mockpanel.app import create_app
from mockpanel.screens.webhooks import WebhooksPane
from mockpanel.testing import RunningHub, settings_for


def test_the_watchdog_names_a_stall_and_the_request_in_progress():
    with RunningHub(settings_for(["auth"])) as running:
        httpx2.get(running.urls["auth"] + "/health")
        running.run(lambda: time.sleep(0.6))  # hold the servers' loop, as a runaway parser would
        deadline = time.monotonic() + 10
        while not running.run(lambda: list(running.hub.watchdog.stalls)) and time.monotonic() < deadline:
            time.sleep(0.05)
        stall = running.run(lambda: running.hub.watchdog.stalls[-1])
        assert stall.duration_ms >= 500 and stall.server == "auth" and stall.request == "GET /health"
        assert any("the event loop stalled" in line for line in running.run(lambda: list(running.hub.log)))
        loop = httpx2.get(running.urls["auth"] + "/__mockpanel/stats").json()["loop"]
        assert loop["stalls"] == 1 and loop["worst_stall_ms"] >= 500 and "during auth GET /health" in loop["last_stall"]


async def test_a_4_mb_webhook_in_the_panel_costs_what_a_small_one_does():
    app = create_app(settings_for(["auth", "webhooks"]))
    async with app.run_test(size=(120, 36)) as pilot:
        urls = app.hub.urls()
        big = json.dumps({"event_type": "bulk.export", "items": [{"id": i, "sku": f"SKU-{i:06d}", "qty": i % 7} for i in range(40_000)]})
        assert len(big) > 1_500_000
        payload = (big * 3)[: 4_400_000]  # ~4.4 MB: the size the report used, as text
        async with httpx2.AsyncClient(timeout=30) as client:
            await client.post(f"{urls['webhooks']}/webhooks/bulk", content=big.encode())
            await client.post(f"{urls['webhooks']}/webhooks/bulk", content=payload.encode())
            await pilot.press("5")
            table = app.query_one(WebhooksPane).query_one(DataTable)
            await until(pilot, lambda: table.row_count == 2)
            for _ in range(4):  # move between the two events: each shows its bounded detail, auth answering meanwhile
                assert (await client.get(f"{urls['auth']}/health")).status_code == 200
                await pilot.press("down" if _ % 2 == 0 else "up")
        detail = str(app.query_one("#webhook-detail").render())
        assert "more bytes (w writes the whole body to a file)" in detail
        assert len(detail) < 100_000
        assert app.hub.watchdog.worst_ms() < 1000, list(app.hub.watchdog.stalls)


def test_stored_webhooks_are_bounded_in_bytes_and_the_newest_stays_readable():
    limits = {"webhooks": {"max_stored_bytes": str(1024 * 1024), "max_body_bytes": str(300 * 1024)}}
    with RunningHub(settings_for(["webhooks"], limits)) as running:
        url = running.urls["webhooks"]
        with httpx2.Client() as client:
            for i in range(20):
                client.post(f"{url}/webhooks/big", content=bytes([65 + i]) * (200 * 1024))
        stats = httpx2.get(f"{url}/webhooks/stats").json()
        assert stats["stored_bytes"] <= 1024 * 1024 and stats["stored"] == 5 and stats["dropped"] == 15
        newest = httpx2.get(f"{url}/webhooks/events", params={"limit": 1}).json()["events"][0]
        body = httpx2.get(f"{url}/webhooks/events/{newest['id']}").json()["body"]
        assert body == chr(65 + 19) * (200 * 1024)


def _huge_png() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("1", (12_000, 12_000)).save(buffer, "PNG")  # 144 megapixels in a few hundred KB
    return buffer.getvalue()


def _png_header(width: int, height: int) -> bytes:
    """A PNG that is only its header (and an empty end): what Pillow reads before it decides anything."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)) + chunk(b"IEND", b"")


@pytest.mark.parametrize("image, reason", [
    (_huge_png, "12000×12000 = 144 megapixels, over the limit of 40 (imageapi.max_pixels)"),
    # over Pillow's own bomb limit (~179 MP): Pillow refuses it as it opens (the upload answered 500)
    (lambda: _png_header(20_000, 20_000), "the image is 400 megapixels, over the limit of 40 (imageapi.max_pixels)"),
])
def test_an_image_over_the_pixel_cap_fails_its_job_before_it_is_decoded(image, reason):
    settings = settings_for(["s3", "webhooks", "imageapi"], {"imageapi": {"enabled": "true"}})
    with RunningHub(settings) as running:
        url = running.urls["imageapi"]
        secret = running.settings.servers["imageapi"]["jwt_secret"]
        token = jwt.encode({"sub": "u1", "exp": int(time.time()) + 600}, secret, algorithm="HS256")
        png = image()
        jobs = []
        for i in range(3):
            r = httpx2.post(f"{url}/api/v1/images/upload", files={"file": (f"huge{i}.png", png, "image/png")},
                           headers={"Authorization": f"Bearer {token}"}, timeout=30)
            assert r.status_code == 202, r.text
            jobs.append(r.json()["job_id"])
        for job_id in jobs:
            deadline = time.monotonic() + 20
            while (job := httpx2.get(f"{url}/api/v1/jobs/{job_id}").json())["status"] in ("pending", "processing"):
                assert time.monotonic() < deadline
                time.sleep(0.05)
            assert job["status"] == "failed"
            assert reason in job["error"]
        assert running.run(running.hub.watchdog.worst_ms) < 1000


def test_a_4_mb_webhook_shown_by_the_real_panel_in_tmux_holds_nothing(tmp_path):
    """The report's case in a real terminal: two 4 MB webhooks shown in the Webhooks pane, auth answering /health
    between every key; the loop every server shares was never held (the watchdog's figure, from the control API)."""
    import re
    import sys
    from pathlib import Path

    from conftest import Terminal

    mockpanel = Path(sys.executable).parent / "mockpanel"
    with Terminal("big", 160, 40) as term:
        term.send(f"cd {tmp_path} && {mockpanel} --only auth,webhooks --auth-port 0 --webhooks-port 0", "Enter")
        text = term.wait_for(lambda s: len(re.findall(r"(auth|webhooks)\s+http://127\.0\.0\.1:\d+\s+running", s)) == 2, "the Servers pane")
        base = {name: f"http://127.0.0.1:{port}" for name, port in re.findall(r"(auth|webhooks)\s+http://127\.0\.0\.1:(\d+)", text)}
        big = json.dumps({"event_type": "bulk.export", "items": [{"id": i, "sku": f"SKU-{i:06d}", "qty": i % 7} for i in range(110_000)]})
        assert len(big) > 4_000_000
        with httpx2.Client(timeout=30) as client:
            for n in range(2):
                assert client.post(f"{base['webhooks']}/webhooks/bulk-{n}", content=big.encode()).status_code == 200
            term.send("5")
            term.wait_for(lambda s: "bulk-0" in s and "bulk-1" in s, "both webhooks listed")
            for key, shown in (("Down", "bulk-0"), ("Up", "bulk-1"), ("Down", "bulk-0"), ("Up", "bulk-1")):
                term.send(key)
                assert client.get(f"{base['auth']}/health").status_code == 200
                term.wait_for(lambda s: f"bulk.export from {shown} " in s, f"the detail of {shown}")
            assert client.get(f"{base['auth']}/health").status_code == 200
            loop = client.get(f"{base['auth']}/__mockpanel/stats").json()["loop"]
        assert loop["worst_stall_ms"] < 1000, loop
        term.send("q")
