"""The S3 REST protocol as boto3 and the aws cli send it: a plain ASGI app over the Store."""

from __future__ import annotations

import asyncio
import base64
import bisect
import binascii
import hashlib
import itertools
import re
import time
import zlib
from email.utils import parsedate_to_datetime
from typing import Any, AsyncIterator, Callable, Iterable
from urllib.parse import quote, unquote

import google_crc32c

from ...service import BodyTooLarge, ServerContext
from .chunked import AwsChunkedDecoder
from .signing import Auth, check_expiry, parse_auth, verify
from .domain import Storage
from .storage import BodyWriter, Bucket, ObjectMeta, Store, Upload
from .xml import S3Error, document, e, error_document, http_date, iso8601, parse

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
CHECKSUM_ALGORITHMS = ("crc32", "crc32c", "sha1", "sha256", "crc64nvme")
_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")
_IP_RE = re.compile(r"^\d+\.\d+\.\d+\.\d+$")


def _digits(text: str) -> bool:
    """Only ASCII digits: str.isdigit() also accepts '²' and '٣', which int() refuses or reads."""
    return text.isascii() and text.isdigit()


class ClientGone(Exception):
    """The client disconnected before its body was complete: nothing is stored."""


def valid_bucket_name(name: str) -> bool:
    return bool(_BUCKET_RE.match(name)) and ".." not in name and ".-" not in name and "-." not in name and not _IP_RE.match(name)


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


def new_checksum(algorithm: str) -> Any:
    if algorithm == "crc32":
        return _Crc32()
    if algorithm == "crc32c":
        return _Crc32c()
    if algorithm in ("sha1", "sha256"):
        return hashlib.new(algorithm)
    return None  # crc64nvme: stored as sent, not recomputed


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


class Request:
    """One parsed S3 request."""

    __slots__ = ("method", "bucket", "key", "query", "params", "headers", "multi", "raw_path", "resource", "auth", "request_id", "body_pending")

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

    def resource_name(self) -> str:
        if self.bucket and self.key:
            return f"/{self.bucket}/{self.key}"
        return f"/{self.bucket}" if self.bucket else "/"


