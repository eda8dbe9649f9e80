"""The client app and the reference image API: the whole upload loop through HTTP, rate limits, failures."""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import socket
import subprocess
import time

import httpx2
import jwt
import pytest
from PIL import Image

from conftest import wait_for_job
from mockpanel.testing import RunningHub, settings_for

LOOP = ["s3", "webhooks", "client", "imageapi"]


@pytest.fixture(scope="module")
def loop():
    with RunningHub(settings_for(LOOP)) as running:
        yield running


@pytest.fixture
def urls(loop):
    for url in loop.urls.values():
        httpx2.post(f"{url}/__mockpanel/reset").raise_for_status()
        httpx2.delete(f"{url}/__mockpanel/requests").raise_for_status()
    return loop.urls


def png(width: int, height: int, color=(200, 30, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, "PNG")
    return buffer.getvalue()




def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_whole_loop(urls):
    token = httpx2.get(f"{urls['client']}/api/generate-token", params={"user_id": "test-user-123"}).json()["token"]
    claims = jwt.decode(token, "dev-secret-change-in-production", algorithms=["HS256"])
    assert claims["sub"] == "test-user-123"

    original = png(2000, 1000)
    r = httpx2.post(f"{urls['client']}/api/upload", files={"file": ("photo.png", original, "image/png")},
                   data={"bucket": "test-uploads", "user_id": "user-456", "context": "demo"})
    assert r.status_code == 202
    job_id, image_id = r.json()["job_id"], r.json()["image_id"]
    assert r.json()["status"] == "pending"
    assert wait_for_job(urls["client"], job_id)["status"] == "completed"

    result = httpx2.get(f"{urls['client']}/api/result/{job_id}").json()
    assert result["image_id"] == image_id and set(result["urls"]) == {"original", "thumbnail", "medium", "large"}
    # the variants are in the S3 mock, at the right pixel sizes
    expected = {"thumbnail": (150, 75), "medium": (800, 400), "large": (1600, 800), "original": (2000, 1000)}
    for name, url in result["urls"].items():
        assert url.startswith(urls["s3"] + "/test-uploads/images/")
        fetched = httpx2.get(url)
        assert fetched.status_code == 200
        assert Image.open(io.BytesIO(fetched.content)).size == expected[name]
    assert httpx2.get(result["urls"]["original"]).content == original

    # the webhook receiver holds a valid-signed image.processed event for that job
    events = httpx2.get(f"{urls['webhooks']}/webhooks/events", params={"client_id": "image-api"}).json()["events"]
    assert len(events) == 1
    detail = httpx2.get(f"{urls['webhooks']}/webhooks/events/{events[0]['id']}").json()
    assert detail["signature"]["verdict"] == "valid"
    assert detail["json"] == {"event_type": "image.processed", "image_id": image_id, "job_id": job_id, "status": "completed", "urls": result["urls"]}
    expected_sig = hmac.new(b"webhook-secret-123", detail["body"].encode(), hashlib.sha256).hexdigest()
    assert ["x-webhook-signature", expected_sig] in detail["headers"]

    history = httpx2.get(f"{urls['client']}/api/history").json()["uploads"]
    assert history[0]["job_id"] == job_id and history[0]["status"] == "completed" and history[0]["filename"] == "photo.png"


def test_one_upload_is_followed_across_journals_by_request_id(urls):
    r = httpx2.post(f"{urls['client']}/api/upload", files={"file": ("a.png", png(300, 300), "image/png")}, data={"user_id": "tracer"})
    request_id = r.json()["request_id"]
    wait_for_job(urls["client"], r.json()["job_id"])
    seen = {}
    for name in ("imageapi", "s3", "webhooks"):
        entries = httpx2.get(f"{urls[name]}/__mockpanel/requests", params={"limit": 1000}).json()["requests"]
        seen[name] = [e for e in entries if ["x-request-id", request_id] in e["request_headers"]]
    assert [e["path"] for e in seen["imageapi"]] == ["/api/v1/images/upload"]
    assert len(seen["s3"]) == 4 and all(e["method"] == "PUT" for e in seen["s3"])
    assert [e["path"] for e in seen["webhooks"]] == ["/webhooks/image-api"]


def test_stress_test_51_gives_50_accepted_and_1_rate_limited(urls):
    r = httpx2.post(f"{urls['client']}/api/stress-test", data={"user_id": "stressed-user", "count": "51"}, timeout=120)
    outcome = r.json()
    assert outcome["count"] == 51 and outcome["by_status"] == {"202": 50, "429": 1}
    assert outcome["accepted"] == 50 and outcome["rate_limited"] == 1 and outcome["first_429_order"] == 50
    # the image API says when to come back
    token = httpx2.get(f"{urls['client']}/api/generate-token", params={"user_id": "stressed-user"}).json()["token"]
    limited = httpx2.post(f"{urls['imageapi']}/api/v1/images/upload", files={"file": ("x.png", png(8, 8), "image/png")},
                         headers={"Authorization": f"Bearer {token}"})
    assert limited.status_code == 429 and 1 <= int(limited.headers["retry-after"]) <= 61
    # another user is not limited
    other = httpx2.post(f"{urls['client']}/api/upload", files={"file": ("y.png", png(8, 8), "image/png")}, data={"user_id": "someone-else"})
    assert other.status_code == 202


def test_non_image_upload_is_a_clear_4xx(urls):
    r = httpx2.post(f"{urls['client']}/api/upload", files={"file": ("notes.txt", b"just text", "text/plain")}, data={"user_id": "u"})
    assert r.status_code == 415 and "not an image" in r.json()["detail"]
    assert httpx2.get(f"{urls['client']}/api/history").json()["uploads"][0]["http_status"] == 415


def test_image_api_checks_the_bearer_token(urls):
    files = {"file": ("x.png", png(8, 8), "image/png")}
    assert httpx2.post(f"{urls['imageapi']}/api/v1/images/upload", files=files).status_code == 401
    wrong = jwt.encode({"sub": "u", "exp": int(time.time()) + 60}, "another-secret-entirely-0123456789", algorithm="HS256")
    r = httpx2.post(f"{urls['imageapi']}/api/v1/images/upload", files=files, headers={"Authorization": f"Bearer {wrong}"})
    assert r.status_code == 401 and "invalid token" in r.json()["detail"]
    assert httpx2.get(f"{urls['imageapi']}/api/v1/jobs/nope").status_code == 404
    assert httpx2.get(f"{urls['imageapi']}/api/v1/health").json()["status"] == "healthy"


def test_image_api_down_is_502_with_a_message():
    dead = closed_port()
    with RunningHub(settings_for(["client"], {"client": {"image_api_url": f"http://127.0.0.1:{dead}"}})) as running:
        url = running.urls["client"]
        r = httpx2.post(f"{url}/api/upload", files={"file": ("x.png", png(8, 8), "image/png")}, data={"user_id": "u"})
        assert r.status_code == 502 and "unreachable" in r.json()["detail"] and str(dead) in r.json()["detail"]
        assert httpx2.get(f"{url}/api/status/abc").status_code == 502
        stress = httpx2.post(f"{url}/api/stress-test", data={"count": "3"}).json()
        assert stress["by_status"] == {"502": 3}


def test_image_api_answering_garbage_is_502(loop):
    # point the client app at the S3 mock, which answers XML
    with RunningHub(settings_for(["client"], {"client": {"image_api_url": loop.urls["s3"]}})) as running:
        r = httpx2.get(f"{running.urls['client']}/api/status/abc")
        assert r.status_code == 502 and "not JSON" in r.json()["detail"]


def test_failures_in_s3_or_webhook_delivery_fail_the_job(urls):
    dead = closed_port()
    with RunningHub(settings_for(["client", "imageapi"], {"imageapi": {"s3_url": f"http://127.0.0.1:{dead}"}})) as running:
        r = httpx2.post(f"{running.urls['client']}/api/upload", files={"file": ("x.png", png(40, 40), "image/png")}, data={"user_id": "u"})
        status = wait_for_job(running.urls["client"], r.json()["job_id"])
        assert status["status"] == "failed" and "storing in S3 failed" in status["error"]
        assert httpx2.get(f"{running.urls['client']}/api/result/{r.json()['job_id']}").status_code == 409
    # the receiver answers 500: delivery fails, the job says so
    httpx2.patch(f"{urls['webhooks']}/__mockpanel/clients/image-api", json={"plan": "500x9+200"}).raise_for_status()
    r = httpx2.post(f"{urls['client']}/api/upload", files={"file": ("x.png", png(40, 40), "image/png")}, data={"user_id": "u"})
    status = wait_for_job(urls["client"], r.json()["job_id"])
    assert status["status"] == "failed" and "webhook delivery" in status["error"] and "500" in status["error"]


def test_jobs_and_uploads_reach_the_bus(loop, urls):
    seen = []
    unsubscribe = loop.run(loop.hub.bus.subscribe, lambda item: seen.append((getattr(item, "server", None), getattr(item, "kind", None), getattr(item, "data", {}))))
    try:
        r = httpx2.post(f"{urls['client']}/api/upload", files={"file": ("x.png", png(20, 20), "image/png")}, data={"user_id": "bus"})
        wait_for_job(urls["client"], r.json()["job_id"])
    finally:
        loop.run(unsubscribe)
    kinds = [(server, kind) for server, kind, _ in seen if kind not in (None, "status")]
    assert ("imageapi", "upload_started") in kinds and ("client", "upload") in kinds
    statuses = [d["status"] for server, kind, d in seen if kind == "job_status"]
    assert statuses == ["processing", "completed"]


def test_seed_client_app_examples_with_curl(urls, tmp_path):
    (tmp_path / "image.jpg").write_bytes(png(64, 64))
    base = urls["client"]

    def curl(*args: str) -> dict:
        out = subprocess.run(["curl", "-s", "-S", *args], capture_output=True, cwd=tmp_path, timeout=60)
        return json.loads(out.stdout)

    assert curl(f"{base}/api/generate-token?user_id=test-user-123")["user_id"] == "test-user-123"
    upload = curl("-X", "POST", f"{base}/api/upload", "-F", "file=@image.jpg", "-F", "bucket=test-uploads", "-F", "user_id=user-456", "-F", "context=demo")
    job_id = upload["job_id"]
    wait_for_job(base, job_id)
    assert curl(f"{base}/api/status/{job_id}")["status"] == "completed"
    assert set(curl(f"{base}/api/result/{job_id}")["urls"]) == {"original", "thumbnail", "medium", "large"}
    assert curl("-X", "POST", f"{base}/api/stress-test", "-F", "user_id=test-user-123", "-F", "count=51")["by_status"] == {"202": 50, "429": 1}
    assert curl(f"{base}/api/history")["total"] >= 51
    assert "swagger" in subprocess.run(["curl", "-s", f"{base}/docs"], capture_output=True, text=True).stdout.lower()


def test_the_image_api_keeps_a_bounded_number_of_jobs():
    with RunningHub(settings_for(["s3", "webhooks", "client", "imageapi"], {"imageapi": {"max_jobs": "3"}})) as running:
        token = httpx2.get(f"{running.urls['client']}/api/generate-token", params={"user_id": "many"}).json()["token"]
        ids = []
        for i in range(5):
            r = httpx2.post(f"{running.urls['imageapi']}/api/v1/images/upload", files={"file": (f"{i}.png", png(8, 8), "image/png")},
                           headers={"Authorization": f"Bearer {token}"})
            assert r.status_code == 202
            ids.append(r.json()["job_id"])
        statuses = [httpx2.get(f"{running.urls['imageapi']}/api/v1/jobs/{job}").status_code for job in ids]
        assert statuses == [404, 404, 200, 200, 200]
        assert httpx2.get(f"{running.urls['imageapi']}/api/v1/health").json()["jobs"] == 3
