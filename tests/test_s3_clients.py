"""The S3 mock as the seed's curl, the aws cli, presigned URLs, https and a data directory see it."""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx2
import pytest
from botocore.exceptions import ClientError

from conftest import S3_KEYS, make_s3_client, self_signed_cert
from mockpanel.testing import RunningHub, settings_for


def curl(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["curl", "-s", "-S", *args], capture_output=True, cwd=cwd, timeout=30)


# --- the seed's examples, as written (with the port of the running server) ---


def test_seed_curl_examples(s3_url, tmp_path):
    image = tmp_path / "test_image.jpg"
    image.write_bytes(b"\xff\xd8\xff\xe0 fake jpeg bytes \x00\x01\x02" * 50)
    # Upload object with the seed's multipart form: the file is stored, not the form.
    r = curl("-X", "PUT", f"{s3_url}/test-bucket/image.jpg", "-F", "file=@test_image.jpg", "-w", "%{http_code}", cwd=tmp_path)
    assert r.stdout.endswith(b"200"), r
    # Download object
    r = curl(f"{s3_url}/test-bucket/image.jpg", "-o", "downloaded.jpg", cwd=tmp_path)
    assert r.returncode == 0 and (tmp_path / "downloaded.jpg").read_bytes() == image.read_bytes()
    head = httpx2.head(f"{s3_url}/test-bucket/image.jpg")
    assert head.headers["content-type"] == "image/jpeg" and int(head.headers["content-length"]) == len(image.read_bytes())
    # Admin: list buckets, list objects
    buckets = json.loads(curl(f"{s3_url}/admin/buckets").stdout)["buckets"]
    assert [(b["name"], b["objects"]) for b in buckets] == [("test-bucket", 1)]
    objects = json.loads(curl(f"{s3_url}/admin/objects/test-bucket").stdout)["objects"]
    assert objects[0]["key"] == "image.jpg" and objects[0]["size"] == len(image.read_bytes())
    # Presigned URL, fetched with plain curl
    presigned = json.loads(curl(f"{s3_url}/presigned-url?bucket=test-bucket&key=image.jpg&expires_in=3600").stdout)
    assert presigned["expires_in"] == 3600
    r = curl(presigned["url"], "-o", "via-presigned.jpg", "-w", "%{http_code}", cwd=tmp_path)
    assert r.stdout == b"200" and (tmp_path / "via-presigned.jpg").read_bytes() == image.read_bytes()
    # Delete object
    r = curl("-X", "DELETE", f"{s3_url}/test-bucket/image.jpg", "-w", "%{http_code}")
    assert r.stdout == b"204"
    assert httpx2.get(f"{s3_url}/test-bucket/image.jpg").status_code == 404
    # Raw-body PUT works too (curl -T)
    r = curl("-T", str(image), f"{s3_url}/test-bucket/raw.jpg", "-w", "%{http_code}")
    assert r.stdout.endswith(b"200")
    assert httpx2.get(f"{s3_url}/test-bucket/raw.jpg").content == image.read_bytes()
    # Health, docs, clear all data
    assert json.loads(curl(f"{s3_url}/health").stdout)["status"] == "healthy"
    assert b"swagger" in curl(f"{s3_url}/docs").stdout.lower()
    assert json.loads(curl("-X", "DELETE", f"{s3_url}/admin/reset").stdout)["status"] == "reset"
    assert json.loads(curl(f"{s3_url}/admin/buckets").stdout)["buckets"] == []


def test_server_side_encryption_via_curl(s3_url):
    r = httpx2.put(f"{s3_url}/sse-bucket/k", content=b"x", headers={"x-amz-server-side-encryption": "aws:kms"})
    assert r.headers["x-amz-server-side-encryption"] == "aws:kms"
    assert httpx2.get(f"{s3_url}/sse-bucket/k").headers["x-amz-server-side-encryption"] == "aws:kms"
    bad = httpx2.put(f"{s3_url}/sse-bucket/k", content=b"x", headers={"x-amz-server-side-encryption": "ROT13"})
    assert bad.status_code == 400 and "<Code>InvalidArgument</Code>" in bad.text


def test_admin_objects_of_missing_bucket_is_404_json(s3_url):
    r = httpx2.get(f"{s3_url}/admin/objects/nothing-here")
    assert r.status_code == 404 and "does not exist" in r.json()["detail"]


