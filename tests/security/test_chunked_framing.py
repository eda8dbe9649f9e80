"""aws-chunked framing that used to freeze every server: a chunk size must be hex digits and nothing else."""

from __future__ import annotations

import subprocess

import httpx2
import pytest

from mockpanel.servers.s3.chunked import AwsChunkedDecoder
from mockpanel.servers.s3.xml import S3Error
from mockpanel.testing import RunningHub, settings_for


@pytest.fixture(scope="module")
def hub():
    with RunningHub(settings_for(["auth", "s3"])) as running:
        yield running


def test_the_negative_chunk_size_from_the_report_gets_400_and_every_server_keeps_answering(hub):
    s3, auth = hub.urls["s3"], hub.urls["auth"]
    # The report's command (curl sends it as a form PUT), with a valid bucket name so the body is read.
    done = subprocess.run(
        ["curl", "-sS", "--max-time", "10", "-o", "-", "-w", "\\n%{http_code}", "-X", "PUT", "-H", "Content-Encoding: aws-chunked",
         "--data-binary", "1\r\nA\r\n-6\r\n0\r\n\r\n", f"{s3}/bucket/k"],
        capture_output=True, text=True, timeout=30,
    )
    body, _, status = done.stdout.rpartition("\n")
    assert status == "400", done
    assert "<Code>IncompleteBody</Code>" in body and "bad chunk size" in body
    assert httpx2.get(f"{auth}/health", timeout=5).status_code == 200
    assert httpx2.get(f"{s3}/health", timeout=5).status_code == 200
    assert httpx2.get(f"{s3}/bucket/k", timeout=5).status_code == 404  # nothing stored


@pytest.mark.parametrize("size", [b"-6", b"+1", b"0x1", b"1_0", b" 1", b"1 ", b"", b"g", b"1" * 17, "\u0661".encode()])
def test_chunk_sizes_other_than_plain_hex_are_refused_through_the_streaming_header(hub, size):
    s3 = hub.urls["s3"]
    body = b"1\r\nA\r\n" + size + b"\r\nBBBBBB\r\n0\r\n\r\n"
    r = httpx2.put(f"{s3}/bucket2/k", content=body, timeout=10,
                  headers={"x-amz-content-sha256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER", "content-encoding": "aws-chunked"})
    assert r.status_code == 400, r.text
    assert "<Code>IncompleteBody</Code>" in r.text
    assert httpx2.get(f"{hub.urls['auth']}/health", timeout=5).status_code == 200


@pytest.mark.parametrize("size", [b"-6", b"+1", b"0x1", b"1_0", b" 1", b"", b"1" * 17])
def test_the_decoder_refuses_the_size_at_once(size):
    decoder = AwsChunkedDecoder()
    assert decoder.feed(b"1\r\nA\r\n") == b"A"
    with pytest.raises(S3Error, match="bad chunk size"):
        decoder.feed(size + b"\r\n")


def test_plain_hex_sizes_in_either_case_still_decode():
    decoder = AwsChunkedDecoder()
    out = decoder.feed(b"a\r\n0123456789\r\nA;chunk-signature=ab\r\n0123456789\r\n0\r\n\r\n")
    decoder.finish()
    assert out == b"0123456789" * 2 and decoder.done
