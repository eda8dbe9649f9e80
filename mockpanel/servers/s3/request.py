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
STORED_HEADERS = ("content-encoding", "content-disposition", "content-language", "cache-control", "expires", "x-amz-storage-class",
                  "x-amz-website-redirect-location")
STORAGE_CLASSES = ("STANDARD", "REDUCED_REDUNDANCY", "STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING", "GLACIER", "DEEP_ARCHIVE",
                   "OUTPOSTS", "GLACIER_IR", "SNOW", "EXPRESS_ONEZONE")


def check_stored_headers(headers: dict[str, str]) -> dict[str, str]:
    """The stored headers as S3 keeps them: a storage class it knows (STANDARD is not kept: S3 names no class then),
    a website redirect that is a path or an http(s) URL; InvalidStorageClass / InvalidRedirectLocation otherwise."""
    storage_class = headers.get("x-amz-storage-class")
    if storage_class is not None:
        if storage_class not in STORAGE_CLASSES:
            raise S3Error("InvalidStorageClass", StorageClassRequested=storage_class[:64])
        if storage_class == "STANDARD":
            del headers["x-amz-storage-class"]
    redirect = headers.get("x-amz-website-redirect-location")
    if redirect is not None and (not redirect.startswith(("/", "http://", "https://")) or len(redirect) > 2048):
        raise S3Error("InvalidRedirectLocation", "The website redirect location must have a prefix of 'http://' or 'https://' or '/'.")
    return headers
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


_LEGACY_BUCKET_RE = re.compile(r"[A-Za-z0-9._-]{1,255}\Z")


def valid_bucket_name(name: str, legacy: bool = False) -> bool:
    """S3's bucket naming rules; `legacy` (s3.bucket_names = "legacy"): also the names us-east-1 took before March
    2018 — underscores, capitals, up to 255 characters — as suites written against moto create them."""
    if legacy and _LEGACY_BUCKET_RE.match(name) and name not in (".", ".."):
        return True
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
