"""SSE-C as S3 has it: the object answers only to the key it was stored with (its MD5 is kept, never the key), the
algorithm and key MD5 come back on every answer, and a bad key, MD5 or algorithm is refused before anything is stored."""

from __future__ import annotations

import base64
import hashlib
import os

import httpx2
import pytest
from botocore.exceptions import ClientError

KEY = os.urandom(32)
OTHER = os.urandom(32)
KEY_MD5 = base64.b64encode(hashlib.md5(KEY).digest()).decode()


def sse(key: bytes = KEY) -> dict:
    return {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": key}


def code(exc: pytest.ExceptionInfo) -> tuple[int, str]:
    return exc.value.response["ResponseMetadata"]["HTTPStatusCode"], exc.value.response["Error"]["Code"]


def test_an_sse_c_object_answers_only_to_its_key(s3, bucket):
    put = s3.put_object(Bucket=bucket, Key="secret.txt", Body=b"diary", **sse())
    assert put["SSECustomerAlgorithm"] == "AES256" and put["SSECustomerKeyMD5"] == KEY_MD5

    got = s3.get_object(Bucket=bucket, Key="secret.txt", **sse())
    assert got["Body"].read() == b"diary" and got["SSECustomerKeyMD5"] == KEY_MD5
    head = s3.head_object(Bucket=bucket, Key="secret.txt", **sse())
    assert head["SSECustomerAlgorithm"] == "AES256" and head["ContentLength"] == 5

    with pytest.raises(ClientError) as missing:
        s3.get_object(Bucket=bucket, Key="secret.txt")
    assert code(missing) == (400, "InvalidRequest")
    with pytest.raises(ClientError) as head_missing:
        s3.head_object(Bucket=bucket, Key="secret.txt")
    assert head_missing.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    with pytest.raises(ClientError) as wrong:
        s3.get_object(Bucket=bucket, Key="secret.txt", **sse(OTHER))
    assert code(wrong) == (403, "AccessDenied")

    s3.put_object(Bucket=bucket, Key="plain.txt", Body=b"open")
    with pytest.raises(ClientError) as not_applicable:
        s3.get_object(Bucket=bucket, Key="plain.txt", **sse())
    assert code(not_applicable) == (400, "InvalidRequest")


def test_copy_needs_the_source_key_and_encrypts_with_the_one_given(s3, bucket):
    s3.put_object(Bucket=bucket, Key="src", Body=b"payload", **sse())
    with pytest.raises(ClientError) as no_source_key:
        s3.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src"})
    assert code(no_source_key) == (400, "InvalidRequest")
    s3.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src"},
                   CopySourceSSECustomerAlgorithm="AES256", CopySourceSSECustomerKey=KEY, **sse(OTHER))
    assert s3.get_object(Bucket=bucket, Key="dst", **sse(OTHER))["Body"].read() == b"payload"
    s3.copy_object(Bucket=bucket, Key="clear", CopySource={"Bucket": bucket, "Key": "src"},
                   CopySourceSSECustomerAlgorithm="AES256", CopySourceSSECustomerKey=KEY)
    assert s3.get_object(Bucket=bucket, Key="clear")["Body"].read() == b"payload"  # no key given: stored without SSE-C


def test_multipart_parts_give_the_key_again(s3, bucket):
    upload = s3.create_multipart_upload(Bucket=bucket, Key="big", **sse())
    assert upload["SSECustomerKeyMD5"] == KEY_MD5
    with pytest.raises(ClientError) as without:
        s3.upload_part(Bucket=bucket, Key="big", UploadId=upload["UploadId"], PartNumber=1, Body=b"x" * 10)
    assert code(without) == (400, "InvalidRequest")
    part = s3.upload_part(Bucket=bucket, Key="big", UploadId=upload["UploadId"], PartNumber=1, Body=b"x" * 10, **sse())
    s3.complete_multipart_upload(Bucket=bucket, Key="big", UploadId=upload["UploadId"],
                                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]})
    assert s3.get_object(Bucket=bucket, Key="big", **sse())["Body"].read() == b"x" * 10
    with pytest.raises(ClientError):
        s3.get_object(Bucket=bucket, Key="big")


@pytest.mark.parametrize("headers, status, message", [
    ({"algorithm": "AES256", "key": base64.b64encode(KEY).decode(), "key-MD5": base64.b64encode(b"0" * 16).decode()}, 400, "did not match"),
    ({"algorithm": "AES256", "key": base64.b64encode(b"short").decode(), "key-MD5": "x"}, 400, "secret key was invalid"),
    ({"algorithm": "AES256", "key": "%%not base64%%", "key-MD5": "x"}, 400, "secret key was invalid"),
    ({"algorithm": "aws:kms", "key": base64.b64encode(KEY).decode(), "key-MD5": KEY_MD5}, 400, "Supported value: AES256"),
    ({"key": base64.b64encode(KEY).decode(), "key-MD5": KEY_MD5}, 400, "valid encryption algorithm"),
    ({"algorithm": "AES256", "key": base64.b64encode(KEY).decode()}, 400, "MD5 of the secret key"),
])
def test_a_bad_customer_key_is_refused_and_nothing_is_stored(s3, s3_url, bucket, headers, status, message):
    sent = {f"x-amz-server-side-encryption-customer-{k}": v for k, v in headers.items()}
    answer = httpx2.put(f"{s3_url}/{bucket}/refused", content=b"data", headers=sent)
    assert answer.status_code == status and message in answer.text and answer.text.startswith("<?xml")
    assert s3.list_objects_v2(Bucket=bucket).get("KeyCount") == 0
