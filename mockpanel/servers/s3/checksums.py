"""Checksums: the algorithms S3 knows, and reading a body (aws-chunked or not) while checking every digest sent."""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import zlib
from typing import Any, Callable

import google_crc32c

from .chunked import AwsChunkedDecoder
from .request import Request, digits
from .storage import BodyWriter
from .xml import S3Error, Xml, el

CHECKSUM_ALGORITHMS = ("crc32", "crc32c", "sha1", "sha256", "crc64nvme")
DIGEST_SIZES = {"crc32": 4, "crc32c": 4, "crc64nvme": 8, "sha1": 20, "sha256": 32}
ALLOWED_TRAILERS = {f"x-amz-checksum-{a}" for a in CHECKSUM_ALGORITHMS} | {"x-amz-trailer-signature"}


def check_value(algorithm: str, value: str) -> None:
    """A checksum value must be the base64 of exactly that algorithm's digest (S3: InvalidDigest otherwise)."""
    try:
        ok = len(value) <= 64 and len(base64.b64decode(value, validate=True)) == DIGEST_SIZES[algorithm]
    except (binascii.Error, ValueError):
        ok = False
    if not ok:
        raise S3Error("InvalidDigest", f"Value for x-amz-checksum-{algorithm} header is invalid.")


class _Crc32:
    def __init__(self) -> None:
        self.value = 0

    def update(self, data: bytes) -> None:
        self.value = zlib.crc32(data, self.value)

    def digest(self) -> bytes:
        return self.value.to_bytes(4, "big")


class _Crc32c:
    def __init__(self) -> None:
        self._c = google_crc32c.Checksum()

    def update(self, data: bytes) -> None:
        self._c.update(data)

    def digest(self) -> bytes:
        return self._c.digest()


class _Crc64Nvme:
    """CRC-64/NVME, as AWS computes it: awscrt's implementation (the AWS SDKs' own C runtime)."""

    def __init__(self) -> None:
        self.value = 0

    def update(self, data: bytes) -> None:
        from awscrt.checksums import crc64nvme

        self.value = crc64nvme(data, self.value)

    def digest(self) -> bytes:
        return self.value.to_bytes(8, "big")


def new_checksum(algorithm: str) -> Any:
    """A hasher for one of CHECKSUM_ALGORITHMS (each is computed and checked: none is stored as sent)."""
    if algorithm == "crc32":
        return _Crc32()
    if algorithm == "crc32c":
        return _Crc32c()
    if algorithm == "crc64nvme":
        return _Crc64Nvme()
    if algorithm in ("sha1", "sha256"):
        return hashlib.new(algorithm)
    raise S3Error("InvalidRequest", f"Checksum algorithm {algorithm[:32]} is not supported.")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def checksum_elements(checksums: dict[str, str]) -> list[Xml]:
    """<ChecksumCRC32>…</ChecksumCRC32> and the like; only known algorithms name an element, values are text."""
    return [el(f"Checksum{a.upper()}", v) for a, v in checksums.items() if a in CHECKSUM_ALGORITHMS]


