"""Streaming decoder for `Content-Encoding: aws-chunked` bodies (SigV4 streaming payloads, with or without trailers).

Each chunk is `<hex size>[;chunk-signature=<sig>]\\r\\n<bytes>\\r\\n`; a zero-size chunk ends the data and may be
followed by trailer lines `name:value\\r\\n` and a blank line.
"""

from __future__ import annotations

import hashlib
import re

from .signing import ChunkSignatures
from .xml import S3Error

MAX_LINE = 4096
MAX_TRAILERS = 8  # a checksum and its signature is what senders send
MAX_TRAILER_BYTES = 4096
# Hex digits only: int(text, 16) also takes a sign, "0x", "_" and spaces, and a negative size moved the cursor
# backwards, looping forever on the event loop every server shares. 16 digits cover any 64-bit size.
CHUNK_SIZE = re.compile(rb"[0-9a-fA-F]{1,16}\Z")


class AwsChunkedDecoder:
    """`signatures`: the chain of a signed streaming upload, checked chunk by chunk (None: signatures not checked)."""

    def __init__(self, signatures: ChunkSignatures | None = None) -> None:
        self._buffer = bytearray()
        self._remaining = 0  # bytes of the current chunk still to come
        self._state = "size"  # size -> data -> crlf -> size ... -> trailers -> done
        self.trailers: dict[str, str] = {}
        self._trailer_bytes = 0
        self._signatures = signatures
        self._chunk_signature: str | None = None
        self._chunk_hash = hashlib.sha256()

    @property
    def done(self) -> bool:
        return self._state == "done"

    def _bad(self, why: str) -> S3Error:
        return S3Error("IncompleteBody", f"The aws-chunked body is malformed: {why}", status=400)

    def feed(self, data: bytes) -> bytes:
        """Decoded payload bytes found in `data` (possibly none)."""
        if self._state == "done":
            if data.strip():
                raise self._bad("data after the final chunk")
            return b""
        self._buffer += data
        out = bytearray()
        buf = self._buffer
        pos = 0
        while True:
            if self._state == "data":
                take = min(self._remaining, len(buf) - pos)
                out += buf[pos : pos + take]
                if self._signatures is not None:
                    self._chunk_hash.update(buf[pos : pos + take])
                pos += take
                self._remaining -= take
                if self._remaining:
                    break
                if self._signatures is not None:
                    self._signatures.chunk(self._chunk_signature, self._chunk_hash.hexdigest())
                self._state = "crlf"
            if self._state == "crlf":
                if len(buf) - pos < 2:
                    break
                if buf[pos : pos + 2] != b"\r\n":
                    raise self._bad("a chunk is longer than its declared size")
                pos += 2
                self._state = "size"
            end = buf.find(b"\r\n", pos)
            if end < 0:
                if len(buf) - pos > MAX_LINE:
                    raise self._bad("a chunk header line is too long")
                break
            line = bytes(buf[pos:end])
            pos = end + 2
            if self._state == "size":
                size_text, _, extension = line.partition(b";")
                if not CHUNK_SIZE.match(size_text):
                    raise self._bad(f"bad chunk size {size_text[:20]!r}")
                size = int(size_text, 16)
                if self._signatures is not None:
                    self._chunk_signature = extension[16:].decode("latin-1") if extension.startswith(b"chunk-signature=") else None
                    self._chunk_hash = hashlib.sha256()
                if size == 0:
                    if self._signatures is not None:
                        self._signatures.chunk(self._chunk_signature, self._chunk_hash.hexdigest())
                    self._state = "trailers"
                else:
                    self._remaining = size
                    self._state = "data"
            elif self._state == "trailers":
                if not line:
                    self._end()
                    break
                name, sep, value = line.partition(b":")
                if not sep:
                    raise self._bad("a trailer line without a colon")
                self._trailer_bytes += len(line)
                if len(self.trailers) >= MAX_TRAILERS or self._trailer_bytes > MAX_TRAILER_BYTES:
                    raise self._bad(f"more trailers than allowed ({MAX_TRAILERS} lines, {MAX_TRAILER_BYTES} bytes)")
                self.trailers[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
        del buf[:pos]
        return bytes(out)

    def finish(self) -> None:
        # Some senders end right after the trailers, without the final blank line.
        if self._state == "trailers" and not self._buffer:
            self._end()
        if self._state != "done":
            raise self._bad("the body ended before its final chunk")

    def _end(self) -> None:
        self._state = "done"
        if self._signatures is not None and self._signatures.trailer:
            given = self.trailers.get("x-amz-trailer-signature")
            self._signatures.trailing(given, [(k, v) for k, v in self.trailers.items() if k != "x-amz-trailer-signature"])
