"""The client app's web page in headless Chromium: pick a file, watch the job complete, see the variants."""

from __future__ import annotations

import io
import socket

import pytest
from PIL import Image

from mockpanel.testing import RunningHub, settings_for


@pytest.fixture(scope="module")
def loop():
    with RunningHub(settings_for(["s3", "webhooks", "client", "imageapi"])) as running:
        yield running.urls


def test_upload_from_the_page_shows_status_variants_and_history(page, loop, tmp_path):
    photo = tmp_path / "sunset.png"
    buffer = io.BytesIO()
    Image.new("RGB", (1200, 900), (250, 120, 40)).save(buffer, "PNG")
    photo.write_bytes(buffer.getvalue())

    page.goto(loop["client"] + "/")
    page.wait_for_function("document.getElementById('token').textContent.startsWith('token: eyJ')")
    page.set_input_files("#file", str(photo))
    page.wait_for_function("document.getElementById('status').textContent === 'completed'", timeout=30_000)
    page.wait_for_function("document.querySelectorAll('#variants img').length === 4")
    page.wait_for_function("[...document.querySelectorAll('#variants img')].every(i => i.complete && i.naturalWidth > 0)")
    widths = page.evaluate("Object.fromEntries([...document.querySelectorAll('#variants img')].map(i => [i.dataset.variant, i.naturalWidth]))")
    assert widths == {"original": 1200, "thumbnail": 150, "medium": 800, "large": 1200}  # large: never upscaled
    page.wait_for_function("document.getElementById('history').innerText.includes('sunset.png')")
    assert "completed" in page.locator("#history tr").first.inner_text()
    log = page.locator("#log").inner_text()
    assert "uploading sunset.png" in log and "completed" in log and "result: original, thumbnail, medium, large" in log
    page.screenshot(path=str(tmp_path / "client.png"))


def test_stress_button_reports_the_rate_limit(page, loop):
    page.goto(loop["client"] + "/")
    page.fill("#user", "page-stress-user")
    page.click("#stress")
    page.wait_for_function("document.getElementById('stress-outcome').textContent.length > 0", timeout=60_000)
    assert page.locator("#stress-outcome").inner_text().startswith("50 accepted, 1 rate-limited")


def test_page_says_when_the_image_api_is_down(page, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    with RunningHub(settings_for(["client"], {"client": {"image_api_url": f"http://127.0.0.1:{dead}"}})) as running:
        photo = tmp_path / "x.png"
        Image.new("RGB", (10, 10)).save(photo)
        page.goto(running.urls["client"] + "/")
        page.set_input_files("#file", str(photo))
        page.wait_for_selector("#error", state="visible")
        text = page.locator("#error").inner_text()
        assert text.startswith("Upload failed (502)") and "unreachable" in text
        assert page.locator("#status").inner_text() == "failed"
