"""Lifecycle rules that act: configured with boto3, applied when the mock's clock is advanced (the control API, as a
test would; the Storage pane's L in the panel tests) — current versions, noncurrent versions, lone delete markers and
incomplete multipart uploads, each by its rule's filter."""

from __future__ import annotations

import httpx2
import pytest
from botocore.exceptions import ClientError

from conftest import make_s3_client
from mockpanel.testing import RunningHub, settings_for


@pytest.fixture
def s3_env():
    with RunningHub(settings_for(["s3"])) as running:
        yield running.urls["s3"], make_s3_client(running.urls["s3"])


def advance(url: str, days: float) -> dict:
    answer = httpx2.post(f"{url}/__mockpanel/s3/clock", json={"advance_days": days})
    answer.raise_for_status()
    return answer.json()


def keys(client, bucket: str) -> list[str]:
    return [o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", [])]


def test_the_upload_is_gone_after_7_days(s3_env):
    url, s3 = s3_env
    s3.create_bucket(Bucket="uploads")
    s3.put_bucket_lifecycle_configuration(Bucket="uploads", LifecycleConfiguration={"Rules": [
        {"ID": "tmp", "Status": "Enabled", "Filter": {"Prefix": "tmp/"}, "Expiration": {"Days": 7},
         "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 2}},
        {"ID": "tagged", "Status": "Enabled", "Filter": {"Tag": {"Key": "scratch", "Value": "yes"}}, "Expiration": {"Days": 1}},
        {"ID": "off", "Status": "Disabled", "Filter": {"Prefix": ""}, "Expiration": {"Days": 1}},
    ]})
    rules = s3.get_bucket_lifecycle_configuration(Bucket="uploads")["Rules"]
    assert [r["ID"] for r in rules] == ["tmp", "tagged", "off"] and rules[0]["Expiration"] == {"Days": 7}
    s3.put_object(Bucket="uploads", Key="tmp/report.csv", Body=b"x")
    s3.put_object(Bucket="uploads", Key="keep/report.csv", Body=b"x")
    s3.put_object(Bucket="uploads", Key="scratch.bin", Body=b"x", Tagging="scratch=yes")
    pending = s3.create_multipart_upload(Bucket="uploads", Key="tmp/big.bin")["UploadId"]
    s3.create_multipart_upload(Bucket="uploads", Key="keep/big.bin")

    assert advance(url, 1)["applied"]["expired"] == 1  # the tagged one
    assert keys(s3, "uploads") == ["keep/report.csv", "tmp/report.csv"]
    assert advance(url, 1.5)["applied"]["uploads_aborted"] == 1
    assert [u["Key"] for u in s3.list_multipart_uploads(Bucket="uploads")["Uploads"]] == ["keep/big.bin"]
    with pytest.raises(ClientError):
        s3.list_parts(Bucket="uploads", Key="tmp/big.bin", UploadId=pending)
    assert advance(url, 4)["applied"]["expired"] == 0  # day 6.5: not yet
    assert advance(url, 1)["applied"]["expired"] == 1  # day 7.5
    assert keys(s3, "uploads") == ["keep/report.csv"]
    s3.delete_bucket_lifecycle(Bucket="uploads")
    with pytest.raises(ClientError) as gone:
        s3.get_bucket_lifecycle_configuration(Bucket="uploads")
    assert gone.value.response["Error"]["Code"] == "NoSuchLifecycleConfiguration"


def test_versions_expire_into_delete_markers_then_noncurrent_versions_and_markers_go(s3_env):
    url, s3 = s3_env
    s3.create_bucket(Bucket="versioned")
    s3.put_bucket_versioning(Bucket="versioned", VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_lifecycle_configuration(Bucket="versioned", LifecycleConfiguration={"Rules": [
        {"ID": "all", "Status": "Enabled", "Filter": {}, "Expiration": {"Days": 30}, "NoncurrentVersionExpiration": {"NoncurrentDays": 10}}]})
    s3.put_object(Bucket="versioned", Key="doc", Body=b"v1")
    s3.put_object(Bucket="versioned", Key="doc", Body=b"v2")  # v1 is noncurrent from now
    advance(url, 11)
    versions = s3.list_object_versions(Bucket="versioned")["Versions"]
    assert [(v["IsLatest"], v["Size"]) for v in versions] == [(True, 2)]  # v1 gone after 10 noncurrent days
    advance(url, 20)  # day 31: the current version expires into a delete marker
    listing = s3.list_object_versions(Bucket="versioned")
    assert keys(s3, "versioned") == [] and listing["DeleteMarkers"][0]["IsLatest"] is True
    advance(url, 11)  # v2 noncurrent 11 days: gone; the delete marker, alone now, goes next
    advance(url, 1)
    listing = s3.list_object_versions(Bucket="versioned")
    assert "Versions" not in listing and "DeleteMarkers" not in listing


def test_the_clock_only_moves_forward_and_bad_rules_say_why(s3_env):
    url, s3 = s3_env
    assert httpx2.post(f"{url}/__mockpanel/s3/clock", json={"advance_days": -1}).status_code == 422
    assert httpx2.post(f"{url}/__mockpanel/s3/clock", json={}).status_code == 422
    s3.create_bucket(Bucket="rules")
    with pytest.raises(ClientError) as refused:
        s3.put_bucket_lifecycle_configuration(Bucket="rules", LifecycleConfiguration={"Rules": [
            {"ID": "x", "Status": "Enabled", "Filter": {}, "Expiration": {"Days": 0}}]})
    assert refused.value.response["Error"]["Code"] == "InvalidArgument"
    clock = httpx2.get(f"{url}/__mockpanel/s3/clock").json()
    assert clock["offset_s"] == 0


def test_what_is_written_after_the_clock_moved_ages_from_then(s3_env):
    url, s3 = s3_env
    s3.create_bucket(Bucket="later")
    s3.put_bucket_lifecycle_configuration(Bucket="later", LifecycleConfiguration={"Rules": [
        {"ID": "week", "Status": "Enabled", "Filter": {}, "Expiration": {"Days": 7}}]})
    advance(url, 30)
    s3.put_object(Bucket="later", Key="fresh", Body=b"x")  # written "on day 30"
    assert advance(url, 1)["applied"]["expired"] == 0 and keys(s3, "later") == ["fresh"]
    assert advance(url, 7)["applied"]["expired"] == 1
