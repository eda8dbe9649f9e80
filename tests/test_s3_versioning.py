"""Versioning as S3 has it, through boto3 and the aws cli: version ids, reads and deletes by version, delete markers,
suspension's "null" version, ListObjectVersions with markers, copies from a version, and versions kept across
restarts (and kill -9) with --s3-data-dir."""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time

import httpx2
import pytest
from botocore.exceptions import ClientError

from conftest import make_s3_client
from test_crash_safety import start_s3


def enable(s3, bucket: str, status: str = "Enabled") -> None:
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": status})


def test_versions_reads_and_delete_markers(s3, bucket):
    assert "Status" not in s3.get_bucket_versioning(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="doc", Body=b"before versioning")
    enable(s3, bucket)
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    v1 = s3.put_object(Bucket=bucket, Key="doc", Body=b"one")["VersionId"]
    v2 = s3.put_object(Bucket=bucket, Key="doc", Body=b"two")["VersionId"]
    assert v1 != v2 and "null" not in (v1, v2)
    assert s3.get_object(Bucket=bucket, Key="doc")["Body"].read() == b"two"
    assert s3.get_object(Bucket=bucket, Key="doc", VersionId=v1)["Body"].read() == b"one"
    assert s3.get_object(Bucket=bucket, Key="doc", VersionId="null")["Body"].read() == b"before versioning"
    assert s3.head_object(Bucket=bucket, Key="doc")["VersionId"] == v2

    deleted = s3.delete_object(Bucket=bucket, Key="doc")
    assert deleted["DeleteMarker"] is True
    with pytest.raises(ClientError) as gone:
        s3.get_object(Bucket=bucket, Key="doc")
    assert gone.value.response["Error"]["Code"] == "NoSuchKey"
    assert gone.value.response["ResponseMetadata"]["HTTPHeaders"]["x-amz-delete-marker"] == "true"
    with pytest.raises(ClientError) as marker:
        s3.head_object(Bucket=bucket, Key="doc", VersionId=deleted["VersionId"])
    assert marker.value.response["ResponseMetadata"]["HTTPStatusCode"] == 405
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0

    listed = s3.list_object_versions(Bucket=bucket)
    assert [(v["VersionId"], v["IsLatest"]) for v in listed["Versions"]] == [(v2, False), (v1, False), ("null", False)]
    assert [(m["VersionId"], m["IsLatest"]) for m in listed["DeleteMarkers"]] == [(deleted["VersionId"], True)]

    s3.delete_object(Bucket=bucket, Key="doc", VersionId=deleted["VersionId"])  # removing the marker brings it back
    assert s3.get_object(Bucket=bucket, Key="doc")["Body"].read() == b"two"
    s3.delete_object(Bucket=bucket, Key="doc", VersionId=v2)  # removing the current version: the previous one is current
    assert s3.get_object(Bucket=bucket, Key="doc")["Body"].read() == b"one"
    with pytest.raises(ClientError) as missing:
        s3.get_object(Bucket=bucket, Key="doc", VersionId=v2)
    assert missing.value.response["Error"]["Code"] == "NoSuchVersion"

    copied = s3.copy_object(Bucket=bucket, Key="copy", CopySource={"Bucket": bucket, "Key": "doc", "VersionId": "null"})
    assert copied["CopySourceVersionId"] == "null" and copied["VersionId"]
    assert s3.get_object(Bucket=bucket, Key="copy")["Body"].read() == b"before versioning"

    with pytest.raises(ClientError) as not_empty:
        for key in ("doc", "copy"):
            for v in s3.list_object_versions(Bucket=bucket, Prefix=key).get("Versions", []):
                if v["Key"] == key and v["IsLatest"]:
                    s3.delete_object(Bucket=bucket, Key=key)
        s3.delete_bucket(Bucket=bucket)  # versions and markers keep a bucket
    assert not_empty.value.response["Error"]["Code"] == "BucketNotEmpty"


def test_suspended_versioning_writes_the_null_version(s3, bucket):
    enable(s3, bucket)
    kept = s3.put_object(Bucket=bucket, Key="k", Body=b"kept")["VersionId"]
    enable(s3, bucket, "Suspended")
    assert s3.put_object(Bucket=bucket, Key="k", Body=b"first null")["VersionId"] == "null"
    s3.put_object(Bucket=bucket, Key="k", Body=b"second null")  # replaces the null version
    versions = s3.list_object_versions(Bucket=bucket)["Versions"]
    assert [(v["VersionId"], v["IsLatest"]) for v in versions] == [("null", True), (kept, False)]
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"second null"
    marker = s3.delete_object(Bucket=bucket, Key="k")
    assert marker["DeleteMarker"] is True and marker["VersionId"] == "null"
    assert s3.get_object(Bucket=bucket, Key="k", VersionId=kept)["Body"].read() == b"kept"


