"""The client app's web page in headless Chromium: pick a file, watch the job complete, see the variants."""

from __future__ import annotations

import socket
import time

import httpx2
import pytest
from PIL import Image

from conftest import upload_from_page
from mockpanel.testing import RunningHub, settings_for


@pytest.fixture(scope="module")
def loop():
    with RunningHub(settings_for(["s3", "webhooks", "client", "imageapi"])) as running:
        yield running.urls


def test_upload_from_the_page_shows_status_variants_and_history(page, loop, tmp_path):
    upload_from_page(page, loop["client"], tmp_path / "sunset.png", (1200, 900), (250, 120, 40))
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


def test_a_failed_upload_clears_the_previous_job_and_stress_uploads_settle_in_the_history(page, loop, tmp_path):
    photo = tmp_path / "ok.png"
    Image.new("RGB", (40, 30), (10, 200, 90)).save(photo)
    page.goto(loop["client"] + "/")
    page.wait_for_function("document.getElementById('token').textContent.startsWith('token: eyJ')")
    page.set_input_files("#file", str(photo))
    page.wait_for_function("document.getElementById('status').textContent === 'completed'", timeout=30_000)
    assert page.locator("#job").inner_text() != "—"

    text = tmp_path / "notes.txt"
    text.write_text("not an image")
    page.set_input_files("#file", str(text))
    page.wait_for_selector("#error", state="visible")
    assert page.locator("#error").inner_text().startswith("Upload failed (415)")
    assert page.locator("#job").inner_text() == "—"  # not the previous upload's job

    assert page.locator("#stress").inner_text() == "Stress Test (51 uploads)"
    page.fill("#count", "5")
    assert page.locator("#stress").inner_text() == "Stress Test (5 uploads)"
    page.fill("#user", "history-user")
    page.click("#stress")
    page.wait_for_function("document.getElementById('stress-outcome').textContent.length > 0", timeout=60_000)

    def stress_statuses() -> list[str]:
        uploads = httpx2.get(f"{loop['client']}/api/history").json()["uploads"]
        return [u["status"] for u in uploads if u["context"] == "stress-test" and u["user_id"] == "history-user"]

    deadline = time.monotonic() + 30
    while set(stress_statuses()) != {"completed"} and time.monotonic() < deadline:
        time.sleep(0.1)  # the jobs finish in the image API; each read of the history asks for the unsettled ones
    assert stress_statuses() == ["completed"] * 5


def test_the_client_page_asks_for_no_favicon(page, loop):
    missing: list[str] = []
    page.on("response", lambda r: missing.append(r.url) if r.status == 404 else None)
    page.goto(loop["client"] + "/")
    page.wait_for_function("document.getElementById('token').textContent.startsWith('token: eyJ')")
    assert missing == []
