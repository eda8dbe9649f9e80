"""With --s3-verify-signatures the S3 mock checks what AWS checks: anonymous requests refused, a 15-minute clock
window, host and x-amz-* headers signed, SigV2 dated and bounded, and the seed's presign endpoint closed to strangers.
Signed with botocore's own signers."""

from __future__ import annotations

import time

import httpx2
import pytest
from botocore.exceptions import ClientError

from conftest import make_s3_client
from mockpanel.testing import RunningHub, settings_for
from test_s3_clients import signed_get


class ServerClock:
    def __init__(self) -> None:
        self.ahead = 0.0

    def __call__(self) -> float:
        return time.time() + self.ahead


@pytest.fixture(scope="module")
def strict():
    clock = ServerClock()
    settings = settings_for(["s3"], {"s3": {"verify_signatures": "true", "public_buckets": "open-data"},
                                     "mockpanel": {"admin_token": "adm1n"}})
    with RunningHub(settings, clock=clock) as running:
        client = make_s3_client(running.urls["s3"])
        client.create_bucket(Bucket="private")
        client.put_object(Bucket="private", Key="k", Body=b"secret")
        client.create_bucket(Bucket="open-data")
        client.put_object(Bucket="open-data", Key="readme", Body=b"public")
        yield running.urls["s3"], client, clock


def error_code(r: httpx2.Response) -> str:
    return r.text.split("<Code>")[1].split("</Code>")[0] if "<Code>" in r.text else r.text


def test_anonymous_requests_are_refused_and_change_nothing(strict):
    url, client, _ = strict
    for method, path, params in (("GET", "/private/k", None), ("PUT", "/private/k2", None), ("PUT", "/auto-created", None),
                                 ("GET", "/private", {"list-type": "2"}), ("GET", "/", None), ("DELETE", "/private/k", None),
                                 ("GET", "/presigned-url", {"bucket": "private", "key": "k"}), ("DELETE", "/admin/reset", None),
                                 ("GET", "/admin/buckets", None)):
        r = httpx2.request(method, url + path, params=params, content=b"x" if method == "PUT" else None)
        assert r.status_code == 403 and error_code(r) == "AccessDenied", (method, path, r.text)
    assert client.get_object(Bucket="private", Key="k")["Body"].read() == b"secret"
    assert sorted(b["Name"] for b in client.list_buckets()["Buckets"]) == ["open-data", "private"]
    assert httpx2.get(f"{url}/health").status_code == 200  # health and docs stay open
    assert httpx2.get(f"{url}/open-data/readme").content == b"public"  # an explicitly public bucket: reads only
    assert httpx2.put(f"{url}/open-data/x", content=b"x").status_code == 403


def test_the_admin_token_or_a_signature_opens_the_seed_endpoints(strict):
    url, _, _ = strict
    presign = httpx2.get(f"{url}/presigned-url", params={"bucket": "private", "key": "k"}, headers={"Authorization": "Bearer adm1n"})
    assert presign.status_code == 200 and httpx2.get(presign.json()["url"]).content == b"secret"
    assert signed_get(f"{url}/admin/buckets", {}).status_code == 200
    assert signed_get(f"{url}/admin/buckets", {}, secret="wrong").status_code == 403


def test_a_request_signed_more_than_15_minutes_away_is_too_skewed(strict):
    url, client, clock = strict
    url_presigned = client.generate_presigned_url("get_object", Params={"Bucket": "private", "Key": "k"}, ExpiresIn=3600)
    try:
        clock.ahead = 20 * 60  # the server's clock 20 minutes ahead: a header signature made now is from the past
        with pytest.raises(ClientError) as info:
            make_s3_client(url, retries={"max_attempts": 1}).get_object(Bucket="private", Key="k")
        assert info.value.response["Error"]["Code"] == "RequestTimeTooSkewed"
        assert httpx2.get(url_presigned).content == b"secret"  # a presigned URL carries its own window
        clock.ahead = 10 * 60
        assert client.get_object(Bucket="private", Key="k")["Body"].read() == b"secret"
    finally:
        clock.ahead = 0


def test_host_must_be_signed(strict):
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    class HostlessSigV4(SigV4Auth):  # botocore's signer, leaving the host out of what it signs
        def headers_to_sign(self, request):
            signed = super().headers_to_sign(request)
            del signed["host"]
            return signed

    url, _, _ = strict
    for signer, status in ((HostlessSigV4, 403), (SigV4Auth, 200)):
        request = AWSRequest(method="GET", url=f"{url}/private/k", headers={"x-amz-content-sha256": "UNSIGNED-PAYLOAD"})
        signer(Credentials("test-key", "test-secret"), "s3", "us-east-1").add_auth(request)
        r = httpx2.get(request.url, headers=dict(request.headers.items()))
        assert r.status_code == status, r.text
    assert error_code(httpx2.get(request.url, headers={**dict(request.headers.items()), "x-amz-meta-added": "later"})) == "AccessDenied"


def test_sigv2_needs_a_date_and_a_bounded_expiry(strict):
    from botocore.auth import HmacV1Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    url, _, _ = strict
    v2 = make_s3_client(url, signature_version="s3")
    assert v2.get_object(Bucket="private", Key="k")["Body"].read() == b"secret"  # botocore's SigV2 passes
    request = AWSRequest(method="GET", url=f"{url}/private/k")
    HmacV1Auth(Credentials("test-key", "test-secret")).add_auth(request)
    headers = {k: v for k, v in request.headers.items() if k.lower() != "date"}
    r = httpx2.get(f"{url}/private/k", headers=headers)
    assert r.status_code == 403 and "Date" in r.text
    forever = v2.generate_presigned_url("get_object", Params={"Bucket": "private", "Key": "k"}, ExpiresIn=31 * 365 * 24 * 3600)
    r = httpx2.get(forever)
    assert r.status_code == 403 and "7 days" in r.text
    week = v2.generate_presigned_url("get_object", Params={"Bucket": "private", "Key": "k"}, ExpiresIn=3600)
    assert httpx2.get(week).content == b"secret"


