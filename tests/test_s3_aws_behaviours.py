"""Behaviours AWS S3 has that SDKs and conformance suites rely on, each through boto3 (raw HTTP where boto3 hides it)."""

from __future__ import annotations


import httpx2
import pytest
from botocore.exceptions import ClientError


def test_max_keys_zero_lists_nothing_and_is_not_truncated(s3, bucket):
    for i in range(3):
        s3.put_object(Bucket=bucket, Key=f"k{i}", Body=b"x")
    for listing in (s3.list_objects_v2(Bucket=bucket, MaxKeys=0), s3.list_objects(Bucket=bucket, MaxKeys=0)):
        assert listing["IsTruncated"] is False and "Contents" not in listing and listing["MaxKeys"] == 0
    assert s3.list_objects_v2(Bucket=bucket, MaxKeys=0)["KeyCount"] == 0


def test_content_encoding_is_kept_as_written_without_aws_chunked(s3, s3_url, bucket):
    s3.put_object(Bucket=bucket, Key="boto", Body=b"x" * 100, ContentEncoding="deflate, gzip")  # boto3 adds aws-chunked
    assert s3.head_object(Bucket=bucket, Key="boto")["ContentEncoding"] == "deflate, gzip"
    chunked = {"x-amz-content-sha256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER", "x-amz-decoded-content-length": "1"}
    for key, encoding in (("raw", "aws-chunked, br"), ("only", "aws-chunked")):
        stored = httpx2.put(f"{s3_url}/{bucket}/{key}", content=b"1\r\nx\r\n0\r\n\r\n", headers={**chunked, "Content-Encoding": encoding})
        assert stored.status_code == 200, stored.text
    assert httpx2.head(f"{s3_url}/{bucket}/raw").headers["content-encoding"] == "br"
    assert "content-encoding" not in httpx2.head(f"{s3_url}/{bucket}/only").headers


def test_create_bucket_again_is_200_in_us_east_1_and_409_elsewhere(s3):
    s3.create_bucket(Bucket="mine-us")
    assert s3.create_bucket(Bucket="mine-us")["ResponseMetadata"]["HTTPStatusCode"] == 200
    s3.create_bucket(Bucket="mine-eu", CreateBucketConfiguration={"LocationConstraint": "eu-central-1"})
    with pytest.raises(ClientError) as again:
        s3.create_bucket(Bucket="mine-eu", CreateBucketConfiguration={"LocationConstraint": "eu-central-1"})
    assert again.value.response["Error"]["Code"] == "BucketAlreadyOwnedByYou"
    assert again.value.response["ResponseMetadata"]["HTTPStatusCode"] == 409


def test_complete_multipart_upload_repeated_answers_the_same(s3, bucket):
    upload = s3.create_multipart_upload(Bucket=bucket, Key="big")
    part = s3.upload_part(Bucket=bucket, Key="big", UploadId=upload["UploadId"], PartNumber=1, Body=b"z" * 100)
    parts = {"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]}
    first = s3.complete_multipart_upload(Bucket=bucket, Key="big", UploadId=upload["UploadId"], MultipartUpload=parts)
    again = s3.complete_multipart_upload(Bucket=bucket, Key="big", UploadId=upload["UploadId"], MultipartUpload=parts)
    assert again["ETag"] == first["ETag"] and again["Key"] == "big"
    with pytest.raises(ClientError) as other_parts:
        s3.complete_multipart_upload(Bucket=bucket, Key="big", UploadId=upload["UploadId"],
                                     MultipartUpload={"Parts": [{"PartNumber": 2, "ETag": part["ETag"]}]})
    assert other_parts.value.response["Error"]["Code"] == "NoSuchUpload"
    assert s3.get_object(Bucket=bucket, Key="big")["Body"].read() == b"z" * 100


def test_delete_bucket_aborts_uploads_in_progress(s3, bucket):
    upload = s3.create_multipart_upload(Bucket=bucket, Key="half")
    s3.upload_part(Bucket=bucket, Key="half", UploadId=upload["UploadId"], PartNumber=1, Body=b"p")
    s3.delete_bucket(Bucket=bucket)
    assert bucket not in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    s3.create_bucket(Bucket=bucket)
    assert "Uploads" not in s3.list_multipart_uploads(Bucket=bucket)


def test_part_number_beyond_the_parts_is_400_invalid_part_number(s3, bucket):
    s3.put_object(Bucket=bucket, Key="single", Body=b"one part")
    assert s3.head_object(Bucket=bucket, Key="single", PartNumber=1)["ContentLength"] == 8
    for call in (s3.get_object, s3.head_object):
        with pytest.raises(ClientError) as beyond:
            call(Bucket=bucket, Key="single", PartNumber=2)
        assert beyond.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    with pytest.raises(ClientError) as beyond:
        s3.get_object(Bucket=bucket, Key="single", PartNumber=2)
    assert beyond.value.response["Error"]["Code"] == "InvalidPartNumber"


def test_user_metadata_comes_back_as_the_bytes_sent(s3_url, bucket):
    sent = "Hello Worldé".encode()
    httpx2.put(f"{s3_url}/{bucket}/meta", content=b"x", headers=[(b"x-amz-meta-greeting", sent)])
    got = [v for k, v in httpx2.head(f"{s3_url}/{bucket}/meta").headers.raw if k.lower() == b"x-amz-meta-greeting"]
    assert got == [sent]
