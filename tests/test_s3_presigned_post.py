"""Browser uploads: presigned POST policies as boto3's generate_presigned_post makes them, the policy's conditions and
signature checked, and a page on another origin uploading through a bucket's CORS rules in Chromium."""

from __future__ import annotations

import base64
import json

import httpx2
import pytest

from conftest import make_s3_client, page_server
from mockpanel.testing import RunningHub, settings_for


def post(presigned: dict, body: bytes, filename: str = "photo.jpg", **extra: str) -> httpx2.Response:
    return httpx2.post(presigned["url"], data={**presigned["fields"], **extra}, files={"file": (filename, body, "image/jpeg")})


def test_a_presigned_post_uploads_with_its_fields(s3):
    s3.create_bucket(Bucket="uploads")
    presigned = s3.generate_presigned_post("uploads", "user-7/${filename}", Fields={"Content-Type": "image/jpeg", "x-amz-meta-user": "7"},
                                           Conditions=[["content-length-range", 1, 1024], ["starts-with", "$key", "user-7/"],
                                                       {"Content-Type": "image/jpeg"}, {"x-amz-meta-user": "7"}], ExpiresIn=600)
    answer = post(presigned, b"\xff\xd8jpeg bytes")
    assert answer.status_code == 204 and answer.headers["etag"]
    stored = s3.get_object(Bucket="uploads", Key="user-7/photo.jpg")
    assert stored["Body"].read() == b"\xff\xd8jpeg bytes" and stored["ContentType"] == "image/jpeg" and stored["Metadata"] == {"user": "7"}

    too_big = post(presigned, b"x" * 2000)
    assert too_big.status_code == 400 and "<Code>EntityTooLarge</Code>" in too_big.text
    extra = post(presigned, b"y", success_action_status="201")
    assert extra.status_code == 403 and "Extra input fields: success_action_status" in extra.text
    other_type = post({**presigned, "fields": {**presigned["fields"], "Content-Type": "text/html"}}, b"<script>")
    assert other_type.status_code == 403 and "Policy Condition failed" in other_type.text
    assert [o["Key"] for o in s3.list_objects_v2(Bucket="uploads")["Contents"]] == ["user-7/photo.jpg"]


def test_success_status_redirect_and_an_expired_policy(s3):
    s3.create_bucket(Bucket="forms")
    created = s3.generate_presigned_post("forms", "a.txt", Fields={"success_action_status": "201"},
                                         Conditions=[{"success_action_status": "201"}])
    answer = post(created, b"a")
    assert answer.status_code == 201 and "<Key>a.txt</Key>" in answer.text and "<Bucket>forms</Bucket>" in answer.text
    redirected = s3.generate_presigned_post("forms", "b.txt", Fields={"success_action_redirect": "http://app.example/done"},
                                            Conditions=[{"success_action_redirect": "http://app.example/done"}])
    answer = post(redirected, b"b")
    assert answer.status_code == 303 and answer.headers["location"].startswith("http://app.example/done?bucket=forms&key=b.txt&etag=")

    expired = {"expiration": "2020-01-01T00:00:00Z", "conditions": [{"bucket": "forms"}, {"key": "c.txt"}]}
    fields = {"key": "c.txt", "policy": base64.b64encode(json.dumps(expired).encode()).decode()}
    answer = post({"url": created["url"], "fields": fields}, b"c")
    assert answer.status_code == 403 and "Policy expired" in answer.text
    nokey = post({"url": created["url"], "fields": {}}, b"d")
    assert nokey.status_code == 400 and "must contain a field named 'key'" in nokey.text


