"""An S3 request as the protocol reads it: bucket and key from the path or the virtual host, query, headers;
and the limits every request is held to."""

from __future__ import annotations

import re
from urllib.parse import unquote

from .signing import Auth, ChunkSignatures
from .xml import S3Error

MAX_KEY_BYTES = 1024
MAX_XML_BODY = 4 * 1024 * 1024
MAX_METADATA_BYTES = 2048
STORED_HEADERS = ("content-encoding", "content-disposition", "content-language", "cache-control", "expires")
RESPONSE_OVERRIDES = {
    "response-content-type": "content-type",
    "response-content-language": "content-language",
    "response-expires": "expires",
    "response-cache-control": "cache-control",
    "response-content-disposition": "content-disposition",
    "response-content-encoding": "content-encoding",
}
_BUCKET_RE = re.compile(r"[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]\Z")  # \Z: "$" would also match before a final newline
_IP_RE = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+\Z")


def digits(text: str, most: int = 19) -> bool:
    """ASCII digits only, at most `most` of them (checked before any int(): str.isdigit() also accepts '²' and '٣',
    and int() of thousands of digits is slow or raises)."""
    return 0 < len(text) <= most and text.isascii() and text.isdigit()


class ClientGone(Exception):
    """The client disconnected before its body was complete: nothing is stored."""


def valid_bucket_name(name: str) -> bool:
    return bool(_BUCKET_RE.match(name)) and ".." not in name and ".-" not in name and "-." not in name and not _IP_RE.match(name)


class Request:
    """One parsed S3 request."""

    __slots__ = ("method", "bucket", "key", "query", "params", "headers", "multi", "raw_path", "resource", "auth", "request_id", "body_pending",
                 "invalid", "chunk_signatures", "cors", "notify", "client_ip")

    def __init__(self, scope: dict, request_id: str, virtual_bucket: str | None) -> None:
        self.method: str = scope["method"]
        self.request_id = request_id
        raw = scope.get("raw_path") or scope["path"].encode()
        self.raw_path = raw.decode("latin-1")
        path = unquote(self.raw_path, encoding="utf-8", errors="surrogateescape")
        self.query: list[tuple[str, str]] = [
            (k, v) for k, v in (pair.partition("=")[::2] for pair in scope["query_string"].decode("latin-1").split("&") if pair)
        ]
        self.params: dict[str, str] = {}
        for k, v in self.query:
            self.params.setdefault(unquote(k), unquote(v.replace("+", "%20")))
        self.multi: dict[str, list[str]] = {}
        for k, v in scope["headers"]:
            self.multi.setdefault(k.decode("latin-1"), []).append(v.decode("latin-1"))
        self.headers = {k: v[-1] for k, v in self.multi.items()}
        # A body not read by the time we answer (an early error) must not be left on a kept-alive connection.
        self.body_pending = self.headers.get("content-length", "0") not in ("0", "") or "transfer-encoding" in self.headers
        self.invalid: S3Error | None = None  # raised once the request is being answered, so the error has its request id
        try:
            path.encode("utf-8")
        except UnicodeEncodeError:  # %-escapes that are not UTF-8 (a key must be valid UTF-8)
            self.invalid = S3Error("InvalidURI", "Couldn't parse the specified URI: object keys must be valid UTF-8.", status=400)
            path = path.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        if virtual_bucket is not None:
            self.bucket = virtual_bucket
            self.key = path[1:]
            self.resource = f"/{virtual_bucket}{self.raw_path}"
        else:
            bucket, _, key = path[1:].partition("/")
            self.bucket = bucket or None
            self.key = key
            self.resource = self.raw_path
        self.auth: Auth | None = None
        self.chunk_signatures: ChunkSignatures | None = None  # set when a signed streaming upload's chain is checked
        self.cors: list[tuple[str, str]] = []  # a bucket CORS rule's headers for this request's answer
        self.notify: list[tuple[str, bytes]] = []  # event notifications to send once this request has been answered
        client = scope.get("client")
        self.client_ip: str = client[0] if client else "127.0.0.1"

    def resource_name(self) -> str:
        if self.bucket and self.key:
            return f"/{self.bucket}/{self.key}"
        return f"/{self.bucket}" if self.bucket else "/"
