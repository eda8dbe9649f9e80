"""Every S3 input bounded and validated, answered with S3's own error (never a 500, never exception text), nothing
stored changed, the server still answering."""

from __future__ import annotations

import base64
import concurrent.futures
import socket

import httpx2
import pytest

from conftest import make_s3_client, read_response
from mockpanel.testing import RunningHub, settings_for

HUGE = "9" * 5000


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    data = tmp_path_factory.mktemp("s3-data")
    with RunningHub(settings_for(["s3"], {"s3": {"min_part_size": "1", "data_dir": str(data)}})) as running:
        yield running, data


@pytest.fixture
def s3(hub):
    running, _ = hub
    url = running.urls["s3"]
    httpx2.post(f"{url}/__mockpanel/reset").raise_for_status()
    client = make_s3_client(url)
    client.create_bucket(Bucket="box")
    client.put_object(Bucket="box", Key="sentinel", Body=b"keep me")
    return url, client


def assert_s3_error(r: httpx2.Response, status: int, code: str) -> None:
    assert r.status_code == status, r.text
    assert f"<Code>{code}</Code>" in r.text
    assert "Traceback" not in r.text and "Exceeds the limit" not in r.text and "ValueError" not in r.text


def still_whole(url: str, client) -> None:
    assert client.get_object(Bucket="box", Key="sentinel")["Body"].read() == b"keep me"
    assert httpx2.get(f"{url}/health").status_code == 200


def test_numbers_with_thousands_of_digits_are_refused(s3):
    url, client = s3
    upload = client.create_multipart_upload(Bucket="box", Key="mp")["UploadId"]
    assert_s3_error(httpx2.get(f"{url}/box/sentinel", params={"partNumber": HUGE}), 400, "InvalidArgument")
    assert_s3_error(httpx2.put(f"{url}/box/mp", params={"partNumber": HUGE, "uploadId": upload}, content=b"x"), 400, "InvalidArgument")
    assert_s3_error(httpx2.get(f"{url}/box/mp", params={"uploadId": upload, "part-number-marker": HUGE}), 400, "InvalidArgument")
    body = f"<CompleteMultipartUpload><Part><PartNumber>{HUGE}</PartNumber><ETag>x</ETag></Part></CompleteMultipartUpload>"
    assert_s3_error(httpx2.post(f"{url}/box/mp", params={"uploadId": upload}, content=body), 400, "MalformedXML")
    r = httpx2.get(f"{url}/box/sentinel", headers={"Range": f"bytes={HUGE}-"})
    assert r.status_code == 200 and r.content == b"keep me"  # a range S3 cannot read is ignored, as S3 does
    r = httpx2.put(f"{url}/box/mp", params={"partNumber": "1", "uploadId": upload},
                  headers={"x-amz-copy-source": "box/sentinel", "x-amz-copy-source-range": f"bytes=0-{HUGE}"})
    assert_s3_error(r, 400, "InvalidArgument")
    r = httpx2.put(f"{url}/box/dec", content=b"1\r\nA\r\n0\r\n\r\n",
                  headers={"content-encoding": "aws-chunked", "x-amz-decoded-content-length": HUGE})
    assert r.status_code in (200, 400) and "Traceback" not in r.text
    still_whole(url, client)


def test_keys_must_be_utf8_and_listings_stay_readable(hub, s3):
    url, client = s3
    _, data = hub
    before = sorted(p.name for p in (data / "data").iterdir())
    assert_s3_error(httpx2.put(f"{url}/box/bad%ffkey", content=b"x"), 400, "InvalidURI")
    assert sorted(p.name for p in (data / "data").iterdir()) == before  # no orphan body
    assert [o["Key"] for o in client.list_objects_v2(Bucket="box")["Contents"]] == ["sentinel"]
    still_whole(url, client)


def test_a_bucket_name_with_a_trailing_newline_is_not_a_bucket(s3):
    url, client = s3
    assert_s3_error(httpx2.put(f"{url}/abc%0A"), 400, "InvalidBucketName")
    assert [b["Name"] for b in client.list_buckets()["Buckets"]] == ["box"]


def test_checksum_values_are_checked_against_their_algorithm(s3):
    url, client = s3
    for name, value in (("crc32", "AAAA"), ("crc64nvme", "AAAA<x/>"), ("sha256", base64.b64encode(b"short").decode()),
                        ("crc32c", "not base64!")):
        assert_s3_error(httpx2.put(f"{url}/box/c", content=b"x", headers={f"x-amz-checksum-{name}": value}), 400, "InvalidDigest")
    from awscrt.checksums import crc64nvme

    right = base64.b64encode(crc64nvme(b"x").to_bytes(8, "big")).decode()  # computed and checked, as every algorithm
    assert_s3_error(httpx2.put(f"{url}/box/c", content=b"x", headers={"x-amz-checksum-crc64nvme": base64.b64encode(b"\0" * 8).decode()}), 400, "BadDigest")
    assert httpx2.put(f"{url}/box/c", content=b"x", headers={"x-amz-checksum-crc64nvme": right}).status_code == 200
    still_whole(url, client)


def _streamed(trailers: bytes) -> bytes:
    return b"4\r\nbody\r\n0\r\n" + trailers + b"\r\n"


def test_unknown_trailers_are_refused_and_none_reach_a_listing(s3):
    url, client = s3
    headers = {"content-encoding": "aws-chunked", "x-amz-content-sha256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER"}
    r = httpx2.put(f"{url}/box/t", content=_streamed(b"x-amz-checksum-evil><Injected/>:AAAA\r\n"), headers=headers)
    assert_s3_error(r, 400, "InvalidRequest")
    r = httpx2.put(f"{url}/box/t", content=_streamed(b"x-amz-checksum-crc32:AAAA<\r\n"), headers=headers)
    assert_s3_error(r, 400, "InvalidDigest")
    assert [o["Key"] for o in client.list_objects_v2(Bucket="box")["Contents"]] == ["sentinel"]
    still_whole(url, client)