def test_list_object_versions_pages_with_markers_prefix_and_delimiter(s3, bucket):
    enable(s3, bucket)
    expected = []
    for key in ("a/1", "a/2", "b", "c"):
        ids = [s3.put_object(Bucket=bucket, Key=key, Body=key.encode() * n)["VersionId"] for n in (1, 2, 3)]
        expected += [(key, v) for v in reversed(ids)]
    seen = []
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, PaginationConfig={"PageSize": 5}):
        seen += [(v["Key"], v["VersionId"]) for v in page.get("Versions", [])]
    assert seen == expected  # by key, newest first, nothing twice or skipped across pages
    grouped = s3.list_object_versions(Bucket=bucket, Delimiter="/")
    assert [p["Prefix"] for p in grouped["CommonPrefixes"]] == ["a/"] and {v["Key"] for v in grouped["Versions"]} == {"b", "c"}
    only_a = s3.list_object_versions(Bucket=bucket, Prefix="a/")
    assert len(only_a["Versions"]) == 6 and {v["Key"] for v in only_a["Versions"]} == {"a/1", "a/2"}
    assert s3.list_object_versions(Bucket=bucket, MaxKeys=0)["IsTruncated"] is False


def test_the_aws_cli_sees_the_versions(s3_url, s3, bucket, tmp_path):
    enable(s3, bucket)
    for body in (b"x", b"y"):
        s3.put_object(Bucket=bucket, Key="cli.txt", Body=body)
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "test-key", "AWS_SECRET_ACCESS_KEY": "test-secret", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_CONFIG_FILE": str(tmp_path / "none"), "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none")}
    done = subprocess.run([sys.executable, "-m", "awscli", "s3api", "list-object-versions", "--bucket", bucket, "--endpoint-url", s3_url],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert [v["IsLatest"] for v in json.loads(done.stdout)["Versions"]] == [True, False]


def test_versions_survive_kill_9(tmp_path):
    data_dir = tmp_path / "s3data"
    serve, url = start_s3(data_dir)
    acked: list[tuple[str, str, str]] = []  # (key, version id, md5) acknowledged
    deleted: set[str] = set()  # version ids a DELETE was sent for: kill -9 may land after the delete and before its 204
    lock, stop = threading.Lock(), threading.Event()
    with serve:
        s3 = make_s3_client(url)
        s3.create_bucket(Bucket="versioned")
        enable(s3, "versioned")

        def writer(worker: int) -> None:
            rng = random.Random(worker)
            with httpx2.Client(timeout=10) as client:
                while not stop.is_set():
                    key = f"w{worker}/k{rng.randrange(3)}"
                    try:
                        if acked and rng.random() < 0.2:
                            with lock:
                                mine = [a for a in acked if a[0].startswith(f"w{worker}/") and a[1] not in deleted]
                            if mine:
                                victim = rng.choice(mine)
                                with lock:  # from the moment it is sent, the version need not survive
                                    deleted.add(victim[1])
                                client.delete(f"{url}/versioned/{victim[0]}", params={"versionId": victim[1]})
                                continue
                        body = rng.randbytes(rng.choice([10, 4096, 300 * 1024]))
                        answer = client.put(f"{url}/versioned/{key}", content=body)
                    except httpx2.HTTPError:
                        return
                    if answer.status_code == 200:
                        with lock:
                            acked.append((key, answer.headers["x-amz-version-id"], hashlib.md5(body).hexdigest()))

        threads = [threading.Thread(target=writer, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 20
        while len(acked) < 40 and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(serve.proc.pid, signal.SIGKILL)
        serve.proc.wait(10)
        stop.set()
        for t in threads:
            t.join(20)
    with lock:
        kept = [a for a in acked if a[1] not in deleted]
    assert len(kept) >= 20

    serve, url = start_s3(data_dir)
    with serve:
        s3 = make_s3_client(url)
        versions = {(v["Key"], v["VersionId"]) for page in s3.get_paginator("list_object_versions").paginate(Bucket="versioned")
                    for v in page.get("Versions", [])}
        for key, version_id, digest in kept:
            assert (key, version_id) in versions, f"acknowledged version {key} {version_id} is gone"
            body = s3.get_object(Bucket="versioned", Key=key, VersionId=version_id)["Body"].read()
            assert hashlib.md5(body).hexdigest() == digest
        assert len(list((data_dir / "data").iterdir())) == len(versions)  # no body without its version, none lost
        assert serve.stop() == 0