class ChecksummedBodies:
    """Reading an upload's body into a BodyWriter, decoding aws-chunked and checking Content-MD5, x-amz-content-sha256
    and x-amz-checksum-* (in headers or trailers)."""

    def _checksum_plan(self, req: Request) -> tuple[list[str], dict[str, str]]:
        """Which checksums to compute, and the values the client sent in headers (checked after the body)."""
        h = req.headers
        wanted: list[str] = []
        given: dict[str, str] = {}
        for algorithm in CHECKSUM_ALGORITHMS:
            value = h.get(f"x-amz-checksum-{algorithm}")
            if value is not None:
                check_value(algorithm, value)
                wanted.append(algorithm)
                given[algorithm] = value
        trailer = h.get("x-amz-trailer", "")
        if trailer.startswith("x-amz-checksum-"):
            algorithm = trailer[15:].strip().lower()
            if algorithm not in CHECKSUM_ALGORITHMS:
                raise S3Error("InvalidRequest", f"The value specified in the x-amz-trailer header is not supported: {trailer}")
            if algorithm not in wanted:
                wanted.append(algorithm)
        sdk = h.get("x-amz-sdk-checksum-algorithm", "").lower()
        if sdk and sdk in CHECKSUM_ALGORITHMS and sdk not in wanted:
            wanted.append(sdk)
        return wanted, given

    async def receive_body(self, req: Request, receive: Callable, writer: BodyWriter) -> dict[str, str]:
        """Stream the body into `writer`, decoding aws-chunked and checking every digest sent; returns checksums."""
        h = req.headers
        wanted, given = self._checksum_plan(req)
        hashers = {a: new_checksum(a) for a in wanted}
        content_sha = h.get("x-amz-content-sha256", "")
        sha256 = hashlib.sha256() if re.fullmatch(r"[0-9a-fA-F]{64}", content_sha) else None
        # Framed by x-amz-content-sha256, as S3: `Content-Encoding: gzip, aws-chunked` with UNSIGNED-PAYLOAD or a digest is a
        # plain body. Only a request without that header (curl, a form) is framed by its Content-Encoding.
        chunked = content_sha.startswith("STREAMING-") if content_sha else "aws-chunked" in h.get("content-encoding", "")
        decoder = AwsChunkedDecoder(req.chunk_signatures) if chunked else None
        md5_given = h.get("content-md5")
        if md5_given is not None:
            try:
                md5_raw = base64.b64decode(md5_given, validate=True)
                if len(md5_raw) != 16:
                    raise ValueError
            except (binascii.Error, ValueError):
                raise S3Error("InvalidDigest", ContentMD5=md5_given) from None
        try:
            async for chunk in self.body_chunks(req, receive):
                if sha256 is not None:
                    sha256.update(chunk)
                data = decoder.feed(chunk) if decoder is not None else chunk
                if data:
                    writer.write(data)
                    for hasher in hashers.values():
                        if hasher is not None:
                            hasher.update(data)
            if decoder is not None:
                decoder.finish()
                for name, value in decoder.trailers.items():
                    if name not in ALLOWED_TRAILERS:
                        raise S3Error("InvalidRequest", "The request contains a trailer that is not supported: "
                                      + name[:64].encode("ascii", "backslashreplace").decode())
                    if name.startswith("x-amz-checksum-"):
                        check_value(name[15:], value)
                        given[name[15:]] = value
                        if name[15:] not in hashers:
                            hashers[name[15:]] = None
            if "content-length" in h and decoder is None and digits(h["content-length"]) and writer.size != int(h["content-length"]):
                raise S3Error("IncompleteBody")
            decoded_length = h.get("x-amz-decoded-content-length")
            if decoder is not None and decoded_length is not None and digits(decoded_length) and int(decoded_length) != writer.size:
                raise S3Error("IncompleteBody", "The decoded length does not match x-amz-decoded-content-length")
            if sha256 is not None and sha256.hexdigest() != content_sha.lower():
                raise S3Error("XAmzContentSHA256Mismatch", ClientComputedContentSHA256=content_sha, S3ComputedContentSHA256=sha256.hexdigest())
            if md5_given is not None and writer.md5.digest() != md5_raw:
                raise S3Error("BadDigest", ExpectedDigest=md5_given, CalculatedDigest=b64(writer.md5.digest()))
            checksums: dict[str, str] = {}
            for algorithm, hasher in hashers.items():
                if hasher is None:  # named only in a trailer: the body is read by now, so it cannot be checked
                    raise S3Error("InvalidRequest", f"The trailer x-amz-checksum-{algorithm} was not declared in x-amz-trailer.")
                computed = b64(hasher.digest())
                sent = given.get(algorithm)
                if sent is not None:
                    try:
                        base64.b64decode(sent, validate=True)
                    except (binascii.Error, ValueError):
                        raise S3Error("InvalidDigest", f"Value for x-amz-checksum-{algorithm} header is invalid.") from None
                    if sent != computed:
                        raise S3Error("BadDigest", f"The {algorithm.upper()} you specified did not match the calculated checksum.")
                checksums[algorithm] = computed
            return checksums
        except BaseException:
            writer.discard()
            raise