def test_presigned_url_endpoint_validates_input(s3_url):
    assert httpx2.get(f"{s3_url}/presigned-url", params={"bucket": "b"}).status_code == 422
    assert httpx2.get(f"{s3_url}/presigned-url", params={"bucket": "bkt", "key": "k", "expires_in": "0"}).status_code == 422
    r = httpx2.get(f"{s3_url}/presigned-url", params={"bucket": "bkt", "key": "k", "method": "PUT"})
    url = r.json()["url"]
    # A presigned request is a signed one: like S3, it does not create a missing bucket.
    assert httpx2.put(url, content=b"too early").status_code == 404
    assert httpx2.put(f"{s3_url}/bkt").status_code == 200
    assert httpx2.put(url, content=b"uploaded through a presigned PUT").status_code == 200
    assert httpx2.get(f"{s3_url}/bkt/k").content == b"uploaded through a presigned PUT"


def test_presigned_url_base_setting():
    with RunningHub(settings_for(["s3"], {"s3": {"presigned_url_base": "http://localhost:9999"}})) as running:
        url = httpx2.get(f"{running.urls['s3']}/presigned-url", params={"bucket": "bkt", "key": "k"}).json()["url"]
    assert url.startswith("http://localhost:9999/bkt/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&")


# --- presigned URLs expire ---


class ServerClock:
    """The S3 server's wall clock, moved forward by the test instead of waiting for time to pass."""

    def __init__(self) -> None:
        self.ahead = 0.0

    def __call__(self) -> float:
        return time.time() + self.ahead


@pytest.fixture
def clocked_s3():
    clock = ServerClock()
    with RunningHub(settings_for(["s3"]), clock=clock) as running:
        yield running.urls["s3"], clock


@pytest.mark.parametrize("signature_version", ["s3", "s3v4"])
def test_presigned_urls_work_until_they_expire(clocked_s3, signature_version):
    s3_url, clock = clocked_s3
    s3 = make_s3_client(s3_url, signature_version=signature_version)
    s3.create_bucket(Bucket="presign")
    s3.put_object(Bucket="presign", Key="doc.txt", Body=b"secret document")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": "presign", "Key": "doc.txt"}, ExpiresIn=120)
    assert ("Signature=" in url and "AWSAccessKeyId=" in url) if signature_version == "s3" else "X-Amz-Signature=" in url
    assert httpx2.get(url).content == b"secret document"
    clock.ahead = 110
    assert httpx2.get(url).status_code == 200  # still inside its 120 s
    clock.ahead = 125
    r = httpx2.get(url)
    assert r.status_code == 403
    assert "<Code>AccessDenied</Code>" in r.text and "Request has expired" in r.text


def test_presigned_put_from_the_seed_endpoint_expires(clocked_s3):
    s3_url, clock = clocked_s3
    httpx2.put(f"{s3_url}/bkt")
    url = httpx2.get(f"{s3_url}/presigned-url", params={"bucket": "bkt", "key": "late", "method": "PUT", "expires_in": 60}).json()["url"]
    clock.ahead = 61
    r = httpx2.put(url, content=b"too late")
    assert r.status_code == 403 and "Request has expired" in r.text
    assert httpx2.get(f"{s3_url}/bkt/late").status_code == 404


def test_cors_preflight_for_browser_uploads(s3_url):
    r = httpx2.options(f"{s3_url}/bkt/k", headers={"Origin": "http://localhost:3000", "Access-Control-Request-Method": "PUT",
                                                    "Access-Control-Request-Headers": "content-type"})
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] in ("*", "http://localhost:3000")
    assert "PUT" in r.headers["access-control-allow-methods"]


# --- signature verification ---


@pytest.fixture(scope="module")
def verifying_s3():
    with RunningHub(settings_for(["s3"], {"s3": {"verify_signatures": "true", "access_keys": "test-key:test-secret,AKIAOTHER:other-secret"}})) as running:
        yield running.urls["s3"]