class S3Protocol:
    def __init__(self, ctx: ServerContext, storage: Storage, convenience: Callable) -> None:
        self.ctx = ctx
        self.storage = storage
        self.store = storage.store
        self.convenience = convenience
        self.convenience_paths = {"/health", "/presigned-url", "/admin/buckets", "/admin/reset", "/docs", "/redoc", "/openapi.json", "/docs/oauth2-redirect"}
        s = ctx.settings
        self.verify_signatures: bool = s["verify_signatures"]
        self.keys: dict[str, str] = dict(pair.split(":", 1) for pair in s["access_keys"] if ":" in pair)
        self.auto_create: str = s["auto_create_buckets"]
        self.region: str = s["region"]
        self.min_part_size: int = s["min_part_size"]
        self.virtual_host_suffixes = tuple("." + h for h in s["virtual_host_suffixes"])
        self._ids = itertools.count(1)
        self._id_prefix = f"{int(time.time()) & 0xFFFFFF:06X}"

    # --- plumbing ---

    def new_request_id(self) -> str:
        return f"{self._id_prefix}{next(self._ids):010X}"

    async def respond(self, send: Callable, req: Request, status: int, headers: list[tuple[str, str]] | None = None,
                      body: bytes = b"", content_type: str | None = None) -> None:
        raw = [(b"x-amz-request-id", req.request_id.encode()), (b"x-amz-id-2", req.request_id.encode())]
        if req.body_pending:
            raw.append((b"connection", b"close"))
        if content_type:
            raw.append((b"content-type", content_type.encode()))
        for k, v in headers or ():
            raw.append((k.encode("latin-1"), v.encode("latin-1")))
        if req.method == "HEAD" or status in (204, 304):
            if not any(k == "content-length" for k, _ in headers or ()):
                raw.append((b"content-length", b"0" if status in (204, 304) else str(len(body)).encode()))
            body = b""
        else:
            raw.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": raw})
        await send({"type": "http.response.body", "body": body})

    async def error(self, send: Callable, req: Request, exc: S3Error) -> None:
        body = error_document(exc.code, exc.message, req.request_id, **exc.extra, **({"Resource": req.resource_name()} if "Resource" not in exc.extra else {}))
        await self.respond(send, req, exc.status, body=body, content_type="application/xml")

    async def xml(self, send: Callable, req: Request, root: str, parts: Iterable[str], status: int = 200, headers=None) -> None:
        await self.respond(send, req, status, headers, document(root, parts), "application/xml")

    @staticmethod
    async def body_chunks(req: Request, receive: Callable) -> AsyncIterator[bytes]:
        """The request body as it arrives; ClientGone if the client leaves before its end."""
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientGone()
            chunk = message.get("body", b"")
            if chunk:
                yield chunk
            if not message.get("more_body"):
                req.body_pending = False
                return

    async def read_small_body(self, req: Request, receive: Callable, limit: int = MAX_XML_BODY) -> bytes:
        chunks = bytearray()
        async for chunk in self.body_chunks(req, receive):
            chunks += chunk
            if len(chunks) > limit:
                raise S3Error("MalformedXML", "The request body is larger than the maximum allowed size.")
        return bytes(chunks)

    # --- entry point ---

    def _virtual_bucket(self, scope: dict) -> str | None:
        if not self.virtual_host_suffixes:
            return None
        for k, v in scope["headers"]:
            if k == b"host":
                host = v.decode("latin-1").rsplit(":", 1)[0] if not v.startswith(b"[") else ""
                for suffix in self.virtual_host_suffixes:
                    if host.endswith(suffix) and len(host) > len(suffix):
                        return host[: -len(suffix)]
        return None

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            return
        req = Request(scope, self.new_request_id(), self._virtual_bucket(scope))
        try:
            auth = parse_auth(req.headers, req.params)
            if auth is None and req.method in ("GET", "DELETE", "HEAD") and (
                scope["path"] in self.convenience_paths or scope["path"].startswith(("/admin/objects/", "/docs"))
            ):
                await self.convenience(scope, receive, send)
                return
            if req.method == "OPTIONS":
                await self.respond(send, req, 200)
                return
            req.auth = auth
            if auth is not None:
                check_expiry(auth)
                if self.verify_signatures:
                    secret = self.keys.get(auth.access_key)
                    if secret is None:
                        raise S3Error("InvalidAccessKeyId", AWSAccessKeyId=auth.access_key)
                    verify(auth, secret, req.method, req.raw_path, req.resource, req.query, req.multi)
            await self.dispatch(req, receive, send)
        except S3Error as exc:
            await self.error(send, req, exc)
        except ClientGone:
            return
        except BodyTooLarge as exc:
            await self.error(send, req, S3Error("EntityTooLarge", f"Your proposed upload exceeds the maximum allowed size of {exc.limit} bytes"))
        except Exception as exc:  # a bug: still answer in S3's format, and say what broke
            import logging

            logging.getLogger("uvicorn.error").exception("s3: %s %s failed", req.method, req.raw_path)
            await self.error(send, req, S3Error("InternalError", f"mockpanel's S3 mock failed: {type(exc).__name__}: {exc}"))

    async def dispatch(self, req: Request, receive: Callable, send: Callable) -> None:
        m, p = req.method, req.params
        if req.bucket is None:
            if m == "GET":
                return await self.list_buckets(req, send)
            raise S3Error("MethodNotAllowed", Method=m, ResourceType="SERVICE")
        if not req.key:
            if m == "PUT":
                if len(p) == 0:
                    return await self.create_bucket(req, receive, send)
                return await self.unsupported(req)
            if m == "HEAD":
                return await self.head_bucket(req, send)
            if m == "DELETE":
                if p:
                    return await self.unsupported(req)
                return await self.delete_bucket(req, send)
            if m == "GET":
                if "location" in p:
                    return await self.get_location(req, send)
                if "uploads" in p:
                    return await self.list_uploads(req, send)
                if "versions" in p:
                    return await self.list_versions(req, send)
                if "versioning" in p:
                    self.bucket(req)
                    return await self.xml(send, req, "VersioningConfiguration", [])
                if "acl" in p:
                    self.bucket(req)
                    return await self.xml(send, req, "AccessControlPolicy", [_owner(), _full_control()])
                if "cors" in p:
                    self.bucket(req)
                    raise S3Error("NoSuchCORSConfiguration", BucketName=req.bucket)
                if "tagging" in p:
                    self.bucket(req)
                    raise S3Error("NoSuchTagSet", BucketName=req.bucket)
                if set(p) - {"list-type", "prefix", "delimiter", "max-keys", "marker", "continuation-token", "start-after",
                             "encoding-type", "fetch-owner", "x-id"} and not any(k.startswith("X-Amz-") for k in p):
                    return await self.unsupported(req)
                if p.get("list-type") == "2":
                    return await self.list_objects(req, send, v2=True)
                return await self.list_objects(req, send, v2=False)
            if m == "POST" and "delete" in p:
                return await self.delete_objects(req, receive, send)
            raise S3Error("MethodNotAllowed", Method=m, ResourceType="BUCKET")
        if len(req.key.encode("utf-8", "surrogateescape")) > MAX_KEY_BYTES:
            raise S3Error("KeyTooLongError", MaxSizeAllowed=str(MAX_KEY_BYTES), Size=str(len(req.key.encode("utf-8", "surrogateescape"))))
        if m == "PUT":
            if "uploadId" in p:
                if "x-amz-copy-source" in req.headers:
                    return await self.upload_part_copy(req, send)
                return await self.upload_part(req, receive, send)
            if "tagging" in p or "acl" in p or "retention" in p or "legal-hold" in p:
                return await self.unsupported(req)
            if "x-amz-copy-source" in req.headers:
                return await self.copy_object(req, send)
            return await self.put_object(req, receive, send)
        if m in ("GET", "HEAD"):
            if "uploadId" in p and m == "GET":
                return await self.list_parts(req, send)
            if "tagging" in p and m == "GET":
                self.object(req)
                return await self.xml(send, req, "Tagging", ["<TagSet></TagSet>"])
            if "acl" in p and m == "GET":
                self.object(req)
                return await self.xml(send, req, "AccessControlPolicy", [_owner(), _full_control()])
            return await self.get_object(req, send)
        if m == "DELETE":
            if "uploadId" in p:
                return await self.abort_upload(req, send)
            return await self.delete_object(req, send)
        if m == "POST":
            if "uploads" in p:
                return await self.create_upload(req, send)
            if "uploadId" in p:
                return await self.complete_upload(req, receive, send)
        raise S3Error("MethodNotAllowed", Method=m, ResourceType="OBJECT")

    async def unsupported(self, req: Request) -> None:
        names = ", ".join(sorted(k for k in req.params if not k.startswith("X-Amz-"))) or req.method
        raise S3Error("NotImplemented", f"mockpanel's S3 mock does not implement this request ({req.method} ?{names}).")

    # --- buckets ---

    def bucket(self, req: Request) -> Bucket:
        bucket = self.store.buckets.get(req.bucket)  # type: ignore[arg-type]
        if bucket is None:
            raise S3Error("NoSuchBucket", BucketName=req.bucket)
        return bucket

    def writable_bucket(self, req: Request) -> Bucket:
        """The bucket to write to; the seed's unsigned curl writes create it (see auto_create_buckets)."""
        bucket = self.store.buckets.get(req.bucket)  # type: ignore[arg-type]
        if bucket is not None:
            return bucket
        if self.auto_create == "always" or (self.auto_create == "unsigned" and req.auth is None):
            if not valid_bucket_name(req.bucket or ""):
                raise S3Error("InvalidBucketName", BucketName=req.bucket)
            return self._create(req.bucket, self.region)  # type: ignore[arg-type]
        raise S3Error("NoSuchBucket", BucketName=req.bucket)

    def _create(self, name: str, region: str) -> Bucket:
        return self.storage.create_bucket(name, region)

    async def list_buckets(self, req: Request, send: Callable) -> None:
        items = "".join(
            f"<Bucket><Name>{e(b.name)}</Name><CreationDate>{iso8601(b.created)}</CreationDate><BucketRegion>{e(b.region)}</BucketRegion></Bucket>"
            for b in sorted(self.store.buckets.values(), key=lambda b: b.name)
        )
        await self.xml(send, req, "ListAllMyBucketsResult", [_owner(), f"<Buckets>{items}</Buckets>"])

    async def create_bucket(self, req: Request, receive: Callable, send: Callable) -> None:
        name = req.bucket or ""
        if not valid_bucket_name(name):
            raise S3Error("InvalidBucketName", BucketName=name)
        body = await self.read_small_body(req, receive)
        region = self.region
        if body.strip():
            root = parse(body)
            constraint = root.find("LocationConstraint")
            if root.tag != "CreateBucketConfiguration":
                raise S3Error("MalformedXML")
            if constraint is not None and (constraint.text or "").strip():
                region = constraint.text.strip()
        if name in self.store.buckets:
            raise S3Error("BucketAlreadyOwnedByYou", BucketName=name)
        self._create(name, region)
        await self.respond(send, req, 200, [("location", f"/{name}")])

    async def head_bucket(self, req: Request, send: Callable) -> None:
        bucket = self.bucket(req)
        await self.respond(send, req, 200, [("x-amz-bucket-region", bucket.region)])

    async def delete_bucket(self, req: Request, send: Callable) -> None:
        bucket = self.bucket(req)
        if bucket.objects:
            raise S3Error("BucketNotEmpty", BucketName=bucket.name)
        if any(u.bucket == bucket.name for u in self.store.uploads.values()):
            raise S3Error("BucketNotEmpty", "The bucket you tried to delete has multipart uploads in progress", BucketName=bucket.name)
        self.storage.delete_bucket(bucket.name)
        await self.respond(send, req, 204)

    async def get_location(self, req: Request, send: Callable) -> None:
        bucket = self.bucket(req)
        region = "" if bucket.region == "us-east-1" else bucket.region
        await self.respond(send, req, 200, body=(f'<?xml version="1.0" encoding="UTF-8"?>\n<LocationConstraint xmlns="http://s3.amazonaws.com/doc/2006-03-01/">{e(region)}</LocationConstraint>').encode(), content_type="application/xml")

    # --- listings ---

    def _max(self, req: Request, name: str = "max-keys", default: int = 1000) -> int:
        raw = req.params.get(name)
        if raw is None or raw == "":
            return default
        try:
            value = int(raw)
        except ValueError:
            raise S3Error("InvalidArgument", f"Provided {name} not an integer or within integer range", ArgumentName=name, ArgumentValue=raw) from None
        if value < 0:
            raise S3Error("InvalidArgument", f"Argument {name} must be an integer between 0 and 2147483647", ArgumentName=name, ArgumentValue=raw)
        return min(value, default if name != "max-keys" else 1000)

    @staticmethod
    def _walk(bucket: Bucket, prefix: str, delimiter: str, after: str, limit: int) -> tuple[list[str], list[str], bool, str | None]:
        """Keys and common prefixes after `after`, up to `limit` together; (keys, prefixes, truncated, last item)."""
        keys = bucket.keys
        start = max(prefix, after) if after else prefix
        if after and delimiter and after.startswith(prefix) and after.endswith(delimiter) and after.find(delimiter, len(prefix)) == len(after) - len(delimiter):
            start = after + "\U0010ffff"  # `after` was a common prefix: skip everything under it
        i = bisect.bisect_right(keys, start) if start == after or start.endswith("\U0010ffff") else bisect.bisect_left(keys, start)
        contents: list[str] = []
        prefixes: list[str] = []
        last = None
        n = len(keys)
        while i < n:
            key = keys[i]
            if not key.startswith(prefix):
                break
            if limit <= len(contents) + len(prefixes):
                return contents, prefixes, True, last
            if delimiter:
                j = key.find(delimiter, len(prefix))
                if j >= 0:
                    common = key[: j + len(delimiter)]
                    prefixes.append(common)
                    last = common
                    i = bisect.bisect_left(keys, common + "\U0010ffff", i)
                    continue
            contents.append(key)
            last = key
            i += 1
        return contents, prefixes, False, last

    def _enc(self, req: Request) -> Callable[[str], str]:
        if req.params.get("encoding-type") == "url":
            return lambda s: quote(s, safe="/")
        if "encoding-type" in req.params and req.params["encoding-type"] not in ("", "url"):
            raise S3Error("InvalidArgument", "Invalid Encoding Method specified in Request", ArgumentName="encoding-type", ArgumentValue=req.params["encoding-type"])
        return lambda s: s

    def _object_xml(self, tag: str, meta: ObjectMeta, enc: Callable[[str], str], owner: bool, extra: str = "") -> str:
        checksum = "".join(f"<ChecksumAlgorithm>{a.upper()}</ChecksumAlgorithm>" for a in meta.checksums)
        return (
            f"<{tag}><Key>{e(enc(meta.key))}</Key>{extra}<LastModified>{iso8601(meta.last_modified)}</LastModified>"
            f"<ETag>{e(meta.etag)}</ETag>{checksum}<Size>{meta.size}</Size>{_owner() if owner else ''}<StorageClass>STANDARD</StorageClass></{tag}>"
        )

    async def list_objects(self, req: Request, send: Callable, v2: bool) -> None:
        bucket = self.bucket(req)
        p = req.params
        enc = self._enc(req)
        prefix, delimiter = p.get("prefix", ""), p.get("delimiter", "")
        limit = self._max(req)
        if v2:
            token = p.get("continuation-token")
            if token is not None:
                try:
                    after = base64.urlsafe_b64decode(token.encode() + b"=" * (-len(token) % 4)).decode("utf-8", "surrogateescape")
                except (binascii.Error, ValueError):
                    raise S3Error("InvalidArgument", "The continuation token provided is incorrect", ArgumentName="continuation-token", ArgumentValue=token) from None
            else:
                after = p.get("start-after", "")
        else:
            after = p.get("marker", "")
        contents, prefixes, truncated, last = self._walk(bucket, prefix, delimiter, after, limit)
        objects = bucket.objects
        owner = not v2 or p.get("fetch-owner") == "true"
        parts = [f"<Name>{e(bucket.name)}</Name><Prefix>{e(enc(prefix))}</Prefix>"]
        if v2:
            if "continuation-token" in p:
                parts.append(f"<ContinuationToken>{e(p['continuation-token'])}</ContinuationToken>")
            if "start-after" in p:
                parts.append(f"<StartAfter>{e(enc(p['start-after']))}</StartAfter>")
            parts.append(f"<KeyCount>{len(contents) + len(prefixes)}</KeyCount>")
        else:
            parts.append(f"<Marker>{e(enc(after))}</Marker>")
        parts.append(f"<MaxKeys>{limit}</MaxKeys>")
        parts.append(self._listing_flags(req, enc, delimiter, truncated))
        if truncated and last is not None:
            if v2:
                token = base64.urlsafe_b64encode(last.encode("utf-8", "surrogateescape")).decode().rstrip("=")
                parts.append(f"<NextContinuationToken>{token}</NextContinuationToken>")
            else:
                parts.append(f"<NextMarker>{e(enc(last))}</NextMarker>")
        parts.extend(self._object_xml("Contents", objects[k], enc, owner) for k in contents)
        parts.extend(f"<CommonPrefixes><Prefix>{e(enc(cp))}</Prefix></CommonPrefixes>" for cp in prefixes)
        await self.xml(send, req, "ListBucketResult", parts)

    @staticmethod
    def _listing_flags(req: Request, enc: Callable[[str], str], delimiter: str, truncated: bool) -> str:
        """<Delimiter>, <EncodingType> and <IsTruncated>, as every object listing has them."""
        flags = f"<Delimiter>{e(enc(delimiter))}</Delimiter>" if delimiter else ""
        if "encoding-type" in req.params:
            flags += "<EncodingType>url</EncodingType>"
        return flags + f"<IsTruncated>{'true' if truncated else 'false'}</IsTruncated>"

    async def list_versions(self, req: Request, send: Callable) -> None:
        bucket = self.bucket(req)
        p = req.params
        enc = self._enc(req)
        prefix, delimiter = p.get("prefix", ""), p.get("delimiter", "")
        limit = self._max(req)
        after = p.get("key-marker", "")
        contents, prefixes, truncated, last = self._walk(bucket, prefix, delimiter, after, limit)
        parts = [
            f"<Name>{e(bucket.name)}</Name><Prefix>{e(enc(prefix))}</Prefix><KeyMarker>{e(enc(after))}</KeyMarker>"
            f"<VersionIdMarker>{e(p.get('version-id-marker', ''))}</VersionIdMarker><MaxKeys>{limit}</MaxKeys>"
        ]
        parts.append(self._listing_flags(req, enc, delimiter, truncated))
        if truncated and last is not None:
            parts.append(f"<NextKeyMarker>{e(enc(last))}</NextKeyMarker><NextVersionIdMarker>null</NextVersionIdMarker>")
        parts.extend(
            self._object_xml("Version", bucket.objects[k], enc, True, "<VersionId>null</VersionId><IsLatest>true</IsLatest>") for k in contents
        )
        parts.extend(f"<CommonPrefixes><Prefix>{e(enc(cp))}</Prefix></CommonPrefixes>" for cp in prefixes)
        await self.xml(send, req, "ListVersionsResult", parts)

    # --- objects ---

    def object(self, req: Request) -> ObjectMeta:
        bucket = self.bucket(req)
        meta = bucket.objects.get(req.key)
        if meta is None:
            raise S3Error("NoSuchKey", Key=req.key)
        return meta

    def _new_meta(self, req: Request) -> dict[str, Any]:
        """Metadata an upload sets from its headers (PutObject, CreateMultipartUpload, CopyObject REPLACE)."""
        h = req.headers
        metadata = {k[11:]: v for k, v in h.items() if k.startswith("x-amz-meta-")}
        if sum(len(k) + len(v) for k, v in metadata.items()) > MAX_METADATA_BYTES:
            raise S3Error("MetadataTooLarge", MaxSizeAllowed=str(MAX_METADATA_BYTES))
        headers = {k: h[k] for k in STORED_HEADERS if k in h}
        if "content-encoding" in headers:
            codings = [c.strip() for c in headers["content-encoding"].split(",") if c.strip() and c.strip() != "aws-chunked"]
            if codings:
                headers["content-encoding"] = ",".join(codings)
            else:
                del headers["content-encoding"]  # aws-chunked is how it travelled, not what it is
        sse = h.get("x-amz-server-side-encryption")
        if sse is not None and sse not in ("AES256", "aws:kms", "aws:kms:dsse"):
            raise S3Error("InvalidArgument", "The encryption method specified is not supported", ArgumentName="x-amz-server-side-encryption", ArgumentValue=sse)
        return {
            "content_type": h.get("content-type") or "binary/octet-stream",
            "metadata": metadata,
            "headers": headers,
            "sse": sse,
            "sse_kms_key_id": h.get("x-amz-server-side-encryption-aws-kms-key-id") if sse and sse.startswith("aws:kms") else None,
        }

    def _checksum_plan(self, req: Request) -> tuple[list[str], dict[str, str]]:
        """Which checksums to compute, and the values the client sent in headers (checked after the body)."""
        h = req.headers
        wanted: list[str] = []
        given: dict[str, str] = {}
        for algorithm in CHECKSUM_ALGORITHMS:
            value = h.get(f"x-amz-checksum-{algorithm}")
            if value is not None:
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
        chunked = "aws-chunked" in h.get("content-encoding", "") or content_sha.startswith("STREAMING-")
        decoder = AwsChunkedDecoder() if chunked else None
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
                    if name.startswith("x-amz-checksum-"):
                        given[name[15:]] = value
                        if name[15:] not in hashers:
                            hashers[name[15:]] = None
            if "content-length" in h and decoder is None and _digits(h["content-length"]) and writer.size != int(h["content-length"]):
                raise S3Error("IncompleteBody")
            decoded_length = h.get("x-amz-decoded-content-length")
            if decoder is not None and decoded_length is not None and _digits(decoded_length) and int(decoded_length) != writer.size:
                raise S3Error("IncompleteBody", "The decoded length does not match x-amz-decoded-content-length")
            if sha256 is not None and sha256.hexdigest() != content_sha.lower():
                raise S3Error("XAmzContentSHA256Mismatch", ClientComputedContentSHA256=content_sha, S3ComputedContentSHA256=sha256.hexdigest())
            if md5_given is not None and writer.md5.digest() != md5_raw:
                raise S3Error("BadDigest", ExpectedDigest=md5_given, CalculatedDigest=b64(writer.md5.digest()))
            checksums: dict[str, str] = {}
            for algorithm, hasher in hashers.items():
                if hasher is None:  # not recomputable here (crc64nvme): keep what was sent
                    if algorithm in given:
                        checksums[algorithm] = given[algorithm]
                    continue
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

    async def _receive_form_file(self, req: Request, receive: Callable, writer: BodyWriter) -> str | None:
        """The seed's `curl -X PUT -F "file=@x.jpg"`: store the form's file part; returns its content type."""
        from python_multipart.multipart import MultipartParser, parse_options_header

        _, options = parse_options_header(req.headers["content-type"].encode("latin-1"))
        boundary = options.get(b"boundary")
        if not boundary:
            raise S3Error("InvalidArgument", "multipart/form-data without a boundary", ArgumentName="Content-Type")
        state: dict[str, Any] = {"headers": {}, "field": None, "name": b"", "value": b"", "type": None, "found": False, "in_file": False}

        def on_header_field(data: bytes, start: int, end: int) -> None:
            state["field"] = (state["field"] or b"") + data[start:end]

        def on_header_value(data: bytes, start: int, end: int) -> None:
            state["value"] += data[start:end]

        def on_header_end() -> None:
            state["headers"][(state["field"] or b"").lower()] = state["value"]
            state["field"], state["value"] = None, b""

        def on_headers_finished() -> None:
            _, disposition = parse_options_header(state["headers"].get(b"content-disposition", b""))
            is_file = b"filename" in disposition or disposition.get(b"name") == b"file"
            state["in_file"] = is_file and not state["found"]
            if state["in_file"]:
                state["found"] = True
                state["type"] = state["headers"].get(b"content-type", b"").decode("latin-1") or None

        def on_part_data(data: bytes, start: int, end: int) -> None:
            if state["in_file"]:
                writer.write(data[start:end])

        def on_part_begin() -> None:
            state["headers"] = {}

        parser = MultipartParser(boundary, {
            "on_part_begin": on_part_begin, "on_header_field": on_header_field, "on_header_value": on_header_value,
            "on_header_end": on_header_end, "on_headers_finished": on_headers_finished, "on_part_data": on_part_data,
        })
        try:
            async for chunk in self.body_chunks(req, receive):
                try:
                    parser.write(chunk)
                except Exception as exc:  # python-multipart's parse errors
                    raise S3Error("MalformedPOSTRequest", f"The multipart/form-data body is malformed: {exc}", status=400) from None
            parser.finalize()
            if not state["found"]:
                raise S3Error("InvalidArgument", "The multipart/form-data body has no file field", ArgumentName="file")
            return state["type"]
        except BaseException:
            writer.discard()
            raise

    def _check_put_preconditions(self, req: Request, bucket: Bucket) -> None:
        existing = bucket.objects.get(req.key)
        if_none = req.headers.get("if-none-match")
        if if_none is not None:
            if if_none.strip() != "*":
                raise S3Error("NotImplemented", "A header you provided implies functionality that is not implemented", Header="If-None-Match")
            if existing is not None:
                raise S3Error("PreconditionFailed", Condition="If-None-Match")
        if_match = req.headers.get("if-match")
        if if_match is not None:
            if existing is None:
                raise S3Error("NoSuchKey", Key=req.key)
            if not _etag_matches(if_match, existing.etag):
                raise S3Error("PreconditionFailed", Condition="If-Match")

    async def put_object(self, req: Request, receive: Callable, send: Callable) -> None:
        bucket = self.writable_bucket(req)
        self._check_put_preconditions(req, bucket)
        fields = self._new_meta(req)
        writer = BodyWriter(self.store)
        content_type = req.headers.get("content-type", "")
        if req.auth is None and content_type.startswith("multipart/form-data"):
            part_type = await self._receive_form_file(req, receive, writer)
            fields["content_type"] = part_type or "binary/octet-stream"
            checksums: dict[str, str] = {}
        else:
            checksums = await self.receive_body(req, receive, writer)
        self._check_put_preconditions(req, bucket)  # again: another upload may have committed while this one streamed
        data_file, body = writer.finish()
        meta = ObjectMeta(req.key, writer.size, f'"{writer.md5.hexdigest()}"', time.time(), checksums=checksums,
                          data_file=data_file, body=body, checksum_type="FULL_OBJECT" if checksums else None, **fields)
        if bucket.name not in self.store.buckets:  # deleted while the body streamed
            writer.discard()
            raise S3Error("NoSuchBucket", BucketName=bucket.name)
        self.storage.commit(bucket, meta)
        headers = [("etag", meta.etag)] + _sse_headers(meta)
        headers += [(f"x-amz-checksum-{a}", v) for a, v in checksums.items()]
        await self.respond(send, req, 200, headers)

    def _object_headers(self, meta: ObjectMeta, req: Request) -> list[tuple[str, str]]:
        headers = [
            ("content-type", meta.content_type),
            ("etag", meta.etag),
            ("last-modified", http_date(meta.last_modified)),
            ("accept-ranges", "bytes"),
        ]
        headers += list(meta.headers.items())
        headers += [(f"x-amz-meta-{k}", v) for k, v in meta.metadata.items()]
        headers += _sse_headers(meta)
        if req.headers.get("x-amz-checksum-mode", "").upper() == "ENABLED" and meta.checksums:
            headers += [(f"x-amz-checksum-{a}", v) for a, v in meta.checksums.items()]
            if meta.checksum_type:
                headers.append(("x-amz-checksum-type", meta.checksum_type))
        if meta.part_sizes:
            headers.append(("x-amz-mp-parts-count", str(len(meta.part_sizes))))
        for param, header in RESPONSE_OVERRIDES.items():
            if param in req.params:
                headers = [(k, v) for k, v in headers if k != header] + [(header, req.params[param])]
        return headers

    def _evaluate_conditions(self, meta: ObjectMeta, h: dict[str, str], prefix: str = "") -> int | None:
        """RFC 7232 as S3 applies it: the status to answer instead (304/412), or None."""
        if_match = h.get(prefix + "if-match")
        if_none = h.get(prefix + "if-none-match")
        if_unmod = _http_time(h.get(prefix + "if-unmodified-since"))
        if_mod = _http_time(h.get(prefix + "if-modified-since"))
        modified = int(meta.last_modified)
        if if_match is not None:
            if not _etag_matches(if_match, meta.etag):
                return 412
        elif if_unmod is not None and modified > if_unmod:
            return 412
        if if_none is not None:
            if _etag_matches(if_none, meta.etag):
                return 304 if not prefix else 412
        elif if_mod is not None and modified <= if_mod:
            return 304 if not prefix else 412
        return None

    async def get_object(self, req: Request, send: Callable) -> None:
        meta = self.object(req)
        headers = self._object_headers(meta, req)
        outcome = self._evaluate_conditions(meta, req.headers)
        if outcome == 412:
            raise S3Error("PreconditionFailed", Condition="If-Match" if "if-match" in req.headers else "If-Unmodified-Since")
        if outcome == 304:
            await self.respond(send, req, 304, [(k, v) for k, v in headers if k in ("etag", "last-modified")])
            return
        size = meta.size
        start, end, status = 0, size - 1, 200
        part_number = req.params.get("partNumber")
        if part_number is not None:
            if not _digits(part_number) or not 1 <= int(part_number) <= 10000:
                raise S3Error("InvalidArgument", "Part number must be an integer between 1 and 10000, inclusive", ArgumentName="partNumber", ArgumentValue=part_number)
            number = int(part_number)
            sizes = meta.part_sizes or [size]
            if number > len(sizes):
                raise S3Error("InvalidPartNumber", ActualPartCount=str(len(sizes)), PartNumberRequested=part_number)
            start = sum(sizes[: number - 1])
            end = start + sizes[number - 1] - 1
            status = 206
            if not any(k == "x-amz-mp-parts-count" for k, _ in headers):
                headers.append(("x-amz-mp-parts-count", str(len(sizes))))
        elif "range" in req.headers:
            parsed = _parse_range(req.headers["range"], size)
            if parsed == "unsatisfiable":
                raise S3Error("InvalidRange", ActualObjectSize=str(size), RangeRequested=req.headers["range"])
            if parsed is not None:
                start, end = parsed
                status = 206
        if status == 206:
            # A stored checksum describes the whole object: a client would check it against the part it got.
            headers = [(k, v) for k, v in headers if not k.startswith("x-amz-checksum-")]
            headers.append(("content-range", f"bytes {start}-{end}/{size}"))
        length = max(0, end - start + 1)
        headers.append(("content-length", str(length)))
        raw = [(b"x-amz-request-id", req.request_id.encode()), (b"x-amz-id-2", req.request_id.encode())]
        raw += [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers]
        await send({"type": "http.response.start", "status": status, "headers": raw})
        if req.method == "HEAD" or length == 0:
            await send({"type": "http.response.body", "body": b""})
            return
        if meta.body is not None:
            await send({"type": "http.response.body", "body": meta.body[start : end + 1]})
            return
        try:
            pieces = self.store.read_range(meta, start, end)
            for piece in pieces:
                await send({"type": "http.response.body", "body": piece, "more_body": True})
        except FileNotFoundError:
            pass  # the object was replaced while it streamed: the client sees a short body, as with S3 under overwrite
        await send({"type": "http.response.body", "body": b""})

    async def delete_object(self, req: Request, send: Callable) -> None:
        bucket = self.bucket(req)
        self.storage.delete_object(bucket.name, req.key)
        await self.respond(send, req, 204)

    async def delete_objects(self, req: Request, receive: Callable, send: Callable) -> None:
        bucket = self.bucket(req)
        body = await self.read_small_body(req, receive)
        md5 = req.headers.get("content-md5")
        if md5 is not None and b64(hashlib.md5(body).digest()) != md5:
            raise S3Error("BadDigest")
        root = parse(body)
        if root.tag != "Delete":
            raise S3Error("MalformedXML")
        quiet = (root.findtext("Quiet") or "").strip().lower() == "true"
        objects = root.findall("Object")
        if not objects or len(objects) > 1000:
            raise S3Error("MalformedXML")
        results = []
        for element in objects:
            key = element.findtext("Key")
            if key is None or key == "":
                results.append("<Error><Key></Key><Code>UserKeyMustBeSpecified</Code><Message>The key must be specified</Message></Error>")
                continue
            self.storage.delete_object(bucket.name, key)
            if not quiet:
                results.append(f"<Deleted><Key>{e(key)}</Key></Deleted>")
        await self.xml(send, req, "DeleteResult", results)

    def _copy_source(self, req: Request) -> ObjectMeta:
        raw = req.headers["x-amz-copy-source"]
        source = unquote(raw.split("?", 1)[0]).lstrip("/")
        src_bucket, _, src_key = source.partition("/")
        if not src_bucket or not src_key:
            raise S3Error("InvalidArgument", "Copy Source must mention the source bucket and key: sourcebucket/sourcekey", ArgumentName="x-amz-copy-source", ArgumentValue=raw)
        bucket = self.store.buckets.get(src_bucket)
        if bucket is None:
            raise S3Error("NoSuchBucket", BucketName=src_bucket)
        meta = bucket.objects.get(src_key)
        if meta is None:
            raise S3Error("NoSuchKey", Key=src_key)
        if self._evaluate_conditions(meta, req.headers, "x-amz-copy-source-") is not None:
            raise S3Error("PreconditionFailed", Condition="x-amz-copy-source-If-Match")
        return meta

    async def copy_object(self, req: Request, send: Callable) -> None:
        source = self._copy_source(req)
        bucket = self.writable_bucket(req)
        directive = req.headers.get("x-amz-metadata-directive", "COPY").upper()
        if directive not in ("COPY", "REPLACE"):
            raise S3Error("InvalidArgument", "Unknown metadata directive.", ArgumentName="x-amz-metadata-directive", ArgumentValue=directive)
        same = bucket.objects.get(req.key) is source
        if same and directive == "COPY" and "x-amz-server-side-encryption" not in req.headers and "x-amz-storage-class" not in req.headers:
            raise S3Error("InvalidRequest", "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes.")
        self._check_put_preconditions(req, bucket)
        if directive == "REPLACE":
            fields = self._new_meta(req)
        else:
            fields = {"content_type": source.content_type, "metadata": dict(source.metadata), "headers": dict(source.headers),
                      "sse": source.sse, "sse_kms_key_id": source.sse_kms_key_id}
            if "x-amz-server-side-encryption" in req.headers:
                fields["sse"] = req.headers["x-amz-server-side-encryption"]
        writer = await asyncio.to_thread(self.store.copy_body, source) if source.size > 4 * 1024 * 1024 else self.store.copy_body(source)
        data_file, body = writer.finish()
        checksums = {}
        if source.checksum_type == "FULL_OBJECT":
            checksums = dict(source.checksums)
        meta = ObjectMeta(req.key, writer.size, f'"{writer.md5.hexdigest()}"', time.time(), checksums=checksums,
                          checksum_type="FULL_OBJECT" if checksums else None, data_file=data_file, body=body, **fields)
        self.storage.commit(bucket, meta)
        await self.xml(send, req, "CopyObjectResult", [f"<LastModified>{iso8601(meta.last_modified)}</LastModified><ETag>{e(meta.etag)}</ETag>"],
                       headers=_sse_headers(meta))

    # --- multipart ---

    def upload(self, req: Request) -> Upload:
        self.bucket(req)
        upload = self.store.uploads.get(req.params.get("uploadId", ""))
        if upload is None or upload.bucket != req.bucket or upload.key != req.key:
            raise S3Error("NoSuchUpload", UploadId=req.params.get("uploadId", ""))
        return upload

    def _part_number(self, req: Request) -> int:
        raw = req.params.get("partNumber", "")
        if not _digits(raw) or not 1 <= int(raw) <= 10000:
            raise S3Error("InvalidArgument", "Part number must be an integer between 1 and 10000, inclusive", ArgumentName="partNumber", ArgumentValue=raw)
        return int(raw)

    async def create_upload(self, req: Request, send: Callable) -> None:
        bucket = self.writable_bucket(req)
        fields = self._new_meta(req)
        algorithm = req.headers.get("x-amz-checksum-algorithm", "").lower() or None
        if algorithm is not None and algorithm not in CHECKSUM_ALGORITHMS:
            raise S3Error("InvalidRequest", f"Checksum algorithm {algorithm} is not supported")
        fields["checksum_algorithm"] = algorithm
        fields["checksum_type"] = req.headers.get("x-amz-checksum-type", "COMPOSITE" if algorithm else "").upper() or None
        upload = self.store.create_upload(bucket.name, req.key, fields)
        headers = _sse_headers_from(fields)
        if algorithm:
            headers += [("x-amz-checksum-algorithm", algorithm.upper()), ("x-amz-checksum-type", fields["checksum_type"])]
        await self.xml(send, req, "InitiateMultipartUploadResult",
                       [f"<Bucket>{e(bucket.name)}</Bucket><Key>{e(req.key)}</Key><UploadId>{upload.upload_id}</UploadId>"], headers=headers)

    async def upload_part(self, req: Request, receive: Callable, send: Callable) -> None:
        upload = self.upload(req)
        number = self._part_number(req)
        writer = self.store.part_writer(upload)
        checksums = await self.receive_body(req, receive, writer)
        if upload.upload_id not in self.store.uploads:  # aborted while the part streamed
            writer.discard()
            raise S3Error("NoSuchUpload", UploadId=upload.upload_id)
        part = self.store.put_part(upload, number, writer, checksums)
        headers = [("etag", part["etag"])] + _sse_headers_from(upload.meta)
        headers += [(f"x-amz-checksum-{a}", v) for a, v in checksums.items()]
        await self.respond(send, req, 200, headers)

    async def upload_part_copy(self, req: Request, send: Callable) -> None:
        upload = self.upload(req)
        number = self._part_number(req)
        source = self._copy_source(req)
        start, end = 0, source.size - 1
        raw_range = req.headers.get("x-amz-copy-source-range")
        if raw_range is not None:
            m = re.fullmatch(r"bytes=(\d+)-(\d+)", raw_range.strip())
            if not m or int(m.group(1)) > int(m.group(2)):
                raise S3Error("InvalidArgument", "The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy",
                              ArgumentName="x-amz-copy-source-range", ArgumentValue=raw_range)
            start, end = int(m.group(1)), int(m.group(2))
            if end >= source.size:
                raise S3Error("InvalidRange", ActualObjectSize=str(source.size), RangeRequested=raw_range)
        writer = await asyncio.to_thread(self.store.copy_body, source, start, end, self.store.part_writer(upload))
        part = self.store.put_part(upload, number, writer, {})
        await self.xml(send, req, "CopyPartResult", [f"<LastModified>{iso8601(part['last_modified'])}</LastModified><ETag>{e(part['etag'])}</ETag>"])

    async def list_parts(self, req: Request, send: Callable) -> None:
        upload = self.upload(req)
        limit = self._max(req, "max-parts", 1000)
        marker_raw = req.params.get("part-number-marker", "0") or "0"
        if not _digits(marker_raw):
            raise S3Error("InvalidArgument", "Part number marker must be an integer", ArgumentName="part-number-marker", ArgumentValue=marker_raw)
        numbers = sorted(n for n in upload.parts if n > int(marker_raw))
        shown, truncated = numbers[:limit], len(numbers) > limit
        parts = [f"<Bucket>{e(upload.bucket)}</Bucket><Key>{e(upload.key)}</Key><UploadId>{upload.upload_id}</UploadId>",
                 f"<PartNumberMarker>{int(marker_raw)}</PartNumberMarker>",
                 f"<NextPartNumberMarker>{shown[-1] if shown else 0}</NextPartNumberMarker><MaxParts>{limit}</MaxParts>",
                 f"<IsTruncated>{'true' if truncated else 'false'}</IsTruncated>", _owner().replace("Owner", "Initiator"), _owner(),
                 "<StorageClass>STANDARD</StorageClass>"]
        for n in shown:
            part = upload.parts[n]
            checks = "".join(f"<Checksum{a.upper()}>{v}</Checksum{a.upper()}>" for a, v in part.get("checksums", {}).items())
            parts.append(f"<Part><PartNumber>{n}</PartNumber><LastModified>{iso8601(part['last_modified'])}</LastModified>"
                         f"<ETag>{e(part['etag'])}</ETag><Size>{part['size']}</Size>{checks}</Part>")
        await self.xml(send, req, "ListPartsResult", parts)

    async def list_uploads(self, req: Request, send: Callable) -> None:
        bucket = self.bucket(req)
        prefix = req.params.get("prefix", "")
        limit = self._max(req, "max-uploads", 1000)
        key_marker = req.params.get("key-marker", "")
        uploads = sorted((u for u in self.store.uploads.values() if u.bucket == bucket.name and u.key.startswith(prefix) and u.key > key_marker),
                         key=lambda u: (u.key, u.initiated))
        shown, truncated = uploads[:limit], len(uploads) > limit
        parts = [f"<Bucket>{e(bucket.name)}</Bucket><KeyMarker>{e(key_marker)}</KeyMarker><UploadIdMarker></UploadIdMarker>",
                 f"<Prefix>{e(prefix)}</Prefix><MaxUploads>{limit}</MaxUploads><IsTruncated>{'true' if truncated else 'false'}</IsTruncated>"]
        if truncated:
            parts.append(f"<NextKeyMarker>{e(shown[-1].key)}</NextKeyMarker><NextUploadIdMarker>{shown[-1].upload_id}</NextUploadIdMarker>")
        for u in shown:
            parts.append(f"<Upload><Key>{e(u.key)}</Key><UploadId>{u.upload_id}</UploadId>{_owner().replace('Owner', 'Initiator')}{_owner()}"
                         f"<StorageClass>STANDARD</StorageClass><Initiated>{iso8601(u.initiated)}</Initiated></Upload>")
        await self.xml(send, req, "ListMultipartUploadsResult", parts)

    async def abort_upload(self, req: Request, send: Callable) -> None:
        upload = self.upload(req)
        self.store.abort_upload(upload.upload_id)
        await self.respond(send, req, 204)

    async def complete_upload(self, req: Request, receive: Callable, send: Callable) -> None:
        upload = self.upload(req)
        root = parse(await self.read_small_body(req, receive))
        if root.tag != "CompleteMultipartUpload":
            raise S3Error("MalformedXML")
        listed: list[tuple[int, str]] = []
        for element in root.findall("Part"):
            number_text, etag = element.findtext("PartNumber"), element.findtext("ETag")
            if number_text is None or not _digits(number_text.strip()) or etag is None:
                raise S3Error("MalformedXML")
            listed.append((int(number_text), etag.strip()))
        if not listed:
            raise S3Error("MalformedXML", "The XML you provided was not well-formed or did not validate against our published schema: no parts")
        if any(a[0] >= b[0] for a, b in zip(listed, listed[1:])):
            raise S3Error("InvalidPartOrder", UploadId=upload.upload_id)
        parts = []
        for number, etag in listed:
            part = upload.parts.get(number)
            if part is None or not _etag_matches(etag, part["etag"]):
                raise S3Error("InvalidPart", UploadId=upload.upload_id, PartNumber=str(number), ETag=etag)
            parts.append(part)
        for part in parts[:-1]:
            if part["size"] < self.min_part_size:
                raise S3Error("EntityTooSmall", ProposedSize=str(part["size"]), MinSizeAllowed=str(self.min_part_size),
                              PartNumber=str(part["number"]), ETag=part["etag"])
        bucket = self.bucket(req)
        meta_fields = dict(upload.meta)
        algorithm = meta_fields.pop("checksum_algorithm", None)
        checksum_type = meta_fields.pop("checksum_type", None)
        try:
            writer, full_checksum = await asyncio.to_thread(_assemble, self.store, upload, parts, algorithm if checksum_type == "FULL_OBJECT" else None)
        except FileNotFoundError:  # aborted while its parts were being joined
            raise S3Error("NoSuchUpload", UploadId=upload.upload_id) from None
        if upload.upload_id not in self.store.uploads:
            writer.discard()
            raise S3Error("NoSuchUpload", UploadId=upload.upload_id)
        etag = f'"{hashlib.md5(b"".join(bytes.fromhex(p["etag"].strip(chr(34))) for p in parts)).hexdigest()}-{len(parts)}"'
        checksums: dict[str, str] = {}
        if algorithm:
            if checksum_type == "FULL_OBJECT" and full_checksum is not None:
                checksums[algorithm] = full_checksum
            elif all(algorithm in p.get("checksums", {}) for p in parts):
                hasher = new_checksum(algorithm)
                if hasher is not None:
                    for p in parts:
                        hasher.update(base64.b64decode(p["checksums"][algorithm]))
                    checksums[algorithm] = f"{b64(hasher.digest())}-{len(parts)}"
        data_file, body = writer.finish()
        meta = ObjectMeta(upload.key, writer.size, etag, time.time(), checksums=checksums, checksum_type=checksum_type if checksums else None,
                          part_sizes=[p["size"] for p in parts], data_file=data_file, body=body, **meta_fields)
        self.storage.commit(bucket, meta)
        self.store.abort_upload(upload.upload_id)
        location = f"/{bucket.name}/{quote(meta.key)}"
        checks = "".join(f"<Checksum{a.upper()}>{v}</Checksum{a.upper()}>" for a, v in checksums.items())
        await self.xml(send, req, "CompleteMultipartUploadResult",
                       [f"<Location>{e(location)}</Location><Bucket>{e(bucket.name)}</Bucket><Key>{e(meta.key)}</Key><ETag>{e(etag)}</ETag>{checks}"],
                       headers=_sse_headers(meta))


