"""The compatibility tier: the S3 mock driven by clients nobody here wrote, each its own implementation of the
protocol, through its public API as a user would — pyarrow's S3FileSystem (the AWS C++ SDK), the MinIO Python SDK
(its own signer, streaming uploads) and obstore (Rust's object_store, async)."""

from __future__ import annotations

import asyncio
import io
import os
import urllib.request

import pytest

from conftest import S3_KEYS, make_s3_client
from mockpanel.testing import RunningHub, settings_for

pa = pytest.importorskip("pyarrow")


@pytest.fixture(scope="module")
def s3():
    settings = settings_for(["s3"], {"s3": {"access_keys": f"{S3_KEYS['aws_access_key_id']}:{S3_KEYS['aws_secret_access_key']}"}})
    with RunningHub(settings) as running:
        yield running.urls["s3"]


def arrow_fs(url: str):
    from pyarrow import fs

    return fs.S3FileSystem(access_key=S3_KEYS["aws_access_key_id"], secret_key=S3_KEYS["aws_secret_access_key"], region="us-east-1",
                           endpoint_override=url.removeprefix("http://"), scheme="http", allow_bucket_creation=True,
                           allow_bucket_deletion=True)


def test_pyarrow_writes_reads_lists_and_deletes_a_partitioned_parquet_dataset(s3):
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq
    from pyarrow import fs

    s3fs = arrow_fs(s3)
    s3fs.create_dir("lake")
    table = pa.table({"year": [2024, 2024, 2025, 2026] * 250, "amount": list(range(1000)), "name": [f"row-{i}" for i in range(1000)]})
    ds.write_dataset(table, "lake/sales", filesystem=s3fs, format="parquet", partitioning=["year"], partitioning_flavor="hive")
    listed = s3fs.get_file_info(fs.FileSelector("lake/sales", recursive=True))
    files = sorted(info.path for info in listed if info.type == fs.FileType.File)
    assert [f.split("/")[2] for f in files] == ["year=2024", "year=2025", "year=2026"]
    back = pq.read_table("lake/sales", filesystem=s3fs, partitioning="hive").sort_by("amount")
    assert back.num_rows == 1000 and back.column("name").to_pylist()[:2] == ["row-0", "row-1"]
    assert sorted(set(back.column("year").to_pylist())) == [2024, 2025, 2026]
    s3fs.delete_dir_contents("lake/sales")  # DeleteObjects with the SDK's CRC64NVME checksum (a 500 before)
    assert [i for i in s3fs.get_file_info(fs.FileSelector("lake", recursive=True)) if i.type == fs.FileType.File] == []


def test_pyarrow_multipart_upload_and_random_access_reads(s3):
    s3fs = arrow_fs(s3)
    s3fs.create_dir("big")
    payload = os.urandom(1024 * 1024) * 12  # 12 MiB: the SDK uploads it in parts
    with s3fs.open_output_stream("big/blob.bin") as out:
        for start in range(0, len(payload), 3 * 1024 * 1024):
            out.write(payload[start:start + 3 * 1024 * 1024])
    head = make_s3_client(s3).head_object(Bucket="big", Key="blob.bin")
    assert head["ContentLength"] == len(payload) and head["ETag"].strip('"').endswith("-3") or "-" in head["ETag"]
    with s3fs.open_input_file("big/blob.bin") as stream:
        assert stream.size() == len(payload)
        for offset, length in ((0, 10), (5 * 1024 * 1024 - 3, 7), (len(payload) - 100, 100)):
            assert stream.read_at(length, offset) == payload[offset:offset + length]


def test_minio_sdk_streams_uploads_copies_presigns_and_deletes_in_bulk(s3):
    from minio import Minio
    from minio.commonconfig import CopySource
    from minio.deleteobjects import DeleteObject

    client = Minio(s3.removeprefix("http://"), access_key=S3_KEYS["aws_access_key_id"], secret_key=S3_KEYS["aws_secret_access_key"],
                   secure=False, region="us-east-1")
    client.make_bucket("minio-bucket")
    assert client.bucket_exists("minio-bucket")
    small = b"hello from minio"
    client.put_object("minio-bucket", "small.txt", io.BytesIO(small), len(small), content_type="text/plain", metadata={"x-amz-meta-owner": "me"})
    big = os.urandom(6 * 1024 * 1024) + b"tail"
    client.put_object("minio-bucket", "big.bin", io.BytesIO(big), -1, part_size=5 * 1024 * 1024)  # unknown length: multipart
    assert client.get_object("minio-bucket", "big.bin").read() == big
    stat = client.stat_object("minio-bucket", "small.txt")
    assert stat.size == len(small) and stat.metadata.get("x-amz-meta-owner") == "me"
    client.copy_object("minio-bucket", "copy.txt", CopySource("minio-bucket", "small.txt"))
    assert client.get_object("minio-bucket", "copy.txt").read() == small
    url = client.presigned_get_object("minio-bucket", "small.txt")
    with urllib.request.urlopen(url) as answer:
        assert answer.read() == small
    errors = list(client.remove_objects("minio-bucket", [DeleteObject(n) for n in ("small.txt", "big.bin", "copy.txt")]))
    assert errors == [] and list(client.list_objects("minio-bucket", recursive=True)) == []


def test_obstore_async_put_get_range_list_delete(s3):
    import obstore
    from obstore.store import S3Store

    make_s3_client(s3).create_bucket(Bucket="rusty")
    store = S3Store("rusty", endpoint=s3, access_key_id=S3_KEYS["aws_access_key_id"], secret_access_key=S3_KEYS["aws_secret_access_key"],
                    region="us-east-1", client_options={"allow_http": True}, virtual_hosted_style_request=False)

    async def scenario() -> None:
        await obstore.put_async(store, "dir/a.txt", b"0123456789")
        await obstore.put_async(store, "dir/b.bin", os.urandom(7 * 1024 * 1024))  # large enough for its multipart writer
        got = await obstore.get_async(store, "dir/a.txt")
        assert bytes(await got.bytes_async()) == b"0123456789"
        assert bytes(await obstore.get_range_async(store, "dir/a.txt", start=2, end=5)) == b"234"
        names = sorted(meta["path"] for batch in obstore.list(store, "dir") for meta in batch)
        assert names == ["dir/a.txt", "dir/b.bin"]
        await obstore.delete_async(store, ["dir/a.txt", "dir/b.bin"])
        assert [m for batch in obstore.list(store, "dir") for m in batch] == []

    asyncio.run(scenario())
