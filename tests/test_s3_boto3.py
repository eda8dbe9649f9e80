"""The S3 mock with boto3 as the client: buckets, objects, listings, multipart, checksums, errors."""

from __future__ import annotations

import base64
import hashlib
import time
import zlib

import httpx2
import pytest
from botocore.exceptions import ClientError

from conftest import make_s3_client, read_response

WEIRD_KEYS = [
    "plain.txt",
    "dir/sub/file.bin",
    "../escape/../../etc/passwd",
    "with space and +plus+ and %percent%",
    "question?mark&amp=1#hash",
    "unicode/日本語/ファイル-ü-😀.txt",
    "trailing/slash/",
    "a" * 1000,
]


def code(exc_info) -> str:
    return exc_info.value.response["Error"]["Code"]


def status(exc_info) -> int:
    return exc_info.value.response["ResponseMetadata"]["HTTPStatusCode"]


# --- buckets ---


def test_bucket_lifecycle(s3):
    s3.create_bucket(Bucket="alpha-bucket")
    s3.create_bucket(Bucket="beta.bucket", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    names = [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert names == ["alpha-bucket", "beta.bucket"]
    assert s3.head_bucket(Bucket="beta.bucket")["ResponseMetadata"]["HTTPHeaders"]["x-amz-bucket-region"] == "eu-west-1"
    assert s3.get_bucket_location(Bucket="beta.bucket")["LocationConstraint"] == "eu-west-1"
    assert s3.get_bucket_location(Bucket="alpha-bucket")["LocationConstraint"] is None
    assert s3.create_bucket(Bucket="alpha-bucket")["ResponseMetadata"]["HTTPStatusCode"] == 200  # us-east-1's legacy answer
    with pytest.raises(ClientError) as info:
        s3.create_bucket(Bucket="beta.bucket", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    assert code(info) == "BucketAlreadyOwnedByYou" and status(info) == 409
    s3.put_object(Bucket="alpha-bucket", Key="k", Body=b"x")
    with pytest.raises(ClientError) as info:
        s3.delete_bucket(Bucket="alpha-bucket")
    assert code(info) == "BucketNotEmpty"
    s3.delete_object(Bucket="alpha-bucket", Key="k")
    s3.delete_bucket(Bucket="alpha-bucket")
    with pytest.raises(ClientError) as info:
        s3.head_bucket(Bucket="alpha-bucket")
    assert status(info) == 404


@pytest.mark.parametrize("name", ["ab", "UPPER", "has_underscore", "-leading", "trailing-", "a..b", "192.168.1.1", "x" * 64])
def test_invalid_bucket_names(s3, name):
    with pytest.raises(ClientError) as info:
        s3.create_bucket(Bucket=name)
    assert code(info) == "InvalidBucketName"


def test_signed_write_to_missing_bucket_is_no_such_bucket(s3):
    with pytest.raises(ClientError) as info:
        s3.put_object(Bucket="never-created", Key="k", Body=b"x")
    assert code(info) == "NoSuchBucket"
    assert info.value.response["Error"]["BucketName"] == "never-created"
    # The connection was closed after the early answer: the next call on the same client works.
    s3.create_bucket(Bucket="now-created")
    assert s3.list_objects_v2(Bucket="now-created")["KeyCount"] == 0


def test_error_document_request_id_matches_header(s3_url):
    r = httpx2.get(f"{s3_url}/no-such-bucket-here/key")
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/xml"
    body = r.text
    assert "<Code>NoSuchBucket</Code>" in body and "<BucketName>no-such-bucket-here</BucketName>" in body
    assert f"<RequestId>{r.headers['x-amz-request-id']}</RequestId>" in body
    head = httpx2.head(f"{s3_url}/no-such-bucket-here/key")
    assert head.status_code == 404 and head.content == b""


# --- objects ---


def test_put_get_head_with_metadata_and_content_headers(s3):
    s3.create_bucket(Bucket="objects")
    body = b"hello world" * 100
    put = s3.put_object(
        Bucket="objects", Key="greeting.txt", Body=body, ContentType="text/plain; charset=utf-8",
        Metadata={"author": "=?UTF-8?B?Wm/DqyDDnG7Dr2NvZGUg8J+YgA==?=", "plain": "ascii"}, ContentEncoding="identity",
        ContentDisposition='attachment; filename="g.txt"', ContentLanguage="en", CacheControl="max-age=60",
        Expires="Wed, 21 Oct 2037 07:28:00 GMT", ServerSideEncryption="AES256",
    )
    assert put["ETag"] == f'"{hashlib.md5(body).hexdigest()}"'
    assert put["ServerSideEncryption"] == "AES256"
    got = s3.get_object(Bucket="objects", Key="greeting.txt")
    assert got["Body"].read() == body
    assert got["ContentType"] == "text/plain; charset=utf-8"
    assert got["Metadata"] == {"author": "=?UTF-8?B?Wm/DqyDDnG7Dr2NvZGUg8J+YgA==?=", "plain": "ascii"}
    assert got["ContentDisposition"] == 'attachment; filename="g.txt"'
    assert got["ContentLanguage"] == "en" and got["CacheControl"] == "max-age=60" and got["ContentEncoding"] == "identity"
    assert got["ServerSideEncryption"] == "AES256"
    assert got["ResponseMetadata"]["HTTPHeaders"]["x-amz-request-id"]
    head = s3.head_object(Bucket="objects", Key="greeting.txt")
    assert head["ContentLength"] == len(body) and head["ETag"] == put["ETag"]
    assert abs(head["LastModified"].timestamp() - time.time()) < 60


def test_unicode_metadata_round_trips_byte_exact(s3_url, s3):
    # boto3 refuses non-ASCII metadata; other clients send UTF-8 bytes in the header, and get the same bytes back.
    s3.create_bucket(Bucket="objects")
    value = "Zoë Ünïcode 😀".encode()
    r = httpx2.put(f"{s3_url}/objects/u", content=b"x", headers={"x-amz-meta-author": value})
    assert r.status_code == 200
    got = httpx2.get(f"{s3_url}/objects/u")
    assert got.headers.raw[[k for k, _ in got.headers.raw].index(b"x-amz-meta-author")][1] == value
    summary = httpx2.get(f"{s3_url}/admin/objects/objects").json()["objects"][0]
    assert summary["metadata"] == {"author": "Zoë Ünïcode 😀"}


def test_kms_encryption_is_stored_and_returned(s3):
    s3.create_bucket(Bucket="kms")
    s3.put_object(Bucket="kms", Key="k", Body=b"x", ServerSideEncryption="aws:kms", SSEKMSKeyId="alias/dev")
    head = s3.head_object(Bucket="kms", Key="k")
    assert head["ServerSideEncryption"] == "aws:kms" and head["SSEKMSKeyId"] == "alias/dev"


@pytest.mark.parametrize("key", WEIRD_KEYS)
def test_keys_round_trip(s3, key):
    s3.create_bucket(Bucket="keys")
    s3.put_object(Bucket="keys", Key=key, Body=key.encode())
    assert s3.get_object(Bucket="keys", Key=key)["Body"].read() == key.encode()
    listed = [o["Key"] for o in s3.list_objects_v2(Bucket="keys")["Contents"]]
    assert listed == [key]
    s3.delete_object(Bucket="keys", Key=key)
    assert s3.list_objects_v2(Bucket="keys")["KeyCount"] == 0


def test_key_too_long(s3):
    s3.create_bucket(Bucket="keys")
    with pytest.raises(ClientError) as info:
        s3.put_object(Bucket="keys", Key="k" * 1025, Body=b"x")
    assert code(info) == "KeyTooLongError"


def test_range_requests(s3):
    s3.create_bucket(Bucket="ranges")
    s3.put_object(Bucket="ranges", Key="digits", Body=b"0123456789")
    r = s3.get_object(Bucket="ranges", Key="digits", Range="bytes=2-5")
    assert r["Body"].read() == b"2345" and r["ContentRange"] == "bytes 2-5/10"
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert s3.get_object(Bucket="ranges", Key="digits", Range="bytes=7-")["Body"].read() == b"789"
    assert s3.get_object(Bucket="ranges", Key="digits", Range="bytes=-3")["Body"].read() == b"789"
    assert s3.get_object(Bucket="ranges", Key="digits", Range="bytes=8-100")["Body"].read() == b"89"
    with pytest.raises(ClientError) as info:
        s3.get_object(Bucket="ranges", Key="digits", Range="bytes=10-20")
    assert code(info) == "InvalidRange" and status(info) == 416
    assert info.value.response["Error"]["ActualObjectSize"] == "10"


def test_response_overrides(s3):
    s3.create_bucket(Bucket="overrides")
    s3.put_object(Bucket="overrides", Key="k", Body=b"x", ContentType="text/plain")
    r = s3.get_object(Bucket="overrides", Key="k", ResponseContentType="application/json", ResponseContentDisposition="inline",
                      ResponseCacheControl="no-cache", ResponseContentLanguage="fr", ResponseExpires="Thu, 01 Jan 2037 00:00:00 GMT",
                      ResponseContentEncoding="gzip")
    assert r["ContentType"] == "application/json" and r["ContentDisposition"] == "inline" and r["CacheControl"] == "no-cache"
    assert r["ContentLanguage"] == "fr" and r["ContentEncoding"] == "gzip"


def test_conditional_get(s3):
    s3.create_bucket(Bucket="cond")
    etag = s3.put_object(Bucket="cond", Key="k", Body=b"x")["ETag"]
    assert s3.get_object(Bucket="cond", Key="k", IfMatch=etag)["Body"].read() == b"x"
    with pytest.raises(ClientError) as info:
        s3.get_object(Bucket="cond", Key="k", IfMatch='"0000"')
    assert status(info) == 412 and code(info) == "PreconditionFailed"
    with pytest.raises(ClientError) as info:
        s3.get_object(Bucket="cond", Key="k", IfNoneMatch=etag)
    assert status(info) == 304
    with pytest.raises(ClientError) as info:
        s3.get_object(Bucket="cond", Key="k", IfModifiedSince="Wed, 01 Jan 2100 00:00:00 GMT")
    assert status(info) == 304
    with pytest.raises(ClientError) as info:
        s3.get_object(Bucket="cond", Key="k", IfUnmodifiedSince="Mon, 01 Jan 2001 00:00:00 GMT")
    assert status(info) == 412
    assert s3.get_object(Bucket="cond", Key="k", IfModifiedSince="Mon, 01 Jan 2001 00:00:00 GMT")["Body"].read() == b"x"
    with pytest.raises(ClientError) as info:
        s3.head_object(Bucket="cond", Key="k", IfNoneMatch=etag)
    assert status(info) == 304


def test_conditional_put(s3):
    s3.create_bucket(Bucket="cond")
    etag = s3.put_object(Bucket="cond", Key="k", Body=b"v1", IfNoneMatch="*")["ETag"]
    with pytest.raises(ClientError) as info:
        s3.put_object(Bucket="cond", Key="k", Body=b"v2", IfNoneMatch="*")
    assert code(info) == "PreconditionFailed"
    with pytest.raises(ClientError) as info:
        s3.put_object(Bucket="cond", Key="k", Body=b"v2", IfMatch='"deadbeef"')
    assert code(info) == "PreconditionFailed"
    s3.put_object(Bucket="cond", Key="k", Body=b"v2", IfMatch=etag)
    assert s3.get_object(Bucket="cond", Key="k")["Body"].read() == b"v2"
    with pytest.raises(ClientError) as info:
        s3.put_object(Bucket="cond", Key="missing", Body=b"v", IfMatch=etag)
    assert code(info) == "NoSuchKey"


def test_copy_object_copy_and_replace(s3):
    s3.create_bucket(Bucket="copies")
    s3.put_object(Bucket="copies", Key="src", Body=b"payload", ContentType="text/plain", Metadata={"a": "1"})
    r = s3.copy_object(Bucket="copies", Key="dst", CopySource={"Bucket": "copies", "Key": "src"})
    assert r["CopyObjectResult"]["ETag"] == f'"{hashlib.md5(b"payload").hexdigest()}"'
    dst = s3.get_object(Bucket="copies", Key="dst")
    assert dst["Body"].read() == b"payload" and dst["Metadata"] == {"a": "1"} and dst["ContentType"] == "text/plain"
    s3.copy_object(Bucket="copies", Key="dst", CopySource="copies/src", MetadataDirective="REPLACE", Metadata={"b": "2"}, ContentType="x/y")
    dst = s3.head_object(Bucket="copies", Key="dst")
    assert dst["Metadata"] == {"b": "2"} and dst["ContentType"] == "x/y"
    with pytest.raises(ClientError) as info:
        s3.copy_object(Bucket="copies", Key="src", CopySource="copies/src")
    assert code(info) == "InvalidRequest"
    with pytest.raises(ClientError) as info:
        s3.copy_object(Bucket="copies", Key="x", CopySource="copies/src", CopySourceIfMatch='"nope"')
    assert code(info) == "PreconditionFailed"
    with pytest.raises(ClientError) as info:
        s3.copy_object(Bucket="copies", Key="x", CopySource="copies/nothing")
    assert code(info) == "NoSuchKey"


def test_delete_objects_quiet_and_verbose(s3):
    s3.create_bucket(Bucket="bulk")
    for i in range(5):
        s3.put_object(Bucket="bulk", Key=f"k{i}", Body=b"x")
    r = s3.delete_objects(Bucket="bulk", Delete={"Objects": [{"Key": "k0"}, {"Key": "k1"}, {"Key": "absent"}]})
    assert sorted(d["Key"] for d in r["Deleted"]) == ["absent", "k0", "k1"]
    r = s3.delete_objects(Bucket="bulk", Delete={"Objects": [{"Key": "k2"}], "Quiet": True})
    assert "Deleted" not in r
    assert [o["Key"] for o in s3.list_objects_v2(Bucket="bulk")["Contents"]] == ["k3", "k4"]
    with pytest.raises(ClientError) as info:
        s3.delete_objects(Bucket="bulk", Delete={"Objects": [{"Key": f"k{i}"} for i in range(1001)]})
    assert code(info) == "MalformedXML"


# --- listings ---


@pytest.fixture
def listing(s3):
    s3.create_bucket(Bucket="listing")
    keys = sorted({f"photos/2024/{i:03d}.jpg" for i in range(25)} | {f"docs/{n}.pdf" for n in ("a", "b", "c")}
                  | {"readme.md", "photos/cover.png", "space key", "plus+key", "ümlaut/ä.txt"})
    for key in keys:
        s3.put_object(Bucket="listing", Key=key, Body=b"x")
    return keys


def test_list_v2_pages_through_everything(s3, listing):
    pages = list(s3.get_paginator("list_objects_v2").paginate(Bucket="listing", PaginationConfig={"PageSize": 7}))
    assert len(pages) == 5
    assert [o["Key"] for p in pages for o in p.get("Contents", [])] == listing
    assert pages[0]["KeyCount"] == 7 and pages[0]["IsTruncated"] and "NextContinuationToken" in pages[0]
    assert pages[1]["ContinuationToken"] == pages[0]["NextContinuationToken"]


def test_list_v1_pages_with_markers(s3, listing):
    pages = list(s3.get_paginator("list_objects").paginate(Bucket="listing", PaginationConfig={"PageSize": 10}))
    assert [o["Key"] for p in pages for o in p.get("Contents", [])] == listing
    assert pages[1]["Marker"] == pages[0]["Contents"][-1]["Key"]


def test_delimiter_and_common_prefixes(s3, listing):
    top = s3.list_objects_v2(Bucket="listing", Delimiter="/")
    assert [p["Prefix"] for p in top["CommonPrefixes"]] == ["docs/", "photos/", "ümlaut/"]
    assert [o["Key"] for o in top["Contents"]] == ["plus+key", "readme.md", "space key"]
    assert top["KeyCount"] == 6
    photos = s3.list_objects_v2(Bucket="listing", Prefix="photos/", Delimiter="/")
    assert [p["Prefix"] for p in photos["CommonPrefixes"]] == ["photos/2024/"]
    assert [o["Key"] for o in photos["Contents"]] == ["photos/cover.png"]
    # paging over common prefixes one at a time: each appears once
    pages = list(s3.get_paginator("list_objects_v2").paginate(Bucket="listing", Delimiter="/", PaginationConfig={"PageSize": 1}))
    prefixes = [p["Prefix"] for page in pages for p in page.get("CommonPrefixes", [])]
    assert prefixes == ["docs/", "photos/", "ümlaut/"]
    v1 = list(s3.get_paginator("list_objects").paginate(Bucket="listing", Delimiter="/", PaginationConfig={"PageSize": 2}))
    assert [p["Prefix"] for page in v1 for p in page.get("CommonPrefixes", [])] == ["docs/", "photos/", "ümlaut/"]


def test_common_prefixes_with_the_last_unicode_character(s3):
    """U+10FFFF sorts after every other key character; a common prefix whose keys carry it is still listed once."""
    s3.create_bucket(Bucket="max-char")
    for key in ("a/\U0010ffff/x", "a/\U0010ffffy", "a/b", "a\U0010ffff", "\U0010ffff"):
        s3.put_object(Bucket="max-char", Key=key, Body=b"")
    top = s3.list_objects_v2(Bucket="max-char", Delimiter="/")
    assert [p["Prefix"] for p in top["CommonPrefixes"]] == ["a/"]
    assert [o["Key"] for o in top["Contents"]] == ["a\U0010ffff", "\U0010ffff"]
    inner = list(s3.get_paginator("list_objects_v2").paginate(Bucket="max-char", Prefix="a/", Delimiter="/", PaginationConfig={"PageSize": 1}))
    assert [p["Prefix"] for page in inner for p in page.get("CommonPrefixes", [])] == ["a/\U0010ffff/"]
    assert [o["Key"] for page in inner for o in page.get("Contents", [])] == ["a/b", "a/\U0010ffffy"]
    assert [o["Key"] for o in s3.list_objects_v2(Bucket="max-char", Prefix="\U0010ffff")["Contents"]] == ["\U0010ffff"]


def test_start_after_max_keys_and_echoes(s3, listing):
    r = s3.list_objects_v2(Bucket="listing", StartAfter="photos/2024/020.jpg", MaxKeys=3)
    assert [o["Key"] for o in r["Contents"]] == ["photos/2024/021.jpg", "photos/2024/022.jpg", "photos/2024/023.jpg"]
    assert r["StartAfter"] == "photos/2024/020.jpg" and r["MaxKeys"] == 3 and r["IsTruncated"]
    assert s3.list_objects_v2(Bucket="listing", MaxKeys=0)["KeyCount"] == 0


def test_encoding_type_url_is_applied_and_echoed(s3_url, listing):
    r = httpx2.get(f"{s3_url}/listing", params={"list-type": "2", "encoding-type": "url", "prefix": "space"})
    assert "<EncodingType>url</EncodingType>" in r.text
    assert "<Key>space%20key</Key>" in r.text
    plain = httpx2.get(f"{s3_url}/listing", params={"list-type": "2", "prefix": "space"})
    assert "<Key>space key</Key>" in plain.text


def test_list_object_versions_unversioned(s3, listing):
    pages = list(s3.get_paginator("list_object_versions").paginate(Bucket="listing", PaginationConfig={"PageSize": 10}))
    versions = [v for p in pages for v in p.get("Versions", [])]
    assert [v["Key"] for v in versions] == listing
    assert {v["VersionId"] for v in versions} == {"null"} and all(v["IsLatest"] for v in versions)
    # paging by a KeyMarker that was just deleted still continues after it
    marker = listing[10]
    s3.delete_object(Bucket="listing", Key=marker)
    r = s3.list_object_versions(Bucket="listing", KeyMarker=marker, MaxKeys=2)
    assert [v["Key"] for v in r["Versions"]] == listing[11:13]


def test_bad_list_arguments(s3, listing):
    with pytest.raises(ClientError) as info:
        s3.list_objects_v2(Bucket="listing", ContinuationToken="%%%not-base64%%%")
    assert code(info) == "InvalidArgument"


# --- multipart ---

MIB = 1024 * 1024


def test_multipart_upload_end_to_end(s3):
    s3.create_bucket(Bucket="multi")
    up = s3.create_multipart_upload(Bucket="multi", Key="big.bin", ContentType="application/x-big", Metadata={"k": "v"})
    parts_data = [b"a" * (5 * MIB), b"b" * (5 * MIB), b"tail"]
    parts = []
    for n, data in enumerate(parts_data, 1):
        r = s3.upload_part(Bucket="multi", Key="big.bin", UploadId=up["UploadId"], PartNumber=n, Body=data)
        parts.append({"PartNumber": n, "ETag": r["ETag"]})
    listed = s3.list_parts(Bucket="multi", Key="big.bin", UploadId=up["UploadId"])
    assert [(p["PartNumber"], p["Size"]) for p in listed["Parts"]] == [(1, 5 * MIB), (2, 5 * MIB), (3, 4)]
    uploads = s3.list_multipart_uploads(Bucket="multi")["Uploads"]
    assert [(u["Key"], u["UploadId"]) for u in uploads] == [("big.bin", up["UploadId"])]
    done = s3.complete_multipart_upload(Bucket="multi", Key="big.bin", UploadId=up["UploadId"], MultipartUpload={"Parts": parts})
    expected = hashlib.md5(b"".join(hashlib.md5(d).digest() for d in parts_data)).hexdigest() + "-3"
    assert done["ETag"] == f'"{expected}"'
    got = s3.get_object(Bucket="multi", Key="big.bin")
    assert got["Body"].read() == b"".join(parts_data)
    assert got["ContentType"] == "application/x-big" and got["Metadata"] == {"k": "v"}
    second = s3.get_object(Bucket="multi", Key="big.bin", PartNumber=2)
    assert second["Body"].read() == parts_data[1] and second["PartsCount"] == 3
    assert second["ContentRange"] == f"bytes {5 * MIB}-{10 * MIB - 1}/{10 * MIB + 4}"
    assert s3.list_multipart_uploads(Bucket="multi").get("Uploads", []) == []


def test_multipart_errors(s3):
    s3.create_bucket(Bucket="multi")
    up = s3.create_multipart_upload(Bucket="multi", Key="k")["UploadId"]
    e1 = s3.upload_part(Bucket="multi", Key="k", UploadId=up, PartNumber=1, Body=b"small")["ETag"]
    e2 = s3.upload_part(Bucket="multi", Key="k", UploadId=up, PartNumber=2, Body=b"small")["ETag"]
    with pytest.raises(ClientError) as info:
        s3.complete_multipart_upload(Bucket="multi", Key="k", UploadId=up, MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2}]})
    assert code(info) == "EntityTooSmall"
    with pytest.raises(ClientError) as info:
        s3.complete_multipart_upload(Bucket="multi", Key="k", UploadId=up, MultipartUpload={"Parts": [{"PartNumber": 2, "ETag": e2}, {"PartNumber": 1, "ETag": e1}]})
    assert code(info) == "InvalidPartOrder"
    with pytest.raises(ClientError) as info:
        s3.complete_multipart_upload(Bucket="multi", Key="k", UploadId=up, MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": '"0123"'}]})
    assert code(info) == "InvalidPart"
    with pytest.raises(ClientError) as info:
        s3.complete_multipart_upload(Bucket="multi", Key="k", UploadId=up, MultipartUpload={"Parts": [{"PartNumber": 7, "ETag": e1}]})
    assert code(info) == "InvalidPart"
    # a single small part is fine: only parts before the last must be 5 MiB
    s3.complete_multipart_upload(Bucket="multi", Key="k", UploadId=up, MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e1}]})
    assert s3.get_object(Bucket="multi", Key="k")["Body"].read() == b"small"
    with pytest.raises(ClientError) as info:
        s3.upload_part(Bucket="multi", Key="k", UploadId=up, PartNumber=3, Body=b"x")
    assert code(info) == "NoSuchUpload"
    up2 = s3.create_multipart_upload(Bucket="multi", Key="k2")["UploadId"]
    s3.abort_multipart_upload(Bucket="multi", Key="k2", UploadId=up2)
    with pytest.raises(ClientError) as info:
        s3.list_parts(Bucket="multi", Key="k2", UploadId=up2)
    assert code(info) == "NoSuchUpload"


