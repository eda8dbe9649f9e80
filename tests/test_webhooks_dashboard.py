"""The webhook dashboard in headless Chromium: events posted over HTTP appear live, with their verdicts."""

from __future__ import annotations

import hashlib
import hmac
import json

import httpx2
import pytest

from mockpanel.testing import RunningHub, settings_for


@pytest.fixture(scope="module")
def receiver():
    with RunningHub(settings_for(["webhooks"])) as running:
        yield running.urls["webhooks"]


def test_events_appear_live_with_their_verdicts(page, receiver, tmp_path):
    page.goto(receiver + "/")
    page.wait_for_selector("#live.on")  # the server-sent event stream is connected
    assert page.locator("#rows tr").count() == 0

    payload = {"event_type": "image.processed", "image_id": "img-1", "status": "completed"}
    signature = hmac.new(b"webhook-secret-123", json.dumps(payload).encode(), hashlib.sha256).hexdigest()
    httpx2.post(f"{receiver}/webhooks/client-123", content=json.dumps(payload),
               headers={"Content-Type": "application/json", "X-Webhook-Signature": signature})
    httpx2.post(f"{receiver}/webhooks/test-client", json={"event_type": "test", "data": "hello"})

    rows = page.locator("#rows tr")
    rows.nth(1).wait_for()  # both arrived without a reload
    assert rows.nth(0).inner_text().split("\t")[1:4] == ["test-client", "test", "unsigned"]
    assert rows.nth(1).inner_text().split("\t")[1:4] == ["client-123", "image.processed", "valid"]
    page.wait_for_function("document.getElementById('s-total').textContent === '2'")
    assert page.locator("#s-valid").inner_text() == "1" and page.locator("#s-unsigned").inner_text() == "1"

    # the detail: pretty JSON and the signature debugger
    rows.nth(1).click()
    page.wait_for_selector("#body")
    assert json.loads(page.locator("#body").inner_text()) == payload
    detail = page.locator("#detail").inner_text()
    assert "x-webhook-signature" in detail and signature in detail and "WEBHOOK_SECRET" in detail

    # a tampered delivery shows why it is invalid
    httpx2.post(f"{receiver}/webhooks/client-123", content=json.dumps({**payload, "status": "forged"}),
               headers={"Content-Type": "application/json", "X-Webhook-Signature": signature})
    rows.nth(2).wait_for()
    rows.nth(0).click()
    page.wait_for_function("document.getElementById('detail').innerText.includes('does not match')")

    # filter box (server-side search)
    page.fill("#filter", "hello")
    page.wait_for_function("document.querySelectorAll('#rows tr').length === 1")
    assert "test-client" in rows.nth(0).inner_text()
    page.screenshot(path=str(tmp_path / "dashboard.png"))


def test_replay_button(page, receiver):
    with RunningHub(settings_for(["webhooks"])) as second:
        target = second.urls["webhooks"]
        page.goto(receiver + "/")
        page.wait_for_selector("#live.on")
        httpx2.post(f"{receiver}/webhooks/replayer", json={"event_type": "to.replay"})
        page.locator("#rows tr", has_text="to.replay").first.click()
        page.fill("#replay-url", f"{target}/webhooks/copy")
        page.click("#replay")
        page.wait_for_function("document.getElementById('replay-outcome').textContent.startsWith('delivered: 200')")
        assert httpx2.get(f"{target}/webhooks/events").json()["events"][0]["client_id"] == "copy"


def test_filter_by_client_clear_asks_first_and_forgets_the_detail(page, tmp_path):
    with RunningHub(settings_for(["webhooks"])) as running:
        receiver = running.urls["webhooks"]
        for i in range(3):
            httpx2.post(f"{receiver}/webhooks/client-456", json={"event_type": "order.paid", "n": i})
        signed = json.dumps({"event_type": "order.paid", "n": 9}).encode()
        httpx2.post(f"{receiver}/webhooks/client-789", content=signed, headers={
            "Content-Type": "application/json", "X-Webhook-Signature": hmac.new(b"webhook-secret-123", signed, hashlib.sha256).hexdigest()})
        page.goto(receiver + "/")
        page.wait_for_selector("#live.on")
        page.wait_for_function("document.querySelectorAll('#rows tr').length === 4")

        page.fill("#filter", "client-456")  # typing a client id finds that client's events
        page.wait_for_function("document.querySelectorAll('#rows tr').length === 3")
        page.fill("#filter", "")
        page.wait_for_function("[...document.querySelectorAll('#client option')].some(o => o.value === 'client-789')")
        page.select_option("#client", "client-789")
        page.wait_for_function("document.querySelectorAll('#rows tr').length === 1")
        page.select_option("#client", "")
        page.fill("#filter", "no-such-text")
        page.wait_for_function("getComputedStyle(document.getElementById('no-events')).display === 'block'")
        assert page.locator("#no-events").inner_text() == "No stored event matches the filter (4 received)."
        page.fill("#filter", "")
        page.wait_for_function("document.querySelectorAll('#rows tr').length === 4")

        page.locator("#rows tr").first.click()
        page.wait_for_selector("#body")
        secret = next(line for line in page.locator("#detail").inner_text().splitlines() if line.startswith("secret"))
        assert secret.endswith("webh…123 (18 characters)") and "))" not in secret, secret

        asked: list[str] = []
        page.once("dialog", lambda d: (asked.append(d.message), d.dismiss()))
        page.click("#clear")  # dismissed: nothing is deleted
        assert asked and "Delete every stored webhook event (4 received)?" in asked[0]
        assert httpx2.get(f"{receiver}/webhooks/events").json()["total"] == 4
        page.once("dialog", lambda d: d.accept())
        page.click("#clear")
        page.wait_for_function("document.querySelectorAll('#rows tr').length === 0")
        page.wait_for_function("!document.getElementById('body')")  # the deleted event's detail is gone
        assert "Select an event" in page.locator("#detail").inner_text()
        assert httpx2.get(f"{receiver}/webhooks/events").json()["total"] == 0


def test_the_pages_ask_for_no_favicon(page, receiver):
    missing: list[str] = []
    page.on("response", lambda r: missing.append(r.url) if r.status == 404 else None)
    page.goto(receiver + "/")
    page.wait_for_selector("#live.on")
    assert missing == []