# --- signed streaming uploads (STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]) ---
# The seed request is signed by botocore's SigV4 signer; the chunk chain follows AWS's documented algorithm, written
# here on its own and checked against AWS's published example before it is trusted.


def chain_link(key: bytes, amz_date: str, scope: str, previous: str, kind: str, *hashes: str) -> str:
    import hashlib
    import hmac

    text = "\n".join([f"AWS4-HMAC-SHA256-{kind}", amz_date, scope, previous, *hashes])
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


def sigv4_key(secret: str, date: str) -> bytes:
    import hashlib
    import hmac

    key = f"AWS4{secret}".encode()
    for part in (date, "us-east-1", "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def test_the_chunk_chain_matches_aws_published_example():
    """AWS's sigv4-streaming "Example: PUT Object": 64 KiB then 1 KiB of 'a', from its seed signature; the server's
    own chain must agree link by link."""
    import hashlib

    from mockpanel.servers.s3.signing import ChunkSignatures

    key = sigv4_key("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "20130524")
    scope = "20130524/us-east-1/s3/aws4_request"
    previous = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
    server = ChunkSignatures(key, "20130524T000000Z", scope, previous, trailer=False)
    published = ["ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
                 "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
                 "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9"]
    for data, expected in zip((b"a" * 65536, b"a" * 1024, b""), published):
        digest = hashlib.sha256(data).hexdigest()
        previous = chain_link(key, "20130524T000000Z", scope, previous, "PAYLOAD", hashlib.sha256(b"").hexdigest(), digest)
        assert previous == expected
        server.chunk(expected, digest)


def streaming_put(url: str, path: str, chunks: list[bytes], *, trailer: bool = False, tamper: str = "",
                  secret: str = "test-secret") -> httpx2.Response:
    """A signed streaming upload as the SDKs send it, then altered as `tamper` says after signing."""
    import base64
    import hashlib
    import zlib

    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    payload = b"".join(chunks)
    mode = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD" + ("-TRAILER" if trailer else "")
    headers = {"content-encoding": "aws-chunked", "x-amz-content-sha256": mode,
               "x-amz-decoded-content-length": str(len(payload))}
    if trailer:
        headers["x-amz-trailer"] = "x-amz-checksum-crc32"
    request = AWSRequest(method="PUT", url=url + path, headers=headers)
    SigV4Auth(Credentials("test-key", secret), "s3", "us-east-1").add_auth(request)
    amz_date = request.headers["X-Amz-Date"]
    scope = f"{amz_date[:8]}/us-east-1/s3/aws4_request"
    previous = request.headers["Authorization"].rsplit("Signature=", 1)[1]
    key = sigv4_key(secret, amz_date[:8])
    wire = bytearray()
    for data in [*chunks, b""]:
        previous = chain_link(key, amz_date, scope, previous, "PAYLOAD", hashlib.sha256(b"").hexdigest(),
                              hashlib.sha256(data).hexdigest())
        sent = data.replace(b"a", b"b", 1) if tamper == "chunk" and data is chunks[-1] else data
        extension = b"" if tamper == "unsigned" else f";chunk-signature={previous}".encode()
        wire += f"{len(data):x}".encode() + extension + b"\r\n" + sent + (b"\r\n" if data else b"")
    if trailer:
        crc = base64.b64encode(zlib.crc32(payload).to_bytes(4, "big")).decode()
        line = f"x-amz-checksum-crc32:{crc}"
        signature = chain_link(key, amz_date, scope, previous, "TRAILER", hashlib.sha256(f"{line}\n".encode()).hexdigest())
        if tamper == "trailer":
            signature = signature[::-1]
        wire += f"{line}\r\nx-amz-trailer-signature:{signature}\r\n".encode()
    wire += b"\r\n"
    return httpx2.put(url + path, content=bytes(wire), headers=dict(request.headers.items()))


def test_signed_streaming_uploads_are_checked_chunk_by_chunk(strict):
    url, client, _ = strict
    chunks = [b"a" * 70000, b"a" * 1024]
    for trailer in (False, True):
        r = streaming_put(url, "/private/streamed", chunks, trailer=trailer)
        assert r.status_code == 200, r.text
        assert client.get_object(Bucket="private", Key="streamed")["Body"].read() == b"".join(chunks)
    if_stored = client.head_object(Bucket="private", Key="streamed")["ETag"]
    for tamper, trailer in (("chunk", False), ("chunk", True), ("unsigned", False), ("trailer", True)):
        r = streaming_put(url, "/private/streamed", [b"a" * 100, b"a" * 50], trailer=trailer, tamper=tamper)
        assert r.status_code == 403 and error_code(r) == "SignatureDoesNotMatch", (tamper, trailer, r.text)
        r = streaming_put(url, "/private/new-key", [b"a" * 10], trailer=trailer, tamper=tamper)
        assert r.status_code == 403, (tamper, r.text)
    assert streaming_put(url, "/private/streamed", [b"a"], secret="wrong").status_code == 403
    assert client.head_object(Bucket="private", Key="streamed")["ETag"] == if_stored  # nothing stored
    assert "new-key" not in [o["Key"] for o in client.list_objects_v2(Bucket="private").get("Contents", [])]
    assert httpx2.get(f"{url}/health").status_code == 200