def test_upload_part_copy_with_ranges(s3):
    s3.create_bucket(Bucket="multi")
    source = bytes(range(256)) * (24 * 1024)  # 6 MiB
    s3.put_object(Bucket="multi", Key="source", Body=source)
    up = s3.create_multipart_upload(Bucket="multi", Key="assembled")["UploadId"]
    p1 = s3.upload_part_copy(Bucket="multi", Key="assembled", UploadId=up, PartNumber=1, CopySource="multi/source", CopySourceRange=f"bytes=0-{5 * MIB - 1}")
    p2 = s3.upload_part_copy(Bucket="multi", Key="assembled", UploadId=up, PartNumber=2, CopySource="multi/source", CopySourceRange="bytes=100-199")
    for bad in ("bytes=10-5", "bytes=abc", f"bytes=0-{len(source)}"):
        with pytest.raises(ClientError) as info:
            s3.upload_part_copy(Bucket="multi", Key="assembled", UploadId=up, PartNumber=3, CopySource="multi/source", CopySourceRange=bad)
        assert code(info) in ("InvalidArgument", "InvalidRange")
    s3.complete_multipart_upload(Bucket="multi", Key="assembled", UploadId=up, MultipartUpload={"Parts": [
        {"PartNumber": 1, "ETag": p1["CopyPartResult"]["ETag"]}, {"PartNumber": 2, "ETag": p2["CopyPartResult"]["ETag"]}]})
    assert s3.get_object(Bucket="multi", Key="assembled")["Body"].read() == source[: 5 * MIB] + source[100:200]