@pytest.mark.parametrize("signature_version", ["s3", "s3v4"])
def test_signatures_verified_when_enabled(verifying_s3, signature_version):
    good = make_s3_client(verifying_s3, signature_version=signature_version)
    bucket = f"verified-{signature_version.replace('3', 'x')}"
    good.create_bucket(Bucket=bucket)
    good.put_object(Bucket=bucket, Key="odd key/with+plus?.txt", Body=b"ok", Metadata={"m": "v"})
    assert good.get_object(Bucket=bucket, Key="odd key/with+plus?.txt")["Body"].read() == b"ok"
    assert [o["Key"] for o in good.list_objects_v2(Bucket=bucket, Prefix="odd key/")["Contents"]] == ["odd key/with+plus?.txt"]
    url = good.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "odd key/with+plus?.txt"}, ExpiresIn=60)
    assert httpx2.get(url).content == b"ok"
    import boto3

    wrong = boto3.client("s3", endpoint_url=verifying_s3, aws_access_key_id="test-key", aws_secret_access_key="wrong-secret",
                         region_name="us-east-1", config=__import__("botocore.config").config.Config(signature_version=signature_version))
    with pytest.raises(ClientError) as info:
        wrong.list_objects_v2(Bucket=bucket)
    assert info.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
    unknown = boto3.client("s3", endpoint_url=verifying_s3, aws_access_key_id="AKIANOBODY", aws_secret_access_key="x", region_name="us-east-1")
    with pytest.raises(ClientError) as info:
        unknown.list_buckets()
    assert info.value.response["Error"]["Code"] == "InvalidAccessKeyId"
    tampered = url.replace("with%2Bplus", "with%2Bminus")
    assert httpx2.get(tampered).status_code == 403


def test_second_key_pair_and_seed_endpoint_presign_verify(verifying_s3):
    import boto3

    other = boto3.client("s3", endpoint_url=verifying_s3, aws_access_key_id="AKIAOTHER", aws_secret_access_key="other-secret", region_name="us-east-1")
    other.create_bucket(Bucket="second-pair")
    other.put_object(Bucket="second-pair", Key="k", Body=b"v")
    # with checks on, the seed's presign endpoint needs a signed request itself (else it would sign for anyone)
    anonymous = httpx2.get(f"{verifying_s3}/presigned-url", params={"bucket": "second-pair", "key": "k"})
    assert anonymous.status_code == 403 and "<Code>AccessDenied</Code>" in anonymous.text
    url = signed_get(f"{verifying_s3}/presigned-url", {"bucket": "second-pair", "key": "k"}).json()["url"]
    assert httpx2.get(url).content == b"v"


def signed_get(url: str, params: dict[str, str], access_key: str = "test-key", secret: str = "test-secret") -> httpx2.Response:
    """A GET signed by botocore's own SigV4 signer (for the seed's convenience endpoints, which boto3 has no call for)."""
    from urllib.parse import urlencode

    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    request = AWSRequest(method="GET", url=f"{url}?{urlencode(params)}", headers={"x-amz-content-sha256": "UNSIGNED-PAYLOAD"})
    SigV4Auth(Credentials(access_key, secret), "s3", "us-east-1").add_auth(request)
    return httpx2.get(request.url, headers=dict(request.headers.items()))


# --- https: where boto3 sends aws-chunked bodies with trailing checksums ---


@pytest.fixture(scope="module")
def tls_s3(tmp_path_factory):
    cert, key = self_signed_cert(tmp_path_factory.mktemp("tls"))
    with RunningHub(settings_for(["s3"], {"s3": {"tls_cert": str(cert), "tls_key": str(key)}})) as running:
        yield running, cert


def test_boto3_over_https_sends_aws_chunked_and_it_is_decoded(tls_s3):
    running, cert = tls_s3
    url = running.urls["s3"]
    assert url.startswith("https://")
    s3 = make_s3_client(url, verify=str(cert))
    s3.create_bucket(Bucket="secure")
    body = os.urandom(300_000)
    put = s3.put_object(Bucket="secure", Key="blob", Body=body, ContentEncoding="gzip")
    entry = [e for e in running.run(running.hub.journal.entries) if e.method == "PUT" and e.path == "/secure/blob"][-1]
    sent = dict(entry.request_headers)
    assert "aws-chunked" in sent["content-encoding"] and sent["x-amz-content-sha256"] == "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
    got = s3.get_object(Bucket="secure", Key="blob", ChecksumMode="ENABLED")
    assert got["Body"].read() == body
    assert got["ContentEncoding"] == "gzip"  # aws-chunked is never stored as the object's encoding
    assert got["ChecksumCRC32"] == put["ChecksumCRC32"]
    s3.upload_file(__file__, "secure", "uploaded.py")
    assert s3.get_object(Bucket="secure", Key="uploaded.py")["Body"].read() == Path(__file__).read_bytes()