def _assemble(store: Store, upload: Upload, parts: list[dict[str, Any]], full_algorithm: str | None) -> tuple[BodyWriter, str | None]:
    """Concatenate parts into one new body (in a worker thread: it can be gigabytes)."""
    writer = BodyWriter(store)
    hasher = new_checksum(full_algorithm) if full_algorithm else None
    for part in parts:
        with open(store.part_path(upload, part), "rb") as fh:
            while piece := fh.read(1024 * 1024):
                writer.write(piece)
                if hasher is not None:
                    hasher.update(piece)
    return writer, (b64(hasher.digest()) if hasher is not None else None)


def _owner() -> str:
    return "<Owner><ID>mockpanel</ID><DisplayName>mockpanel</DisplayName></Owner>"


def _full_control() -> str:
    return ('<AccessControlList><Grant><Grantee xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="CanonicalUser">'
            "<ID>mockpanel</ID><DisplayName>mockpanel</DisplayName></Grantee><Permission>FULL_CONTROL</Permission></Grant></AccessControlList>")


def _sse_headers(meta: ObjectMeta) -> list[tuple[str, str]]:
    return _sse_headers_from({"sse": meta.sse, "sse_kms_key_id": meta.sse_kms_key_id})


def _sse_headers_from(fields: dict[str, Any]) -> list[tuple[str, str]]:
    headers = []
    if fields.get("sse"):
        headers.append(("x-amz-server-side-encryption", fields["sse"]))
        if fields.get("sse_kms_key_id"):
            headers.append(("x-amz-server-side-encryption-aws-kms-key-id", fields["sse_kms_key_id"]))
    return headers


def _etag_matches(condition: str, etag: str) -> bool:
    bare = etag.strip('"')
    for candidate in condition.split(","):
        candidate = candidate.strip()
        if candidate == "*" or candidate.strip('"') == bare or candidate.removeprefix("W/").strip('"') == bare:
            return True
    return False


def _http_time(value: str | None) -> int | None:
    if not value:
        return None
    try:
        return int(parsedate_to_datetime(value).timestamp())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None  # S3 ignores a date it cannot parse


def _parse_range(header: str, size: int) -> tuple[int, int] | str | None:
    """(start, end) inclusive, "unsatisfiable", or None to ignore the header (malformed or several ranges)."""
    m = re.fullmatch(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*", header)
    if not m or (m.group(1) == "" and m.group(2) == ""):
        return None
    first, last = m.group(1), m.group(2)
    if first == "":
        suffix = int(last)
        if suffix == 0 or size == 0:
            return "unsatisfiable"
        return max(0, size - suffix), size - 1
    start = int(first)
    end = int(last) if last else size - 1
    if last and end < start:
        return None
    if start >= size:
        return "unsatisfiable"
    return start, min(end, size - 1)