# --- integrity ---


@pytest.mark.parametrize("algorithm", ["CRC32", "CRC32C", "SHA1", "SHA256"])
def test_checksums_are_validated_stored_and_returned(s3, algorithm):
    s3.create_bucket(Bucket="sums")
    body = b"checksummed body" * 1000
    put = s3.put_object(Bucket="sums", Key="k", Body=body, ChecksumAlgorithm=algorithm)
    stored = put[f"Checksum{algorithm}"]
    got = s3.get_object(Bucket="sums", Key="k", ChecksumMode="ENABLED")
    assert got["Body"].read() == body  # boto3 validates the returned checksum while reading
    assert got[f"Checksum{algorithm}"] == stored
    if algorithm == "CRC32":
        assert stored == base64.b64encode(zlib.crc32(body).to_bytes(4, "big")).decode()
    if algorithm == "SHA256":
        assert stored == base64.b64encode(hashlib.sha256(body).digest()).decode()


def test_wrong_checksums_are_refused_and_nothing_is_stored(s3_url, s3):
    s3.create_bucket(Bucket="sums")
    with pytest.raises(ClientError) as info:
        s3.put_object(Bucket="sums", Key="k", Body=b"data", ContentMD5=base64.b64encode(hashlib.md5(b"other").digest()).decode())
    assert code(info) == "BadDigest"
    with pytest.raises(ClientError) as info:
        s3.put_object(Bucket="sums", Key="k", Body=b"data", ChecksumSHA256=base64.b64encode(hashlib.sha256(b"other").digest()).decode())
    assert code(info) == "BadDigest"
    r = httpx2.put(f"{s3_url}/sums/k", content=b"data", headers={"Content-MD5": "not base64!"})
    assert r.status_code == 400 and "<Code>InvalidDigest</Code>" in r.text
    r = httpx2.put(f"{s3_url}/sums/k", content=b"data", headers={"x-amz-content-sha256": hashlib.sha256(b"other").hexdigest()})
    assert r.status_code == 400 and "XAmzContentSHA256Mismatch" in r.text
    with pytest.raises(ClientError) as info:
        s3.head_object(Bucket="sums", Key="k")
    assert status(info) == 404


