"""S3 as every client sees it (issue: the clients users bring, not only boto3) — each behaviour through boto3 where it
is boto3's to see, raw HTTP where boto3 hides it."""

from __future__ import annotations

import base64

import httpx2
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
    wrong = httpx2.put(f"{s3_url}/{bucket}/bad", content=body, headers={"x-amz-checksum-crc64nvme": crc64(b"other")})
    assert wrong.status_code == 400 and "<Code>BadDigest</Code>" in wrong.text
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="bad")  # nothing stored
    delete = b"<Delete><Object><Key>k</Key></Object></Delete>"
    refused = httpx2.post(f"{s3_url}/{bucket}?delete", content=delete, headers={"x-amz-checksum-crc64nvme": crc64(b"x")})
    assert refused.status_code == 400 and "<Code>BadDigest</Code>" in refused.text
    done = httpx2.post(f"{s3_url}/{bucket}?delete", content=delete, headers={"x-amz-checksum-crc64nvme": crc64(delete)})
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


def test_storage_class_and_website_redirect_are_kept_listed_and_copied(s3, bucket):
    s3.put_object(Bucket=bucket, Key="cold", Body=b"x", StorageClass="GLACIER_IR", WebsiteRedirectLocation="/elsewhere")
    head = s3.head_object(Bucket=bucket, Key="cold")
    assert head["StorageClass"] == "GLACIER_IR" and head["WebsiteRedirectLocation"] == "/elsewhere"
    s3.put_object(Bucket=bucket, Key="warm", Body=b"x")
    assert "StorageClass" not in s3.head_object(Bucket=bucket, Key="warm")  # STANDARD goes unnamed, as S3
    listed = {o["Key"]: o["StorageClass"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]}
    assert listed == {"cold": "GLACIER_IR", "warm": "STANDARD"}
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket=bucket, Key="cold", Body=b"y", StorageClass="STANDARD_IA")
    assert {v["StorageClass"] for v in s3.list_object_versions(Bucket=bucket, Prefix="cold")["Versions"]} == {"STANDARD_IA", "GLACIER_IR"}
    s3.copy_object(Bucket=bucket, Key="copy", CopySource={"Bucket": bucket, "Key": "cold"}, StorageClass="ONEZONE_IA")
    assert s3.head_object(Bucket=bucket, Key="copy")["StorageClass"] == "ONEZONE_IA"
    s3.copy_object(Bucket=bucket, Key="cold", CopySource={"Bucket": bucket, "Key": "cold"}, StorageClass="DEEP_ARCHIVE")  # in place: allowed
    assert s3.head_object(Bucket=bucket, Key="cold")["StorageClass"] == "DEEP_ARCHIVE"
    upload = s3.create_multipart_upload(Bucket=bucket, Key="mp", StorageClass="INTELLIGENT_TIERING")
    assert s3.list_multipart_uploads(Bucket=bucket)["Uploads"][0]["StorageClass"] == "INTELLIGENT_TIERING"
    s3.abort_multipart_upload(Bucket=bucket, Key="mp", UploadId=upload["UploadId"])
    with pytest.raises(ClientError) as refused:
        s3.put_object(Bucket=bucket, Key="bad", Body=b"x", StorageClass="NOPE")
    assert error_code(refused) == "InvalidStorageClass"
    with pytest.raises(ClientError) as refused:
        s3.put_object(Bucket=bucket, Key="bad", Body=b"x", WebsiteRedirectLocation="ftp://x")
    assert error_code(refused) == "InvalidRedirectLocation"


def test_metadata_bytes_round_trip_as_received(s3_url, bucket):
    sent = [(b"x-amz-meta-latin", b"caf\xe9"), (b"x-amz-meta-utf8", "café".encode())]
    assert httpx2.put(f"{s3_url}/{bucket}/raw", content=b"x", headers=sent).status_code == 200
    form = (b'--XX\r\nContent-Disposition: form-data; name="key"\r\n\r\nform\r\n--XX\r\nContent-Disposition: form-data; name="x-amz-meta-latin"'
            b'\r\n\r\ncaf\xe9\r\n--XX\r\nContent-Disposition: form-data; name="file"; filename="f"\r\n\r\nx\r\n--XX--\r\n')
    assert httpx2.post(f"{s3_url}/{bucket}", content=form, headers={"content-type": "multipart/form-data; boundary=XX"}).status_code == 204
    for key, expected in (("raw", sent), ("form", sent[:1])):
        got = [(k, v) for k, v in httpx2.head(f"{s3_url}/{bucket}/{key}").headers.raw if k.startswith(b"x-amz-meta-")]
        assert got == expected, key


def test_gzip_aws_chunked_over_a_plain_body_is_a_plain_body(s3, s3_url, bucket):
    import gzip

    body = gzip.compress(b"hello " * 100)
    r = httpx2.put(f"{s3_url}/{bucket}/gz", content=body, headers={"content-encoding": "gzip, aws-chunked", "x-amz-content-sha256": "UNSIGNED-PAYLOAD"})
    assert r.status_code == 200, r.text
    got = s3.get_object(Bucket=bucket, Key="gz")
    assert got["ContentEncoding"] == "gzip" and got["Body"].read() == body  # stored as sent, aws-chunked stripped from the encoding