def test_with_signature_checks_the_policy_signature_is_verified():
    with RunningHub(settings_for(["s3"], {"s3": {"verify_signatures": "true"}})) as running:
        s3 = make_s3_client(running.urls["s3"])
        s3.create_bucket(Bucket="signed")
        presigned = s3.generate_presigned_post("signed", "ok.txt")
        assert post(presigned, b"ok").status_code == 204
        assert s3.get_object(Bucket="signed", Key="ok.txt")["Body"].read() == b"ok"
        forged_policy = json.loads(base64.b64decode(presigned["fields"]["policy"]))
        forged_policy["conditions"] = [c for c in forged_policy["conditions"] if not (isinstance(c, dict) and "key" in c)] + [{"key": "evil.txt"}]
        forged = {**presigned["fields"], "key": "evil.txt", "policy": base64.b64encode(json.dumps(forged_policy).encode()).decode()}
        refused = post({"url": presigned["url"], "fields": forged}, b"evil")
        assert refused.status_code == 403 and "<Code>SignatureDoesNotMatch</Code>" in refused.text
        unsigned = post({"url": presigned["url"], "fields": {"key": "anon.txt"}}, b"anon")
        assert unsigned.status_code == 403
        assert [o["Key"] for o in s3.list_objects_v2(Bucket="signed")["Contents"]] == ["ok.txt"]


@pytest.mark.parametrize("allowed, outcome", [("page", "status 204"), ("elsewhere", "blocked")])
def test_a_page_on_another_origin_uploads_with_a_presigned_post(page, s3, allowed, outcome):
    with page_server(b"<!doctype html><title>app</title><input type=file id=file>") as origin:
        name = f"browser-{allowed}"
        s3.create_bucket(Bucket=name)
        s3.put_bucket_cors(Bucket=name, CORSConfiguration={"CORSRules": [
            {"AllowedOrigins": [origin if allowed == "page" else "http://elsewhere.example"], "AllowedMethods": ["POST"]}]})
        presigned = s3.generate_presigned_post(name, "from-page/${filename}")
        page.goto(origin + "/")
        page.set_input_files("#file", files=[{"name": "pic.png", "mimeType": "image/png", "buffer": b"\x89PNG page upload"}])
        script = """async ([url, fields]) => {
            const form = new FormData();
            for (const [k, v] of Object.entries(fields)) form.append(k, v);
            form.append('file', document.getElementById('file').files[0]);
            try { const r = await fetch(url, {method: 'POST', body: form}); return 'status ' + r.status; }
            catch (e) { return 'blocked'; } }"""
        assert page.evaluate(script, [presigned["url"], presigned["fields"]]) == outcome
        if outcome == "status 204":
            assert s3.get_object(Bucket=name, Key="from-page/pic.png")["Body"].read() == b"\x89PNG page upload"


def test_malformed_forms_get_s3_errors(s3, s3_url):
    s3.create_bucket(Bucket="malformed")
    long_boundary = "b" * 300  # python-multipart refuses boundaries over 256 bytes when the parser is made
    for method, path in (("POST", "/malformed"), ("PUT", "/malformed/put-form")):
        answer = httpx2.request(method, f"{s3_url}{path}", content=b"--x\r\n", headers={"content-type": f"multipart/form-data; boundary={long_boundary}"})
        assert answer.status_code == 400 and "<Code>MalformedPOSTRequest</Code>" in answer.text, (method, answer.text[:200])
    body = (b'--B\r\nContent-Disposition: form-data; name="key"\r\n\r\nk\r\n--B\r\nContent-Disposition: form-data; name="Content-Type"\r\n\r\n'
            b'text/plain\r\nX-Injected: 1\r\n--B\r\nContent-Disposition: form-data; name="file"; filename="f"\r\n\r\ndata\r\n--B--\r\n')
    injected = httpx2.post(f"{s3_url}/malformed", content=body, headers={"content-type": "multipart/form-data; boundary=B"})
    assert injected.status_code == 400 and "control character" in injected.text
    many = b"".join(b'--B\r\nContent-Disposition: form-data; name="f%d"\r\n\r\n\r\n' % i for i in range(101)) + b"--B--\r\n"
    refused = httpx2.post(f"{s3_url}/malformed", content=many, headers={"content-type": "multipart/form-data; boundary=B"})
    assert refused.status_code == 400 and "over 100 fields" in refused.text
    huge = b'--B\r\nContent-Disposition: form-data; name="file"; filename="' + b"x" * 10_000 + b'"\r\n\r\ndata\r\n--B--\r\n'
    refused = httpx2.post(f"{s3_url}/malformed", content=huge, headers={"content-type": "multipart/form-data; boundary=B"})
    assert refused.status_code == 400 and "Maximum header size exceeded" in refused.text  # python-multipart's own bound
    assert "Contents" not in s3.list_objects_v2(Bucket="malformed")
