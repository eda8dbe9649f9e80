"""Listings: buckets, objects (v1 and v2) and versions, paged as S3 pages them."""

from __future__ import annotations

import base64
import binascii
import bisect
import heapq
from typing import Callable
from urllib.parse import quote

from .request import Request
from .storage import ObjectMeta, past_prefix, walk
from .xml import OWNER, S3Error, Xml, el, els, flag, iso8601, record


LISTING_PARAMS = {"list-type", "prefix", "delimiter", "max-keys", "marker", "continuation-token", "start-after", "encoding-type",
                  "fetch-owner", "x-id"}





def _AS_IS(s: str) -> str:
    return s

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
        return _AS_IS

    def _contents_xml(self, meta: ObjectMeta, enc: Callable[[str], str], owner: bool) -> Xml:
        """A listing's <Contents> entry. The plain ones (no encoding-type) are kept on the object, which never changes
        once written (an overwrite is a new ObjectMeta): a listing page joins them instead of rendering 1,000 again."""
        if enc is not _AS_IS:
            return self._object_xml("Contents", meta, enc, owner)
        key = "_contents_owner_xml" if owner else "_contents_xml"
        cached = meta.__dict__.get(key)
        if cached is None:
            cached = meta.__dict__[key] = self._object_xml("Contents", meta, enc, owner)
        return cached

    def _object_xml(self, tag: str, meta: ObjectMeta, enc: Callable[[str], str], owner: bool, *extra: Xml) -> Xml:
        sums = [("ChecksumAlgorithm", a.upper()) for a in meta.checksums] if meta.checksums else ()
        return record(tag, ("Key", enc(meta.key)), *extra, ("LastModified", iso8601(meta.last_modified)), ("ETag", meta.etag),
                      *sums, ("Size", meta.size), OWNER if owner else ("Owner", None),
                      ("StorageClass", meta.headers.get("x-amz-storage-class", "STANDARD")))

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
        parts.extend(self._contents_xml(objects[k], enc, owner) for k in contents)
        parts.extend(el("CommonPrefixes", el("Prefix", enc(cp))) for cp in prefixes)
        await self.xml(send, req, "ListBucketResult", parts)

    @staticmethod
    def _listing_flags(req: Request, enc: Callable[[str], str], delimiter: str, truncated: bool) -> Xml:
        """<Delimiter>, <EncodingType> and <IsTruncated>, as every object listing has them."""
        return els([el("Delimiter", enc(delimiter)) if delimiter else Xml(""),
                    el("EncodingType", "url") if "encoding-type" in req.params else Xml(""), el("IsTruncated", flag(truncated))])

    async def list_versions(self, req: Request, receive: Callable, send: Callable) -> None:
        """ListObjectVersions: every version and delete marker, by key, newest first within a key; max-keys counts
        versions (a common prefix counts one); key-marker and version-id-marker resume after an entry."""
        bucket = self.bucket(req)
        p = req.params
        enc = self._enc(req)
        prefix, delimiter = p.get("prefix", ""), p.get("delimiter", "")
        limit = self._max(req)
        key_marker, version_marker = p.get("key-marker", ""), p.get("version-id-marker", "")
        if version_marker and not key_marker:
            raise S3Error("InvalidArgument", "A version-id marker cannot be specified without a key marker.", ArgumentName="version-id-marker",
                          ArgumentValue=version_marker[:64])
        history = sorted(bucket.history) if bucket.history else []
        keys = list(heapq.merge(bucket.keys, history)) if history else bucket.keys
        start = bisect.bisect_left(keys, max(prefix, key_marker))
        entries: list[Xml] = []
        prefixes: list[str] = []
        truncated, next_key, next_version = False, None, None
        i, previous = start, None
        while limit and i < len(keys):  # max-keys=0: nothing listed, and nothing left out either
            key = keys[i]
            i += 1
            if key == previous:  # in both lists
                continue
            previous = key
            if not key.startswith(prefix):
                break
            if key == key_marker and not version_marker:
                continue  # key-marker alone: resume after that key
            if delimiter:
                j = key.find(delimiter, len(prefix))
                if j >= 0:
                    common = key[: j + len(delimiter)]
                    if common != key_marker:
                        if len(entries) + len(prefixes) >= limit:
                            truncated = True
                            break
                        prefixes.append(common)
                        next_key, next_version = common, None
                    i = past_prefix(keys, common, i)
                    continue
            versions = self.store.versions_of(bucket, key)
            if key == key_marker and version_marker:
                wanted = None if version_marker == "null" else version_marker
                skip = next((n for n, m in enumerate(versions) if m.version_id == wanted), None)
                versions = versions[skip + 1:] if skip is not None else []
            for n, meta in enumerate(versions):
                if len(entries) + len(prefixes) >= limit:
                    truncated = True
                    break
                latest = bucket.objects.get(key) is meta or (meta.delete_marker and bucket.history[key][-1] is meta and key not in bucket.objects)
                version = (el("VersionId", meta.version_id or "null"), el("IsLatest", flag(latest)))
                if meta.delete_marker:
                    entries.append(el("DeleteMarker", el("Key", enc(key)), *version, el("LastModified", iso8601(meta.last_modified)), OWNER))
                else:
                    entries.append(self._object_xml("Version", meta, enc, True, *version))
                next_key, next_version = key, meta.version_id or "null"
            if truncated:
                break
        parts = [el("Name", bucket.name), el("Prefix", enc(prefix)), el("KeyMarker", enc(key_marker)),
                 el("VersionIdMarker", version_marker), el("MaxKeys", limit)]
        parts.append(self._listing_flags(req, enc, delimiter, truncated))
        if truncated and next_key is not None:
            parts.append(el("NextKeyMarker", enc(next_key)))
            if next_version is not None:
                parts.append(el("NextVersionIdMarker", next_version))
        parts.extend(entries)
        parts.extend(el("CommonPrefixes", el("Prefix", enc(cp))) for cp in prefixes)
        await self.xml(send, req, "ListVersionsResult", parts)