def test_get_object_attributes_and_subresources_that_are_not_served_as_another_operation(s3, s3_url, bucket):
    s3.put_object(Bucket=bucket, Key="one", Body=b"12345", ChecksumAlgorithm="SHA256")
    got = s3.get_object_attributes(Bucket=bucket, Key="one", ObjectAttributes=["ETag", "Checksum", "StorageClass", "ObjectSize"])
    assert got["ObjectSize"] == 5 and got["StorageClass"] == "STANDARD" and got["Checksum"]["ChecksumSHA256"]
    assert got["ETag"] == s3.head_object(Bucket=bucket, Key="one")["ETag"].strip('"')
    upload = s3.create_multipart_upload(Bucket=bucket, Key="parts", ChecksumAlgorithm="CRC32")
    listed = []
    for n in range(1, 4):
        part = s3.upload_part(Bucket=bucket, Key="parts", UploadId=upload["UploadId"], PartNumber=n, Body=bytes([n]) * (5 * 1024 * 1024),
                              ChecksumAlgorithm="CRC32")
        listed.append({"PartNumber": n, "ETag": part["ETag"], "ChecksumCRC32": part["ChecksumCRC32"]})
    s3.complete_multipart_upload(Bucket=bucket, Key="parts", UploadId=upload["UploadId"], MultipartUpload={"Parts": listed})
    page = s3.get_object_attributes(Bucket=bucket, Key="parts", ObjectAttributes=["ObjectParts"], MaxParts=2)["ObjectParts"]
    assert page["TotalPartsCount"] == 3 and page["IsTruncated"] is True and [p["PartNumber"] for p in page["Parts"]] == [1, 2]
    rest = s3.get_object_attributes(Bucket=bucket, Key="parts", ObjectAttributes=["ObjectParts"], PartNumberMarker=page["NextPartNumberMarker"])
    assert [(p["PartNumber"], p["ChecksumCRC32"]) for p in rest["ObjectParts"]["Parts"]] == [(3, listed[2]["ChecksumCRC32"])]
    for subresource in ("torrent", "restore", "select"):  # not implemented: said so, never the object's body
        r = httpx2.get(f"{s3_url}/{bucket}/one?{subresource}")
        assert r.status_code == 501 and "<Code>NotImplemented</Code>" in r.text, subresource
    assert b"12345" not in httpx2.get(f"{s3_url}/{bucket}/one?attributes", headers={"x-amz-object-attributes": "ObjectSize"}).content


def test_encryption_is_kept_on_writes_copies_and_parts_and_a_bucket_default_applies(s3, bucket):
    with pytest.raises(ClientError) as unset:
        s3.get_bucket_encryption(Bucket=bucket)
    assert error_code(unset) == "ServerSideEncryptionConfigurationNotFoundError"
    s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [{
        "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": "alias/app"}, "BucketKeyEnabled": True}]})
    rule = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"]["KMSMasterKeyID"] == "alias/app" and rule["BucketKeyEnabled"] is True
    put = s3.put_object(Bucket=bucket, Key="by-default", Body=b"x")
    assert (put["ServerSideEncryption"], put["SSEKMSKeyId"], put["BucketKeyEnabled"]) == ("aws:kms", "alias/app", True)
    s3.put_object(Bucket=bucket, Key="aes", Body=b"x", ServerSideEncryption="AES256")
    copied = s3.copy_object(Bucket=bucket, Key="copy", CopySource={"Bucket": bucket, "Key": "aes"}, ServerSideEncryption="aws:kms",
                            SSEKMSKeyId="alias/other")
    assert (copied["ServerSideEncryption"], copied["SSEKMSKeyId"]) == ("aws:kms", "alias/other")
    assert s3.head_object(Bucket=bucket, Key="copy")["SSEKMSKeyId"] == "alias/other"
    upload = s3.create_multipart_upload(Bucket=bucket, Key="mp", ServerSideEncryption="aws:kms", SSEKMSKeyId="alias/mp")
    part = s3.upload_part_copy(Bucket=bucket, Key="mp", UploadId=upload["UploadId"], PartNumber=1, CopySource={"Bucket": bucket, "Key": "aes"})
    assert (part["ServerSideEncryption"], part["SSEKMSKeyId"]) == ("aws:kms", "alias/mp")
    s3.delete_bucket_encryption(Bucket=bucket)
    assert "ServerSideEncryption" not in s3.put_object(Bucket=bucket, Key="plain", Body=b"x")


def test_legacy_bucket_names_are_a_setting():
    from conftest import make_s3_client
    from mockpanel.testing import RunningHub, settings_for

    for mode, accepted in (("strict", False), ("legacy", True)):
        with RunningHub(settings_for(["s3"], {"s3": {"bucket_names": mode}})) as running:
            client = make_s3_client(running.urls["s3"])
            if accepted:
                client.create_bucket(Bucket="Old_Style_Bucket")
                client.put_object(Bucket="Old_Style_Bucket", Key="k", Body=b"x")
                assert client.get_object(Bucket="Old_Style_Bucket", Key="k")["Body"].read() == b"x"
            else:
                with pytest.raises(ClientError) as refused:
                    client.create_bucket(Bucket="Old_Style_Bucket")
                assert error_code(refused) == "InvalidBucketName"