def test_aws_chunked_with_a_wrong_trailer_checksum_is_refused(tls_s3):
    running, cert = tls_s3
    url = running.urls["s3"]
    tls = ssl.create_default_context(cafile=str(cert))
    body = b"5\r\nhello\r\n0\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n"
    r = httpx2.put(f"{url}/secure/bad", content=body, verify=tls, headers={
        "content-encoding": "aws-chunked", "x-amz-content-sha256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
        "x-amz-trailer": "x-amz-checksum-crc32", "x-amz-decoded-content-length": "5"})
    assert r.status_code == 400 and "<Code>BadDigest</Code>" in r.text
    broken = httpx2.put(f"{url}/secure/bad", content=b"zz\r\nhello", verify=tls, headers={"content-encoding": "aws-chunked"})
    assert broken.status_code == 400 and "<Code>IncompleteBody</Code>" in broken.text
    assert httpx2.get(f"{url}/secure/bad", verify=tls).status_code == 404


# --- aws cli ---


def aws(endpoint: str, *args: str, ca_bundle: Path | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "AWS_ACCESS_KEY_ID": S3_KEYS["aws_access_key_id"], "AWS_SECRET_ACCESS_KEY": S3_KEYS["aws_secret_access_key"],
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"}
    extra = ["--ca-bundle", str(ca_bundle)] if ca_bundle else []
    cmd = [sys.executable, "-m", "awscli", "--endpoint-url", endpoint, *extra, *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=cwd, timeout=120)


def _aws_cli_round_trip(endpoint: str, tmp_path: Path, ca_bundle: Path | None = None) -> None:
    src = tmp_path / "src"
    (src / "nested").mkdir(parents=True)
    (src / "a.txt").write_text("alpha")
    (src / "nested" / "b b.txt").write_text("bravo")
    (src / "big.bin").write_bytes(os.urandom(9 * 1024 * 1024))  # the cli uploads this in parts
    assert aws(endpoint, "s3", "mb", "s3://cli-bucket", ca_bundle=ca_bundle).returncode == 0
    r = aws(endpoint, "s3", "cp", "--recursive", str(src), "s3://cli-bucket/data/", ca_bundle=ca_bundle)
    assert r.returncode == 0, r.stderr
    listing = aws(endpoint, "s3", "ls", "--recursive", "s3://cli-bucket/", ca_bundle=ca_bundle).stdout
    assert "data/a.txt" in listing and "data/nested/b b.txt" in listing and "data/big.bin" in listing
    r = aws(endpoint, "s3", "sync", "s3://cli-bucket/data/", str(tmp_path / "back"), ca_bundle=ca_bundle)
    assert r.returncode == 0, r.stderr
    for path in src.rglob("*"):
        if path.is_file():
            assert (tmp_path / "back" / path.relative_to(src)).read_bytes() == path.read_bytes()
    head = json.loads(aws(endpoint, "s3api", "head-object", "--bucket", "cli-bucket", "--key", "data/big.bin", ca_bundle=ca_bundle).stdout)
    assert head["ContentLength"] == 9 * 1024 * 1024 and head["ETag"].endswith('-2"')
    r = aws(endpoint, "s3api", "get-object", "--bucket", "cli-bucket", "--key", "missing", str(tmp_path / "x"), ca_bundle=ca_bundle)
    assert r.returncode != 0 and "NoSuchKey" in r.stderr
    assert aws(endpoint, "s3", "rm", "--recursive", "s3://cli-bucket/", ca_bundle=ca_bundle).returncode == 0
    assert aws(endpoint, "s3", "rb", "s3://cli-bucket", ca_bundle=ca_bundle).returncode == 0


def test_aws_cli_over_http(s3_url, tmp_path):
    _aws_cli_round_trip(s3_url, tmp_path)


def test_aws_cli_over_https(tls_s3, tmp_path):
    running, cert = tls_s3
    _aws_cli_round_trip(running.urls["s3"], tmp_path, ca_bundle=cert)


# --- persistence ---


def test_restart_with_a_data_dir_keeps_everything(tmp_path):
    data = tmp_path / "s3-data"
    keys = ["plain", "../../outside", "dir/ü nicode+%?.txt", "trailing/"]
    with RunningHub(settings_for(["s3"], {"s3": {"data_dir": str(data)}})) as running:
        s3 = make_s3_client(running.urls["s3"])
        s3.create_bucket(Bucket="kept", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        for key in keys:
            s3.put_object(Bucket="kept", Key=key, Body=key.encode() * 1000, Metadata={"k": "v"}, ContentType="text/x-kept")
        up = s3.create_multipart_upload(Bucket="kept", Key="unfinished")["UploadId"]
        s3.upload_part(Bucket="kept", Key="unfinished", UploadId=up, PartNumber=1, Body=b"part one")
    with RunningHub(settings_for(["s3"], {"s3": {"data_dir": str(data)}})) as running:
        s3 = make_s3_client(running.urls["s3"])
        assert s3.get_bucket_location(Bucket="kept")["LocationConstraint"] == "eu-west-1"
        assert sorted(o["Key"] for o in s3.list_objects_v2(Bucket="kept")["Contents"]) == sorted(keys)
        for key in keys:
            got = s3.get_object(Bucket="kept", Key=key)
            assert got["Body"].read() == key.encode() * 1000 and got["Metadata"] == {"k": "v"} and got["ContentType"] == "text/x-kept"
        parts = s3.list_parts(Bucket="kept", Key="unfinished", UploadId=up)["Parts"]
        assert [p["Size"] for p in parts] == [8]
    # nothing was written outside the data dir, whatever the keys said
    assert not (tmp_path / "outside").exists()
    assert all(str(p.resolve()).startswith(str(data.resolve())) for p in data.rglob("*"))


def test_leftovers_of_a_crash_are_cleaned_at_start(tmp_path):
    data = tmp_path / "s3-data"
    with RunningHub(settings_for(["s3"], {"s3": {"data_dir": str(data)}})) as running:
        s3 = make_s3_client(running.urls["s3"])
        s3.create_bucket(Bucket="crashy")
        s3.put_object(Bucket="crashy", Key="good", Body=b"committed")
    (data / "data" / "orphan-body").write_bytes(b"a body whose metadata never committed")
    (data / "tmp" / "half-written.json").write_text("{")
    with RunningHub(settings_for(["s3"], {"s3": {"data_dir": str(data)}})) as running:
        s3 = make_s3_client(running.urls["s3"])
        assert s3.get_object(Bucket="crashy", Key="good")["Body"].read() == b"committed"
        assert [o["Key"] for o in s3.list_objects_v2(Bucket="crashy")["Contents"]] == ["good"]
    assert not (data / "data" / "orphan-body").exists() and not list((data / "tmp").iterdir())


# --- configuration ---


def test_auto_create_settings_and_preconfigured_buckets():
    with RunningHub(settings_for(["s3"], {"s3": {"auto_create_buckets": "never", "buckets": "pre-made,other-one"}})) as running:
        url = running.urls["s3"]
        assert httpx2.put(f"{url}/not-made/k", content=b"x").status_code == 404
        assert httpx2.put(f"{url}/pre-made/k", content=b"x").status_code == 200
        names = [b["name"] for b in httpx2.get(f"{url}/admin/buckets").json()["buckets"]]
        assert names == ["other-one", "pre-made"]
        httpx2.delete(f"{url}/admin/reset")
        assert [b["objects"] for b in httpx2.get(f"{url}/admin/buckets").json()["buckets"]] == [0, 0]
    with RunningHub(settings_for(["s3"], {"s3": {"auto_create_buckets": "always"}})) as running:
        s3 = make_s3_client(running.urls["s3"])
        s3.put_object(Bucket="made-on-write", Key="k", Body=b"x")
        assert s3.head_bucket(Bucket="made-on-write")["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_virtual_hosted_style(s3_url):
    # BUCKET.localhost addresses a bucket; the request goes to 127.0.0.1 with that Host, as a resolver would send it.
    port = s3_url.rsplit(":", 1)[1]
    r = httpx2.put(f"{s3_url}/", headers={"Host": f"vhost-bucket.localhost:{port}"})
    assert r.status_code == 200
    httpx2.put(f"{s3_url}/file.txt", headers={"Host": f"vhost-bucket.localhost:{port}"}, content=b"virtual")
    assert httpx2.get(f"{s3_url}/vhost-bucket/file.txt").content == b"virtual"
    listing = httpx2.get(f"{s3_url}/?list-type=2", headers={"Host": f"vhost-bucket.localhost:{port}"})
    assert "<Key>file.txt</Key>" in listing.text
