"""The webhook receiver through HTTP: the seed's examples, four signature schemes signed by their own code,
response plans seen by a retrying sender, replay, limits."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
from datetime import datetime, timezone

import httpx2
import pytest

from mockpanel.testing import RunningHub, settings_for

SECRET = "webhook-secret-123"


@pytest.fixture(scope="module")
def webhooks_hub():
    with RunningHub(settings_for(["webhooks"], {"webhooks": {"max_events": "50", "max_body_bytes": str(256 * 1024)}})) as running:
        yield running


@pytest.fixture
def url(webhooks_hub):
    base = webhooks_hub.urls["webhooks"]
    httpx2.post(f"{base}/__mockpanel/reset").raise_for_status()
    return base


def seed_signature(payload: dict) -> str:
    # The seed README's snippet, as written.
    secret = "webhook-secret-123"
    return hmac.new(secret.encode(), json.dumps(payload).encode(), hashlib.sha256).hexdigest()


def post_seed_style(url: str, client: str, payload: dict, signature: str | None = None) -> httpx2.Response:
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["X-Webhook-Signature"] = signature
    return httpx2.post(f"{url}/webhooks/{client}", content=json.dumps(payload), headers=headers)


def event(url: str, event_id: str) -> dict:
    return httpx2.get(f"{url}/webhooks/events/{event_id}").json()


# --- the seed's surface ---


def test_seed_examples(url):
    payload = {"event_type": "image.processed", "image_id": "uuid-123", "job_id": "uuid-456", "status": "completed", "urls": {"original": "x"}}
    r = post_seed_style(url, "client-123", payload, seed_signature(payload))
    assert r.status_code == 200 and r.json()["signature"] == "valid"
    r = httpx2.post(f"{url}/webhooks/test-client", headers={"Content-Type": "application/json"}, content='{"event_type":"test","data":"hello"}')
    assert r.status_code == 200 and r.json()["signature"] == "unsigned"
    events = httpx2.get(f"{url}/webhooks/events").json()
    assert events["total"] == 2 and [e["client_id"] for e in events["events"]] == ["test-client", "client-123"]  # newest first
    only = httpx2.get(f"{url}/webhooks/events", params={"client_id": "client-123"}).json()["events"]
    assert len(only) == 1 and only[0]["event_type"] == "image.processed" and only[0]["signature"]["verdict"] == "valid"
    detail = event(url, only[0]["id"])
    assert detail["json"] == payload and detail["body"] == json.dumps(payload)
    assert detail["signature"]["scheme"] == "x-webhook-signature" and detail["signature"]["secret_source"] == "WEBHOOK_SECRET"
    stats = httpx2.get(f"{url}/webhooks/stats").json()
    assert stats["clients"]["client-123"]["valid"] == 1 and stats["clients"]["test-client"]["unsigned"] == 1
    assert stats["clients"]["client-123"]["event_types"] == {"image.processed": 1}
    assert httpx2.get(f"{url}/health").json()["status"] == "healthy"
    assert "swagger" in httpx2.get(f"{url}/docs").text.lower()
    assert "Webhook receiver" in httpx2.get(f"{url}/").text
    assert httpx2.delete(f"{url}/webhooks/events").json() == {"deleted": 2}
    assert httpx2.get(f"{url}/webhooks/events").json()["total"] == 0


def test_seed_verification_one_liner(url):
    # python -c "... hmac.new(b'webhook-secret-123', b'{\"test\":1}', hashlib.sha256).hexdigest()"
    signature = hmac.new(b"webhook-secret-123", b'{"test":1}', hashlib.sha256).hexdigest()
    r = httpx2.post(f"{url}/webhooks/x", content=b'{"test":1}', headers={"X-Webhook-Signature": f"sha256={signature}"})
    assert r.json()["signature"] == "valid"


@pytest.mark.parametrize(
    "body,content_type",
    [(b"a=1&b=two", "application/x-www-form-urlencoded"), (b"plain text \xe2\x9c\x93", "text/plain"),
     (bytes(range(256)), "application/octet-stream"), (b"\xff\xfe invalid utf-8 \xc3\x28", "text/plain")],
)
def test_any_body_is_kept_byte_exact(url, body, content_type):
    r = httpx2.post(f"{url}/webhooks/bytes", content=body, headers={"Content-Type": content_type, "X-Custom": "kept"})
    assert r.status_code == 200
    detail = event(url, r.json()["event_id"])
    stored = detail["body"].encode() if detail["body_encoding"] == "utf-8" else base64.b64decode(detail["body"])
    assert stored == body
    assert ["x-custom", "kept"] in detail["headers"] and detail["size"] == len(body)
    assert detail["source"].startswith("127.0.0.1:")


def test_search_filters_and_paging(url):
    for i in range(6):
        payload = {"type": "order.paid" if i % 2 else "order.created", "n": i, "note": "needle" if i == 4 else "hay"}
        post_seed_style(url, f"shop-{i % 2}", payload, seed_signature(payload) if i < 3 else "00")
    assert httpx2.get(f"{url}/webhooks/events", params={"q": "needle"}).json()["total"] == 1
    assert httpx2.get(f"{url}/webhooks/events", params={"event_type": "order.paid"}).json()["total"] == 3
    assert httpx2.get(f"{url}/webhooks/events", params={"verdict": "invalid"}).json()["total"] == 3
    page = httpx2.get(f"{url}/webhooks/events", params={"limit": 2, "offset": 2}).json()
    assert page["total"] == 6 and len(page["events"]) == 2
    now = time.time()
    assert httpx2.get(f"{url}/webhooks/events", params={"since": now + 10}).json()["total"] == 0
    assert httpx2.get(f"{url}/webhooks/events", params={"until": datetime.now(timezone.utc).isoformat()}).json()["total"] == 6
    assert httpx2.get(f"{url}/webhooks/events", params={"since": "yesterday"}).status_code == 422
    assert httpx2.get(f"{url}/webhooks/events/no-such-id").status_code == 404


# --- the four schemes, signed by the signers' own code ---


def test_standard_webhooks_signed_by_its_library(url):
    from standardwebhooks.webhooks import Webhook

    secret = "whsec_" + base64.b64encode(b"a-standard-webhooks-secret-32-by").decode()
    httpx2.patch(f"{url}/__mockpanel/clients/svc", json={"secret": secret}).raise_for_status()
    payload = '{"type":"invoice.paid","id":"in_1"}'
    msg_id, now = "msg_2Lh9KRb0pzN4LePd3XiA4v12Axj", datetime.now(timezone.utc)
    signature = Webhook(secret).sign(msg_id, now, payload)
    headers = {"webhook-id": msg_id, "webhook-timestamp": str(int(now.timestamp())), "webhook-signature": signature, "content-type": "application/json"}
    r = httpx2.post(f"{url}/webhooks/svc", content=payload, headers=headers)
    assert r.json()["signature"] == "valid"
    check = event(url, r.json()["event_id"])["signature"]
    assert check["scheme"] == "standard-webhooks" and check["secret_source"] == "client secret of svc"
    # secret rotation: several signatures, one of them right
    rotated = {**headers, "webhook-signature": f"v1,{base64.b64encode(b'x' * 32).decode()} {signature}"}
    assert httpx2.post(f"{url}/webhooks/svc", content=payload, headers=rotated).json()["signature"] == "valid"
    # svix-* names are the same scheme
    svix = {"svix-id": msg_id, "svix-timestamp": headers["webhook-timestamp"], "svix-signature": signature}
    assert httpx2.post(f"{url}/webhooks/svc", content=payload, headers=svix).json()["signature"] == "valid"
    # tampered body, stale timestamp
    r = httpx2.post(f"{url}/webhooks/svc", content=payload.replace("in_1", "in_2"), headers=headers)
    tampered = event(url, r.json()["event_id"])["signature"]
    assert tampered["verdict"] == "invalid" and "does not match" in tampered["reason"]
    assert tampered["expected"].startswith("v1,") and tampered["received"] == signature
    old = datetime.fromtimestamp(now.timestamp() - 3600, timezone.utc)
    stale_headers = {**headers, "webhook-timestamp": str(int(old.timestamp())), "webhook-signature": Webhook(secret).sign(msg_id, old, payload)}
    r = httpx2.post(f"{url}/webhooks/svc", content=payload, headers=stale_headers)
    stale = event(url, r.json()["event_id"])["signature"]
    assert stale["verdict"] == "invalid" and "old" in stale["reason"] and stale["timestamp_skew_s"] >= 3599


def test_github_signature(url):
    body = b'{"action":"opened","number":1}'
    good = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()  # GitHub's documented algorithm
    headers = {"X-Hub-Signature-256": good, "X-GitHub-Event": "pull_request", "X-GitHub-Delivery": "72d3162e", "Content-Type": "application/json"}
    r = httpx2.post(f"{url}/webhooks/gh", content=body, headers=headers)
    assert r.json()["signature"] == "valid"
    detail = event(url, r.json()["event_id"])
    assert detail["signature"]["scheme"] == "github" and detail["event_type"] == "pull_request"
    r = httpx2.post(f"{url}/webhooks/gh", content=body + b" ", headers=headers)
    bad = event(url, r.json()["event_id"])["signature"]
    assert bad["verdict"] == "invalid" and bad["expected"] != bad["received"]
    r = httpx2.post(f"{url}/webhooks/gh", content=body, headers={"X-Hub-Signature-256": "md5=abc"})
    assert "malformed" in event(url, r.json()["event_id"])["signature"]["reason"]


def test_stripe_signature(url):
    body = b'{"id":"evt_1","type":"payment_intent.succeeded"}'
    secret = "whsec_stripe_test_secret"
    httpx2.patch(f"{url}/__mockpanel/clients/stripe", json={"secret": secret}).raise_for_status()

    def stripe_header(ts: int, payload: bytes) -> str:  # Stripe's documented scheme
        return f"t={ts},v1={hmac.new(secret.encode(), f'{ts}.'.encode() + payload, hashlib.sha256).hexdigest()}"

    now = int(time.time())
    r = httpx2.post(f"{url}/webhooks/stripe", content=body, headers={"Stripe-Signature": stripe_header(now, body)})
    assert r.json()["signature"] == "valid"
    assert event(url, r.json()["event_id"])["event_type"] == "payment_intent.succeeded"
    r = httpx2.post(f"{url}/webhooks/stripe", content=body, headers={"Stripe-Signature": stripe_header(now - 1000, body)})
    reason = event(url, r.json()["event_id"])["signature"]["reason"]
    assert re.fullmatch(r"timestamp is 100[0-2]s old; tolerance is 300s", reason), reason
    r = httpx2.post(f"{url}/webhooks/stripe", content=body, headers={"Stripe-Signature": "garbage"})
    assert "malformed Stripe-Signature" in event(url, r.json()["event_id"])["signature"]["reason"]


def test_wrong_secret_says_which_secret_was_tried(url):
    payload = {"event_type": "x"}
    bad = hmac.new(b"not-the-secret", json.dumps(payload).encode(), hashlib.sha256).hexdigest()
    r = post_seed_style(url, "c1", payload, bad)
    check = event(url, r.json()["event_id"])["signature"]
    assert check["verdict"] == "invalid" and check["secret_source"] == "WEBHOOK_SECRET"
    assert check["secret_hint"] == "webh…123 (18 characters)"
    assert check["expected"] == seed_signature(payload) and check["received"] == bad


def test_require_signature_answers_401_but_stores(url):
    httpx2.patch(f"{url}/__mockpanel/clients/strict", json={"require_signature": True}).raise_for_status()
    r = httpx2.post(f"{url}/webhooks/strict", json={"event_type": "x"})
    assert r.status_code == 401 and "unsigned" in r.json()["detail"]
    payload = {"event_type": "x"}
    assert post_seed_style(url, "strict", payload, seed_signature(payload)).status_code == 200
    assert httpx2.get(f"{url}/webhooks/events", params={"client_id": "strict"}).json()["total"] == 2
    with RunningHub(settings_for(["webhooks"], {"webhooks": {"require_signature": "true"}})) as running:
        assert httpx2.post(f"{running.urls['webhooks']}/webhooks/any", json={}).status_code == 401


def test_configured_client_secrets_and_plans():
    settings = settings_for(["webhooks"], environ={"WEBHOOK_CLIENT_SECRETS": "acme:acme-secret", "WEBHOOK_PLANS": "flaky:503x2+200"})
    with RunningHub(settings) as running:
        base = running.urls["webhooks"]
        body = b'{"event_type":"e"}'
        sig = hmac.new(b"acme-secret", body, hashlib.sha256).hexdigest()
        assert httpx2.post(f"{base}/webhooks/acme", content=body, headers={"X-Webhook-Signature": sig}).json()["signature"] == "valid"
        assert [httpx2.post(f"{base}/webhooks/flaky", content=body).status_code for _ in range(3)] == [503, 503, 200]
        clients = httpx2.get(f"{base}/__mockpanel/clients").json()["clients"]
        assert {c["client_id"] for c in clients} == {"acme", "flaky"}


# --- a sender's retries ---


def test_plan_500_three_times_then_200_seen_by_a_retrying_sender(url):
    httpx2.patch(f"{url}/__mockpanel/clients/retry", json={"plan": "500x3+200"}).raise_for_status()
    body = json.dumps({"event_type": "order.shipped", "order": 42})
    seen = []
    with httpx2.Client() as sender:
        for attempt in range(1, 10):  # the sender's own retry loop
            r = sender.post(f"{url}/webhooks/retry", content=body, headers={"webhook-id": "msg_retry_1", "Content-Type": "application/json"})
            seen.append(r.status_code)
            if r.status_code < 300:
                break
            time.sleep(0.05 * attempt)
    assert seen == [500, 500, 500, 200]
    attempts = sorted(httpx2.get(f"{url}/webhooks/events", params={"client_id": "retry"}).json()["events"], key=lambda e: e["delivery"]["attempt"])
    assert [e["delivery"]["attempt"] for e in attempts] == [1, 2, 3, 4]
    assert {e["delivery"]["key"] for e in attempts} == {"msg_retry_1"}
    assert attempts[0]["delivery"]["gap_s"] is None and all(e["delivery"]["gap_s"] > 0 for e in attempts[1:])
    assert [e["response_status"] for e in attempts] == [500, 500, 500, 200]
    # another event starts its own count; deliveries without an id are grouped by body hash
    assert httpx2.post(f"{url}/webhooks/retry", content=b'{"other":1}').status_code == 500


def test_delay_and_timeout_plans(url):
    httpx2.patch(f"{url}/__mockpanel/clients/slow", json={"plan": {"delay_ms": 300}}).raise_for_status()
    r = httpx2.post(f"{url}/webhooks/slow", content=b"x")
    assert r.status_code == 200 and r.elapsed.total_seconds() >= 0.29
    httpx2.patch(f"{url}/__mockpanel/clients/stuck", json={"plan": "timeout"}).raise_for_status()
    with pytest.raises(httpx2.ReadTimeout):
        httpx2.post(f"{url}/webhooks/stuck", content=b"x", timeout=0.5)
    stuck = httpx2.get(f"{url}/webhooks/events", params={"client_id": "stuck"}).json()["events"][0]
    assert stuck["response_status"] is None
    assert httpx2.patch(f"{url}/__mockpanel/clients/x", json={"plan": "sometimes"}).status_code == 422
    assert httpx2.patch(f"{url}/__mockpanel/clients/x", json={"plan": {"then": 99}}).status_code == 422


# --- replay ---


def test_replay_to_a_second_receiver_is_byte_exact_and_re_signed(url):
    with RunningHub(settings_for(["webhooks"])) as second:
        target = second.urls["webhooks"]
        body = b'{"event_type":"image.processed","bytes":"\\u00e9"}\n'
        sig = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        original = httpx2.post(f"{url}/webhooks/src", content=body, headers={"X-Webhook-Signature": sig, "Content-Type": "application/json"}).json()
        outcome = httpx2.post(f"{url}/webhooks/replay/{original['event_id']}", params={"target_url": f"{target}/webhooks/dst"}).json()
        assert outcome["delivered"] is True and outcome["status"] == 200 and outcome["error"] is None
        arrived = httpx2.get(f"{target}/webhooks/events").json()["events"][0]
        detail = httpx2.get(f"{target}/webhooks/events/{arrived['id']}").json()
        assert detail["body"].encode() == body
        assert detail["signature"]["verdict"] == "valid" and detail["content_type"] == "application/json"
        assert ["x-mockpanel-replay-of", original["event_id"]] in detail["headers"]
    assert event(url, original["event_id"])["replays"][0]["status"] == 200


def test_replay_outcomes_for_bad_targets(url):
    r = httpx2.post(f"{url}/webhooks/src", content=b"{}")
    event_id = r.json()["event_id"]
    for bad in ("file:///etc/passwd", "ftp://example.com/x", "not a url", "http:///nohost"):
        assert httpx2.post(f"{url}/webhooks/replay/{event_id}", params={"target_url": bad}).status_code == 422
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    outcome = httpx2.post(f"{url}/webhooks/replay/{event_id}", params={"target_url": f"http://127.0.0.1:{closed}/x"}).json()
    assert outcome["delivered"] is False and outcome["status"] is None and "ConnectError" in outcome["error"]
    assert httpx2.post(f"{url}/webhooks/replay/missing", params={"target_url": "http://127.0.0.1:1/"}).status_code == 404


# --- limits and bad input ---


def test_storage_is_bounded_and_drops_are_counted(url):
    for i in range(60):
        httpx2.post(f"{url}/webhooks/many", content=f'{{"n":{i}}}')
    events = httpx2.get(f"{url}/webhooks/events", params={"limit": 1000}).json()
    assert events["total"] == 50
    stats = httpx2.get(f"{url}/webhooks/stats").json()
    assert stats["dropped"] == 10 and stats["stored"] == 50 and stats["clients"]["many"]["count"] == 60


def test_oversized_body_is_413(url):
    r = httpx2.post(f"{url}/webhooks/big", content=b"x" * (256 * 1024 + 1))
    assert r.status_code == 413 and "larger than the limit" in r.json()["detail"]
    assert httpx2.get(f"{url}/webhooks/events").json()["total"] == 0


@pytest.mark.parametrize("header,value", [("X-Webhook-Signature", "not-hex!"), ("Stripe-Signature", "t=abc,v1=00"),
                                          ("webhook-signature", "v1,AAAA"), ("X-Hub-Signature-256", "")])
def test_malformed_signature_headers_are_stored_as_invalid(url, header, value):
    r = httpx2.post(f"{url}/webhooks/m", content=b"{}", headers={header: value})
    assert r.status_code == 200 and r.json()["signature"] == "invalid"
    assert event(url, r.json()["event_id"])["signature"]["reason"]


def test_events_reach_the_bus(webhooks_hub, url):
    seen = []
    unsubscribe = webhooks_hub.run(webhooks_hub.hub.bus.subscribe, lambda item: seen.append(item))
    try:
        httpx2.post(f"{url}/webhooks/bus", json={"event_type": "ping"})
    finally:
        webhooks_hub.run(unsubscribe)
    received = [i for i in seen if getattr(i, "kind", None) == "webhook_received"]
    assert received and received[0].data["client_id"] == "bus" and received[0].data["verdict"] == "unsigned"
