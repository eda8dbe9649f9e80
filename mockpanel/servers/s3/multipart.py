"""Multipart uploads: create, upload parts (and part copies), list parts and uploads, abort, complete."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
from typing import Any, Callable
from urllib.parse import quote

from .checksums import CHECKSUM_ALGORITHMS, b64, checksum_elements, new_checksum
from .objects import _etag_matches, _sse_headers, _sse_headers_from, customer_key, version_headers
from .request import Request, digits
from .storage import BodyWriter, ObjectMeta, Store, Upload
from .xml import INITIATOR, OWNER, S3Error, el, flag, iso8601, parse


class Multipart:
    def upload(self, req: Request) -> Upload:
        self.bucket(req)
        upload = self.store.uploads.get(req.params.get("uploadId", ""))
        if upload is None or upload.bucket != req.bucket or upload.key != req.key:
            raise S3Error("NoSuchUpload", UploadId=req.params.get("uploadId", ""))
        return upload

    def _part_number(self, req: Request) -> int:
        raw = req.params.get("partNumber", "")
        if not digits(raw, 5) or not 1 <= int(raw) <= 10000:
            raise S3Error("InvalidArgument", "Part number must be an integer between 1 and 10000, inclusive", ArgumentName="partNumber", ArgumentValue=raw)
        return int(raw)

    async def create_upload(self, req: Request, receive: Callable, send: Callable) -> None:
        bucket = self.writable_bucket(req)
        fields = self._new_meta(req, bucket)
        algorithm = req.headers.get("x-amz-checksum-algorithm", "").lower() or None
        if algorithm is not None and algorithm not in CHECKSUM_ALGORITHMS:
            raise S3Error("InvalidRequest", f"Checksum algorithm {algorithm} is not supported")
        fields["checksum_algorithm"] = algorithm
        # CRC64NVME has full-object checksums only (as AWS); the others are COMPOSITE unless asked
        default = "FULL_OBJECT" if algorithm == "crc64nvme" else "COMPOSITE" if algorithm else ""
        checksum_type = req.headers.get("x-amz-checksum-type", default).upper() or None
        if checksum_type not in (None, "COMPOSITE", "FULL_OBJECT") or (checksum_type and not algorithm):
            raise S3Error("InvalidRequest", "The x-amz-checksum-type header is COMPOSITE or FULL_OBJECT, with x-amz-checksum-algorithm.")
        if (algorithm, checksum_type) == ("crc64nvme", "COMPOSITE") or (checksum_type == "FULL_OBJECT" and algorithm in ("sha1", "sha256")):
            raise S3Error("InvalidRequest", f"The {checksum_type} checksum type cannot be used with the {algorithm.upper()} checksum algorithm.")
        fields["checksum_type"] = checksum_type
        upload = self.store.create_upload(bucket.name, req.key, fields)
        headers = _sse_headers_from(fields)
        if algorithm:
            headers += [("x-amz-checksum-algorithm", algorithm.upper()), ("x-amz-checksum-type", fields["checksum_type"])]
        await self.xml(send, req, "InitiateMultipartUploadResult",
                       [el("Bucket", bucket.name), el("Key", req.key), el("UploadId", upload.upload_id)], headers=headers)

    async def put_part(self, req: Request, receive: Callable, send: Callable) -> None:
        """UploadPart, or UploadPartCopy with x-amz-copy-source."""
        if "x-amz-copy-source" in req.headers:
            return await self.upload_part_copy(req, receive, send)
        return await self.upload_part(req, receive, send)

    async def upload_part(self, req: Request, receive: Callable, send: Callable) -> None:
        upload = self.upload(req)
        number = self._part_number(req)
        _same_customer_key(upload, req)
        writer = self.store.part_writer(upload)
        checksums = await self.receive_body(req, receive, writer)
        if upload.upload_id not in self.store.uploads:  # aborted while the part streamed
            writer.discard()
            raise S3Error("NoSuchUpload", UploadId=upload.upload_id)
        part = self.store.put_part(upload, number, writer, checksums)
        headers = [("etag", part["etag"])] + _sse_headers_from(upload.meta)
        headers += [(f"x-amz-checksum-{a}", v) for a, v in checksums.items()]
        await self.respond(send, req, 200, headers)

    async def upload_part_copy(self, req: Request, receive: Callable, send: Callable) -> None:
        upload = self.upload(req)
        number = self._part_number(req)
        source = self._copy_source(req)
        start, end = 0, source.size - 1
        raw_range = req.headers.get("x-amz-copy-source-range")
        if raw_range is not None:
            m = re.fullmatch(r"bytes=([0-9]{1,19})-([0-9]{1,19})", raw_range.strip())
            if not m or int(m.group(1)) > int(m.group(2)):
                raise S3Error("InvalidArgument", "The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy",
                              ArgumentName="x-amz-copy-source-range", ArgumentValue=raw_range)
            start, end = int(m.group(1)), int(m.group(2))
            if end >= source.size:
                raise S3Error("InvalidRange", ActualObjectSize=str(source.size), RangeRequested=raw_range)
        writer = await asyncio.to_thread(self.store.copy_body, source, start, end, self.store.part_writer(upload))
        part = self.store.put_part(upload, number, writer, {})
        await self.xml(send, req, "CopyPartResult", [el("LastModified", iso8601(part["last_modified"])), el("ETag", part["etag"])],
                       headers=_sse_headers_from(upload.meta))

    async def list_parts(self, req: Request, receive: Callable, send: Callable) -> None:
        upload = self.upload(req)
        limit = self._max(req, "max-parts", 1000)
        marker_raw = req.params.get("part-number-marker", "0") or "0"
        if not digits(marker_raw, 5):
            raise S3Error("InvalidArgument", "Part number marker must be an integer", ArgumentName="part-number-marker", ArgumentValue=marker_raw)
        numbers = sorted(n for n in upload.parts if n > int(marker_raw))
        shown, truncated = numbers[:limit], len(numbers) > limit
        parts = [el("Bucket", upload.bucket), el("Key", upload.key), el("UploadId", upload.upload_id),
                 el("PartNumberMarker", int(marker_raw)), el("NextPartNumberMarker", shown[-1] if shown else 0), el("MaxParts", limit),
                 el("IsTruncated", flag(truncated)), INITIATOR, OWNER, el("StorageClass", upload.meta.get("headers", {}).get("x-amz-storage-class", "STANDARD"))]
        for n in shown:
            part = upload.parts[n]
            parts.append(el("Part", el("PartNumber", n), el("LastModified", iso8601(part["last_modified"])), el("ETag", part["etag"]),
                            el("Size", part["size"]), *checksum_elements(part.get("checksums", {}))))
        await self.xml(send, req, "ListPartsResult", parts)

    async def list_uploads(self, req: Request, receive: Callable, send: Callable) -> None:
        bucket = self.bucket(req)
        prefix = req.params.get("prefix", "")
        limit = self._max(req, "max-uploads", 1000)
        key_marker = req.params.get("key-marker", "")
        uploads = sorted((u for u in self.store.uploads.values() if u.bucket == bucket.name and u.key.startswith(prefix) and u.key > key_marker),
                         key=lambda u: (u.key, u.initiated))
        shown, truncated = uploads[:limit], len(uploads) > limit
        parts = [el("Bucket", bucket.name), el("KeyMarker", key_marker), el("UploadIdMarker", ""), el("Prefix", prefix),
                 el("MaxUploads", limit), el("IsTruncated", flag(truncated))]
        if truncated:
            parts += [el("NextKeyMarker", shown[-1].key), el("NextUploadIdMarker", shown[-1].upload_id)]
        for u in shown:
            parts.append(el("Upload", el("Key", u.key), el("UploadId", u.upload_id), INITIATOR, OWNER,
                            el("StorageClass", u.meta.get("headers", {}).get("x-amz-storage-class", "STANDARD")),
                            el("Initiated", iso8601(u.initiated))))
        await self.xml(send, req, "ListMultipartUploadsResult", parts)

    async def abort_upload(self, req: Request, receive: Callable, send: Callable) -> None:
        upload = self.upload(req)
        self.store.abort_upload(upload.upload_id)
        await self.respond(send, req, 204)

    async def complete_upload(self, req: Request, receive: Callable, send: Callable) -> None:
        done = self.completed.get(req.params.get("uploadId", ""))
        if done is not None and (req.bucket, req.key) == done[:2]:
            return await self._complete_again(req, receive, send, done)
        upload = self.upload(req)
        root = parse(await self.read_small_body(req, receive, object_checksums=True))
        if root.tag != "CompleteMultipartUpload":
            raise S3Error("MalformedXML")
        listed: list[tuple[int, str]] = []
        for element in root.findall("Part"):
            number_text, etag = element.findtext("PartNumber"), element.findtext("ETag")
            if number_text is None or not digits(number_text.strip(), 5) or etag is None:
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
        self._check_put_preconditions(req, bucket)  # If-None-Match: * (create only) and If-Match, as for PutObject
        if upload.upload_id in self.completing:  # another request is joining these parts now: one wins, none is torn
            raise S3Error("NoSuchUpload", "The upload is being completed by another request.", UploadId=upload.upload_id)
        self.completing.add(upload.upload_id)
        try:
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
            try:
                self._check_put_preconditions(req, bucket)  # again: another write may have landed while the parts were joined
            except S3Error:
                writer.discard()
                raise
            etag = f'"{hashlib.md5(b"".join(bytes.fromhex(p["etag"].strip(chr(34))) for p in parts)).hexdigest()}-{len(parts)}"'
            checksums: dict[str, str] = {}
            if algorithm:
                if checksum_type == "FULL_OBJECT" and full_checksum is not None:
                    sent = req.headers.get(f"x-amz-checksum-{algorithm}")
                    if sent is not None and sent != full_checksum:
                        writer.discard()
                        raise S3Error("BadDigest", f"The {algorithm.upper()} you specified did not match the calculated checksum.")
                    checksums[algorithm] = full_checksum
                elif all(algorithm in p.get("checksums", {}) for p in parts):
                    hasher = new_checksum(algorithm)
                    if hasher is not None:
                        for p in parts:
                            hasher.update(base64.b64decode(p["checksums"][algorithm]))
                        checksums[algorithm] = f"{b64(hasher.digest())}-{len(parts)}"
            data_file, body = writer.finish()
            part_checksums = [p.get("checksums", {}).get(algorithm) for p in parts] if algorithm else None
            meta = ObjectMeta(upload.key, writer.size, etag, self.storage.now(), checksums=checksums, checksum_type=checksum_type if checksums else None,
                              part_sizes=[p["size"] for p in parts], part_checksums=part_checksums if part_checksums and all(part_checksums) else None,
                              data_file=data_file, body=body, **meta_fields)
            self.storage.commit(bucket, meta)
            self.notify(req, "ObjectCreated:CompleteMultipartUpload", bucket, meta)
            self.store.abort_upload(upload.upload_id)
            self.completed[upload.upload_id] = (bucket.name, meta.key, etag, tuple(listed))
            while len(self.completed) > COMPLETED_REMEMBERED:
                self.completed.popitem(last=False)
            location = f"/{bucket.name}/{quote(meta.key)}"
            await self.xml(send, req, "CompleteMultipartUploadResult",
                           [el("Location", location), el("Bucket", bucket.name), el("Key", meta.key), el("ETag", etag), *checksum_elements(checksums)],
                           headers=_sse_headers(meta) + version_headers(bucket, meta))

        finally:
            self.completing.discard(upload.upload_id)

    async def _complete_again(self, req: Request, receive: Callable, send: Callable, done: tuple) -> None:
        """The same CompleteMultipartUpload again, after it succeeded: the same answer for the same parts."""
        bucket_name, key, etag, listed = done
        root = parse(await self.read_small_body(req, receive, object_checksums=True))
        again = tuple((int(e.findtext("PartNumber") or 0), (e.findtext("ETag") or "").strip().strip('"')) for e in root.findall("Part"))
        if again != tuple((n, t.strip('"')) for n, t in listed):
            raise S3Error("NoSuchUpload", UploadId=req.params.get("uploadId", ""))
        await self.xml(send, req, "CompleteMultipartUploadResult",
                       [el("Location", f"/{bucket_name}/{quote(key)}"), el("Bucket", bucket_name), el("Key", key), el("ETag", etag)])


COMPLETED_REMEMBERED = 10_000


def _assemble(store: Store, upload: Upload, parts: list[dict[str, Any]], full_algorithm: str | None) -> tuple[BodyWriter, str | None]:
    """Concatenate parts into one new body (in a worker thread: it can be gigabytes)."""
    writer = BodyWriter(store)
    hasher = new_checksum(full_algorithm) if full_algorithm else None
    try:
        for part in parts:
            with open(store.part_path(upload, part), "rb") as fh:
                while piece := fh.read(1024 * 1024):
                    writer.write(piece)
                    if hasher is not None:
                        hasher.update(piece)
    except BaseException:
        writer.discard()  # no half-joined body left behind
        raise
    return writer, (b64(hasher.digest()) if hasher is not None else None)


def _same_customer_key(upload: Upload, req: Request) -> None:
    """The parts of an SSE-C upload are encrypted with the key it was created with: each part gives it again."""
    given = customer_key(req.headers)
    wanted = upload.meta.get("sse_customer_key_md5")
    if wanted is None and given is not None:
        raise S3Error("InvalidRequest", "The encryption parameters are not applicable to this upload: it was created without SSE-C.")
    if wanted is not None and given != wanted:
        raise S3Error("InvalidRequest", "The multipart upload initiate requested encryption. Subsequent part requests must include the appropriate encryption parameters.")