def test_two_hundred_thousand_trailer_lines_get_400(s3):
    url, client = s3
    lines = b"".join(b"x-amz-checksum-crc32:AAAAAA==\r\n" for _ in range(200_000))
    r = httpx2.put(f"{url}/box/t", content=_streamed(lines), timeout=30,
                  headers={"content-encoding": "aws-chunked", "x-amz-content-sha256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER"})
    assert_s3_error(r, 400, "IncompleteBody")
    assert "more trailers than allowed" in r.text
    still_whole(url, client)


def test_response_overrides_need_a_signature_and_header_safe_values(s3):
    url, client = s3
    r = httpx2.get(f"{url}/box/sentinel", params={"response-content-type": "text/html"})
    assert_s3_error(r, 400, "InvalidRequest")
    for bad in ("text/html\r\nX-Injected: 1", "text/html; ☃", "a\x00b"):
        signed = client.generate_presigned_url("get_object", Params={"Bucket": "box", "Key": "sentinel", "ResponseContentType": bad})
        assert_s3_error(httpx2.get(signed), 400, "InvalidArgument")
    signed = client.generate_presigned_url("get_object", Params={"Bucket": "box", "Key": "sentinel", "ResponseContentType": "text/plain"})
    ok = httpx2.get(signed)
    assert ok.status_code == 200 and ok.headers["content-type"] == "text/plain"
    assert ok.headers["x-content-type-options"] == "nosniff"
    assert httpx2.get(f"{url}/box/sentinel").headers["x-content-type-options"] == "nosniff"


def test_concurrent_completes_of_one_upload_leave_no_orphan_and_no_500(hub, s3):
    url, client = s3
    _, data = hub
    upload = client.create_multipart_upload(Bucket="box", Key="race")["UploadId"]
    etags = [client.upload_part(Bucket="box", Key="race", UploadId=upload, PartNumber=n, Body=bytes([n]) * 300_000)["ETag"]
             for n in (1, 2, 3)]
    body = "<CompleteMultipartUpload>" + "".join(f"<Part><PartNumber>{n}</PartNumber><ETag>{e}</ETag></Part>" for n, e in
                                                  zip((1, 2, 3), etags)) + "</CompleteMultipartUpload>"
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: httpx2.post(f"{url}/box/race", params={"uploadId": upload}, content=body, timeout=30), range(8)))
    statuses = sorted(r.status_code for r in answers)
    assert 200 in statuses and set(statuses) <= {200, 404}, [r.text for r in answers if r.status_code not in (200, 404)]
    assert client.get_object(Bucket="box", Key="race")["Body"].read() == b"\1" * 300_000 + b"\2" * 300_000 + b"\3" * 300_000
    assert list((data / "uploads").iterdir()) == []
    referenced = 2  # sentinel and race
    assert len(list((data / "data").iterdir())) == referenced
    still_whole(url, client)


def test_the_malformed_framing_leaves_the_connection_usable_for_nobody_else(s3):
    """A request refused before its body was read closes its connection: the rest of the body is never parsed as a
    new request."""
    url, _ = s3
    host, port = url.rsplit("/", 1)[1].split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(b"PUT /abc%0A HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n\r\nhello")
        answer = read_response(sock)
    assert answer.startswith(b"HTTP/1.1 400")


def test_concurrent_parts_and_an_abort_mid_part_leave_no_orphan_and_no_500(hub, s3):
    """Sixteen parts at once (eight share a number), then a part still streaming when its upload is aborted: every
    answer is S3's, the last part of each number wins, and no part file outlives its upload."""
    import threading

    url, client = s3
    _, data = hub
    upload = client.create_multipart_upload(Bucket="box", Key="parts")["UploadId"]

    def put(n_and_fill):
        number, fill = n_and_fill
        return httpx2.put(f"{url}/box/parts", params={"uploadId": upload, "partNumber": str(number)},
                         content=bytes([fill]) * 200_000, timeout=30)

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(put, [(1, fill) for fill in range(8)] + [(n, 100 + n) for n in range(2, 10)]))
    assert [r.status_code for r in answers] == [200] * 16, [r.text for r in answers if r.status_code != 200]
    parts = client.list_parts(Bucket="box", Key="parts", UploadId=upload)["Parts"]
    assert [p["PartNumber"] for p in parts] == list(range(1, 10))
    assert len(list((data / "uploads" / upload).glob("*.part"))) == 9  # the losers of part 1 were removed

    # a part still streaming when the upload is aborted: NoSuchUpload, and nothing left behind
    first_sent, aborted = threading.Event(), threading.Event()

    def body():
        yield b"a" * 65536
        first_sent.set()
        aborted.wait(30)
        yield b"b" * 65536

    result = {}
    streaming = threading.Thread(target=lambda: result.update(r=httpx2.put(
        f"{url}/box/parts", params={"uploadId": upload, "partNumber": "10"}, content=body(), timeout=30)))
    streaming.start()
    assert first_sent.wait(30)
    client.abort_multipart_upload(Bucket="box", Key="parts", UploadId=upload)
    aborted.set()
    streaming.join(30)
    assert_s3_error(result["r"], 404, "NoSuchUpload")
    assert not (data / "uploads" / upload).exists()
    still_whole(url, client)