def test_expect_100_continue_is_answered(s3_url):
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(s3_url)
    with socket.create_connection((parts.hostname, parts.port), timeout=5) as sock:
        sock.sendall(b"PUT /continue-bucket/k HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        pending = bytearray()
        assert read_response(sock, pending).startswith(b"HTTP/1.1 100 Continue")
        sock.sendall(b"hello")
        assert read_response(sock, pending).startswith(b"HTTP/1.1 200 OK")


# --- faults ---


def test_faults_are_s3_errors_and_boto3_retries_through_them(s3_url):
    s3 = make_s3_client(s3_url, retries={"max_attempts": 10, "mode": "standard"})
    s3.create_bucket(Bucket="flaky")
    httpx2.patch(f"{s3_url}/__mockpanel/faults", json={"error_rate": 0.3, "error_codes": [503, 500], "seed": 5})
    for i in range(40):
        s3.put_object(Bucket="flaky", Key=f"k{i}", Body=b"x" * 100)
    httpx2.delete(f"{s3_url}/__mockpanel/faults")
    assert s3.list_objects_v2(Bucket="flaky")["KeyCount"] == 40
    entries = httpx2.get(f"{s3_url}/__mockpanel/requests", params={"limit": 1000}).json()["requests"]
    faulted = [e for e in entries if e["fault"]]
    assert len(faulted) >= 5  # boto3 retried through these
    assert {e["status"] for e in faulted} == {500, 503}
    r = httpx2.get(f"{s3_url}/flaky/k1?simulate_error=503")
    assert r.status_code == 503 and "<Code>SlowDown</Code>" in r.text
    assert f"<RequestId>{r.headers['x-amz-request-id']}</RequestId>" in r.text
    r = httpx2.get(f"{s3_url}/flaky/k1?simulate_error=500")
    assert "<Code>InternalError</Code>" in r.text


def test_bus_events_for_buckets_and_objects(s3_hub, s3):
    seen = []
    unsubscribe = s3_hub.run(s3_hub.hub.bus.subscribe, lambda item: seen.append((getattr(item, "kind", None), getattr(item, "data", None))))
    try:
        s3.create_bucket(Bucket="events")
        s3.put_object(Bucket="events", Key="k", Body=b"x")
        s3.delete_object(Bucket="events", Key="k")
        s3.delete_bucket(Bucket="events")
    finally:
        s3_hub.run(unsubscribe)
    kinds = [k for k, _ in seen if k and k != "status"]
    assert kinds == ["bucket_created", "object_stored", "object_deleted", "bucket_deleted"]


def test_bad_xml_bodies_are_malformed_xml(s3_url, s3):
    s3.create_bucket(Bucket="xmlbad")
    bomb = b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]><Delete><Object><Key>&lol2;</Key></Object></Delete>'
    for body in (b"<Delete><Object><Key>x</Key>", b"not xml at all", bomb, b"<Other/>"):
        md5 = base64.b64encode(hashlib.md5(body).digest()).decode()
        r = httpx2.post(f"{s3_url}/xmlbad?delete", content=body, headers={"Content-MD5": md5})
        assert r.status_code == 400 and "<Code>MalformedXML</Code>" in r.text, body
    # without Content-MD5 or a checksum (what a cross-site form could send), as AWS: refused before the body is read
    r = httpx2.post(f"{s3_url}/xmlbad?delete", content=b"<Delete><Object><Key>x</Key></Object></Delete>")
    assert r.status_code == 400 and "Missing required header for this request: Content-MD5" in r.text
    r = httpx2.put(f"{s3_url}/another-bucket", content=b"<CreateBucketConfiguration><LocationConstraint>")
    assert "<Code>MalformedXML</Code>" in r.text


def test_method_not_allowed_and_entity_too_large(s3_url, s3):
    import socket
    from urllib.parse import urlsplit

    s3.create_bucket(Bucket="limits")
    r = httpx2.post(f"{s3_url}/limits/some-key")
    assert r.status_code == 405 and "<Code>MethodNotAllowed</Code>" in r.text
    parts = urlsplit(s3_url)
    with socket.create_connection((parts.hostname, parts.port), timeout=5) as sock:
        sock.sendall(b"PUT /limits/huge HTTP/1.1\r\nHost: localhost\r\nContent-Length: 7516192768\r\n\r\n")
        answer = read_response(sock)
    assert answer.startswith(b"HTTP/1.1 413") and b"<Code>EntityTooLarge</Code>" in answer
    assert b"connection: close" in answer.lower()
