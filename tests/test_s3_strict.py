"""S3_STRICT=true: fail locally where production would fail — signatures verified, unsigned requests refused, Content-MD5
or a checksum required where AWS requires one — while the convenience paths still answer."""

from __future__ import annotations

import boto3
import httpx2
import pytest
from botocore.exceptions import ClientError

from conftest import make_s3_client
from mockpanel.testing import RunningHub, settings_for

CORS = {"CORSRules": [{"AllowedOrigins": ["http://app.example"], "AllowedMethods": ["GET"]}]}


@pytest.fixture(scope="module")
def strict():
    with RunningHub(settings_for(["s3"], {"s3": {"strict": "true"}})) as running:
        yield running.urls["s3"]


def without_digests(request, **kwargs):
    for name in list(request.headers):
        if name.lower() == "content-md5" or name.lower().startswith("x-amz-checksum-") or name.lower() == "x-amz-sdk-checksum-algorithm":
            del request.headers[name]


def test_signed_clients_work_and_unsigned_or_wrongly_signed_ones_are_refused(strict):
    s3 = make_s3_client(strict)
    s3.create_bucket(Bucket="strict-bucket")
    s3.put_object(Bucket="strict-bucket", Key="k", Body=b"v")
    assert s3.get_object(Bucket="strict-bucket", Key="k")["Body"].read() == b"v"
    s3.put_bucket_cors(Bucket="strict-bucket", CORSConfiguration=CORS)  # boto3 sends the checksum AWS requires
    s3.delete_objects(Bucket="strict-bucket", Delete={"Objects": [{"Key": "k"}]})

    anonymous = httpx2.get(f"{strict}/strict-bucket/k")
    assert anonymous.status_code == 403 and "<Code>AccessDenied</Code>" in anonymous.text
    wrong = boto3.client("s3", endpoint_url=strict, aws_access_key_id="test-key", aws_secret_access_key="not-the-secret", region_name="us-east-1")
    with pytest.raises(ClientError) as refused:
        wrong.list_objects_v2(Bucket="strict-bucket")
    assert refused.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
    assert httpx2.get(f"{strict}/health").status_code == 200  # convenience paths still answer


def test_a_configuration_without_content_md5_or_checksum_is_refused(strict):
    s3 = make_s3_client(strict)
    s3.create_bucket(Bucket="digests")
    s3.meta.events.register("before-sign.s3.PutBucketCors", without_digests)
    s3.meta.events.register("before-sign.s3.PutBucketTagging", without_digests)
    with pytest.raises(ClientError) as cors:
        s3.put_bucket_cors(Bucket="digests", CORSConfiguration=CORS)
    assert cors.value.response["Error"]["Code"] == "InvalidRequest" and "Content-MD5" in cors.value.response["Error"]["Message"]
    with pytest.raises(ClientError):
        s3.put_bucket_tagging(Bucket="digests", Tagging={"TagSet": [{"Key": "a", "Value": "b"}]})
    with pytest.raises(ClientError):
        make_s3_client(strict).get_bucket_cors(Bucket="digests")  # nothing was stored


def test_without_strict_the_same_request_passes_but_a_wrong_digest_never_does(s3, s3_url):
    s3.create_bucket(Bucket="lenient")
    s3.meta.events.register("before-sign.s3.PutBucketCors", without_digests)
    s3.put_bucket_cors(Bucket="lenient", CORSConfiguration=CORS)
    body = b'<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod></CORSRule></CORSConfiguration>'
    bad = httpx2.put(f"{s3_url}/lenient?cors", content=body, headers={"Content-MD5": "1B2M2Y8AsgTpgAmY7PhCfg=="})
    assert bad.status_code == 400 and "<Code>BadDigest</Code>" in bad.text
