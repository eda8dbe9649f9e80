"""Listings: buckets, objects (v1 and v2) and versions, paged as S3 pages them."""

from __future__ import annotations

import base64
import binascii
from typing import Callable
from urllib.parse import quote

from .request import Request
from .storage import ObjectMeta, walk
from .xml import OWNER, S3Error, Xml, el, els, flag, iso8601, record


LISTING_PARAMS = {"list-type", "prefix", "delimiter", "max-keys", "marker", "continuation-token", "start-after", "encoding-type",
                  "fetch-owner", "x-id"}


STANDARD = el("StorageClass", "STANDARD")


class Listings:
    async def list_buckets(self, req: Request, receive: Callable, send: Callable) -> None:
        items = (el("Bucket", el("Name", b.name), el("CreationDate", iso8601(b.created)), el("BucketRegion", b.region))
                 for b in sorted(self.store.buckets.values(), key=lambda b: b.name))
        await self.xml(send, req, "ListAllMyBucketsResult", [OWNER, el("Buckets", els(items))])

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

    def _enc(self, req: Request) -> Callable[[str], str]:
        if req.params.get("encoding-type") == "url":
            return lambda s: quote(s, safe="/")
        if "encoding-type" in req.params and req.params["encoding-type"] not in ("", "url"):
            raise S3Error("InvalidArgument", "Invalid Encoding Method specified in Request", ArgumentName="encoding-type", ArgumentValue=req.params["encoding-type"])
        return lambda s: s

    def _object_xml(self, tag: str, meta: ObjectMeta, enc: Callable[[str], str], owner: bool, *extra: Xml) -> Xml:
        sums = [("ChecksumAlgorithm", a.upper()) for a in meta.checksums] if meta.checksums else ()
        return record(tag, ("Key", enc(meta.key)), *extra, ("LastModified", iso8601(meta.last_modified)), ("ETag", meta.etag),
                      *sums, ("Size", meta.size), OWNER if owner else ("Owner", None), STANDARD)

    async def list_objects(self, req: Request, receive: Callable, send: Callable) -> None:
        """ListObjects, or ListObjectsV2 with list-type=2."""
        bucket = self.bucket(req)
        p = req.params
        if set(p) - LISTING_PARAMS and not any(k.startswith("X-Amz-") for k in p):
            return await self.unsupported(req, receive, send)
        v2 = p.get("list-type") == "2"
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
        if limit == 0:  # max-keys=0: nothing listed, and nothing left out either
            contents, prefixes, truncated, last = [], [], False, None
        else:
            contents, prefixes, truncated, last = walk(bucket, prefix, delimiter, after, limit)
        objects = bucket.objects
        owner = not v2 or p.get("fetch-owner") == "true"
        parts = [el("Name", bucket.name), el("Prefix", enc(prefix))]
        if v2:
            if "continuation-token" in p:
                parts.append(el("ContinuationToken", p["continuation-token"]))
            if "start-after" in p:
                parts.append(el("StartAfter", enc(p["start-after"])))
            parts.append(el("KeyCount", len(contents) + len(prefixes)))
        else:
            parts.append(el("Marker", enc(after)))
        parts.append(el("MaxKeys", limit))
        parts.append(self._listing_flags(req, enc, delimiter, truncated))
        if truncated and last is not None:
            if v2:
                token = base64.urlsafe_b64encode(last.encode("utf-8", "surrogateescape")).decode().rstrip("=")
                parts.append(el("NextContinuationToken", token))
            else:
                parts.append(el("NextMarker", enc(last)))
        parts.extend(self._object_xml("Contents", objects[k], enc, owner) for k in contents)
        parts.extend(el("CommonPrefixes", el("Prefix", enc(cp))) for cp in prefixes)
        await self.xml(send, req, "ListBucketResult", parts)

    @staticmethod
    def _listing_flags(req: Request, enc: Callable[[str], str], delimiter: str, truncated: bool) -> Xml:
        """<Delimiter>, <EncodingType> and <IsTruncated>, as every object listing has them."""
        return els([el("Delimiter", enc(delimiter)) if delimiter else Xml(""),
                    el("EncodingType", "url") if "encoding-type" in req.params else Xml(""), el("IsTruncated", flag(truncated))])

    async def list_versions(self, req: Request, receive: Callable, send: Callable) -> None:
        bucket = self.bucket(req)
        p = req.params
        enc = self._enc(req)
        prefix, delimiter = p.get("prefix", ""), p.get("delimiter", "")
        limit = self._max(req)
        after = p.get("key-marker", "")
        if limit == 0:  # max-keys=0: nothing listed, and nothing left out either
            contents, prefixes, truncated, last = [], [], False, None
        else:
            contents, prefixes, truncated, last = walk(bucket, prefix, delimiter, after, limit)
        parts = [el("Name", bucket.name), el("Prefix", enc(prefix)), el("KeyMarker", enc(after)),
                 el("VersionIdMarker", p.get("version-id-marker", "")), el("MaxKeys", limit)]
        parts.append(self._listing_flags(req, enc, delimiter, truncated))
        if truncated and last is not None:
            parts += [el("NextKeyMarker", enc(last)), el("NextVersionIdMarker", "null")]
        latest = (el("VersionId", "null"), el("IsLatest", "true"))
        parts.extend(self._object_xml("Version", bucket.objects[k], enc, True, *latest) for k in contents)
        parts.extend(el("CommonPrefixes", el("Prefix", enc(cp))) for cp in prefixes)
        await self.xml(send, req, "ListVersionsResult", parts)

