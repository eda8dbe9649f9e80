"""S3 as every client sees it (issue: the clients users bring, not only boto3) — each behaviour through boto3 where it
is boto3's to see, raw HTTP where boto3 hides it."""

from __future__ import annotations

import base64

import httpx
import pytest
from awscrt.checksums import crc64nvme
from botocore.exceptions import ClientError


def crc64(data: bytes) -> str:
    return base64.b64encode(crc64nvme(data).to_bytes(8, "big")).decode()


def error_code(excinfo) -> str:
    return excinfo.value.response["Error"]["Code"]


def test_crc64nvme_is_computed_and_checked_on_every_operation_that_takes_one(s3, s3_url, bucket):
    body = b"crc64 me" * 1000
    put = s3.put_object(Bucket=bucket, Key="k", Body=body, ChecksumAlgorithm="CRC64NVME")
    assert put["ChecksumCRC64NVME"] == crc64(body)
    got = s3.get_object(Bucket=bucket, Key="k", ChecksumMode="ENABLED")
    assert got["ChecksumCRC64NVME"] == crc64(body) and got["Body"].read() == body
    wrong = httpx.put(f"{s3_url}/{bucket}/bad", content=body, headers={"x-amz-checksum-crc64nvme": crc64(b"other")})
    assert wrong.status_code == 400 and "<Code>BadDigest</Code>" in wrong.text
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="bad")  # nothing stored
    delete = b"<Delete><Object><Key>k</Key></Object></Delete>"
    refused = httpx.post(f"{s3_url}/{bucket}?delete", content=delete, headers={"x-amz-checksum-crc64nvme": crc64(b"x")})
    assert refused.status_code == 400 and "<Code>BadDigest</Code>" in refused.text
    done = httpx.post(f"{s3_url}/{bucket}?delete", content=delete, headers={"x-amz-checksum-crc64nvme": crc64(delete)})
    assert done.status_code == 200 and "<Deleted><Key>k</Key>" in done.text


def test_multipart_with_crc64nvme_is_a_full_object_checksum(s3, bucket):
    parts = [b"a" * (5 * 1024 * 1024), b"tail"]
    upload = s3.create_multipart_upload(Bucket=bucket, Key="mp", ChecksumAlgorithm="CRC64NVME")
    assert upload["ChecksumType"] == "FULL_OBJECT"
    listed = []
    for number, data in enumerate(parts, 1):
        answer = s3.upload_part(Bucket=bucket, Key="mp", UploadId=upload["UploadId"], PartNumber=number, Body=data, ChecksumAlgorithm="CRC64NVME")
        listed.append({"PartNumber": number, "ETag": answer["ETag"], "ChecksumCRC64NVME": answer["ChecksumCRC64NVME"]})
    whole = crc64(b"".join(parts))
    done = s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=upload["UploadId"], MultipartUpload={"Parts": listed},
                                        ChecksumCRC64NVME=whole, ChecksumType="FULL_OBJECT")
    assert done["ChecksumCRC64NVME"] == whole
    assert s3.head_object(Bucket=bucket, Key="mp", ChecksumMode="ENABLED")["ChecksumCRC64NVME"] == whole
    with pytest.raises(ClientError) as refused:
        s3.create_multipart_upload(Bucket=bucket, Key="x", ChecksumAlgorithm="CRC64NVME", ChecksumType="COMPOSITE")
    assert error_code(refused) == "InvalidRequest"


def test_conditional_complete_multipart_upload(s3, bucket):
    def upload(key: str) -> tuple[str, list]:
        started = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
        etag = s3.upload_part(Bucket=bucket, Key=key, UploadId=started, PartNumber=1, Body=b"new")["ETag"]
        return started, [{"PartNumber": 1, "ETag": etag}]

    s3.put_object(Bucket=bucket, Key="exists", Body=b"old")
    upload_id, parts = upload("exists")
    with pytest.raises(ClientError) as refused:
        s3.complete_multipart_upload(Bucket=bucket, Key="exists", UploadId=upload_id, MultipartUpload={"Parts": parts}, IfNoneMatch="*")
    assert error_code(refused) == "PreconditionFailed"
    assert s3.get_object(Bucket=bucket, Key="exists")["Body"].read() == b"old"  # not overwritten
    upload_id, parts = upload("fresh")
    s3.complete_multipart_upload(Bucket=bucket, Key="fresh", UploadId=upload_id, MultipartUpload={"Parts": parts}, IfNoneMatch="*")
    current = s3.head_object(Bucket=bucket, Key="exists")["ETag"]
    upload_id, parts = upload("exists")
    with pytest.raises(ClientError) as refused:
        s3.complete_multipart_upload(Bucket=bucket, Key="exists", UploadId=upload_id, MultipartUpload={"Parts": parts}, IfMatch='"0000"')
    assert error_code(refused) == "PreconditionFailed"
    s3.complete_multipart_upload(Bucket=bucket, Key="exists", UploadId=upload_id, MultipartUpload={"Parts": parts}, IfMatch=current)
    assert s3.get_object(Bucket=bucket, Key="exists")["Body"].read() == b"new"
