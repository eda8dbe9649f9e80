"""Objects: put (incl. the seed's form upload), get and head with conditional requests and ranges, copy, delete."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
from email.utils import parsedate_to_datetime
from typing import Any, Callable
from urllib.parse import quote, unquote, urlencode

from .checksums import b64
from .request import MAX_KEY_BYTES, MAX_METADATA_BYTES, RESPONSE_OVERRIDES, STORED_HEADERS, Request, check_stored_headers, digits
from .storage import BodyWriter, Bucket, ObjectMeta
from .post_policy import check_policy, check_signature, decode_policy
from .governance import default_encryption, lock_headers
from .subresources import CANNED_ACLS, header_acl, header_tags
from .xml import S3Error, el, http_date, iso8601, parse


MAX_FORM_FIELDS_BYTES = 20 * 1024  # AWS: the fields before the file, together
MAX_FORM_FIELDS = 100
MAX_FORM_PART_HEADERS = 20


_VERSION_ID = re.compile(r"[0-9a-zA-Z._-]{1,1024}")


def _form_header(name: str, value: str) -> str:
    if any(c < " " and c != "\t" or c == "\x7f" for c in value):
        raise S3Error("InvalidArgument", f"The form field {name[:64]} holds a control character", ArgumentName=name[:64])
    return value.encode("utf-8", "surrogateescape").decode("latin-1")


def version_headers(bucket: Bucket, meta: ObjectMeta) -> list[tuple[str, str]]:
    """x-amz-version-id on the answers about an object of a versioned bucket ("null": written while unversioned)."""
    return [("x-amz-version-id", meta.version_id or "null")] if bucket.versioning or meta.version_id else []


# A page stored in S3 and opened in a browser would otherwise be a page of S3's own origin: it could read S3's control
# API (every server's journal, through /__mockpanel/traces) and post to it. Sandboxed, it has no scripts and an opaque
# origin; a bucket declared a website (PutBucketWebsite) runs scripts, still in an opaque origin: its requests carry
# `Origin: null`, which every control API refuses, and nothing of S3's origin (its control API's answers) is readable.
OBJECT_SANDBOX = "sandbox"
OBJECT_ATTRIBUTES = frozenset({"ETag", "Checksum", "ObjectParts", "StorageClass", "ObjectSize"})
WEBSITE_SANDBOX = "sandbox allow-scripts allow-forms allow-popups allow-modals allow-downloads"


class Objects:
    def object(self, req: Request) -> ObjectMeta:
        """The object a request names: the key's current version, or `?versionId=` that one."""
        bucket = self.bucket(req)
        version_id = req.params.get("versionId")
        if version_id is not None:
            meta = self.store.find_version(bucket, req.key, version_id)
            if meta is None:
                if version_id != "null" and not _VERSION_ID.fullmatch(version_id):
                    raise S3Error("InvalidArgument", "Invalid version id specified", ArgumentName="versionId", ArgumentValue=version_id[:64])
                raise S3Error("NoSuchVersion", Key=req.key, VersionId=version_id)
            if meta.delete_marker:
                error = S3Error("MethodNotAllowed", "The specified method is not allowed against this resource.", Method=req.method, ResourceType="DeleteMarker")
                error.headers = [("x-amz-delete-marker", "true"), ("x-amz-version-id", version_id)]
                raise error
            return meta
        meta = bucket.objects.get(req.key)
        if meta is None:
            error = S3Error("NoSuchKey", Key=req.key)
            latest = bucket.history.get(req.key)
            if latest and latest[-1].delete_marker:
                error.headers = [("x-amz-delete-marker", "true"), ("x-amz-version-id", latest[-1].version_id or "null")]
            raise error
        return meta

    def _encryption(self, req: Request, bucket: Bucket) -> dict[str, Any]:
        """How a new object (a write, a copy, an upload) is encrypted: SSE-C or x-amz-server-side-encryption as the
        request says, else the bucket's default encryption; the KMS key id and the bucket-key flag with it."""
        h = req.headers
        sse = h.get("x-amz-server-side-encryption")
        if sse is not None and sse not in ("AES256", "aws:kms", "aws:kms:dsse"):
            raise S3Error("InvalidArgument", "The encryption method specified is not supported", ArgumentName="x-amz-server-side-encryption", ArgumentValue=sse)
        customer = customer_key(h)
        if customer is not None and sse is not None:
            raise S3Error("InvalidArgument", "Server Side Encryption with Customer provided key is incompatible with the encryption method specified",
                          ArgumentName="x-amz-server-side-encryption", ArgumentValue=sse)
        if customer is not None:
            return {"sse": None, "sse_kms_key_id": None, "sse_customer_key_md5": customer, "bucket_key": False}
        if sse is None:
            return {"sse": None, "sse_kms_key_id": None, "sse_customer_key_md5": None, "bucket_key": False, **default_encryption(bucket)}
        kms = sse.startswith("aws:kms")
        key_id = h.get("x-amz-server-side-encryption-aws-kms-key-id") if kms else None
        if kms and not key_id:  # as AWS: the AWS managed key of the account's S3
            key_id = f"arn:aws:kms:{bucket.region}:000000000000:alias/aws/s3"
        bucket_key = h.get("x-amz-server-side-encryption-bucket-key-enabled", "").lower()
        return {"sse": sse, "sse_kms_key_id": key_id, "sse_customer_key_md5": None,
                "bucket_key": kms and (bucket_key == "true" or (bucket_key == "" and bool((bucket.encryption or {}).get("bucket_key"))))}

    def _new_meta(self, req: Request, bucket: Bucket) -> dict[str, Any]:
        """Metadata an upload sets from its headers (PutObject, CreateMultipartUpload, CopyObject REPLACE), with what
        the bucket adds: default encryption, Object Lock retention; an ACL it does not allow is refused."""
        h = req.headers
        metadata = {k[11:]: v for k, v in h.items() if k.startswith("x-amz-meta-")}
        if sum(len(k) + len(v) for k, v in metadata.items()) > MAX_METADATA_BYTES:
            raise S3Error("MetadataTooLarge", MaxSizeAllowed=str(MAX_METADATA_BYTES))
        headers = check_stored_headers({k: h[k] for k in STORED_HEADERS if k in h})
        if "content-encoding" in headers:
            # aws-chunked is how it travelled, not what it is: the rest stays as the client wrote it ("deflate, gzip")
            codings = [c for c in headers["content-encoding"].split(",") if c.strip() != "aws-chunked"]
            kept = ",".join(codings).strip(" ,")
            if kept:
                headers["content-encoding"] = kept
            else:
                del headers["content-encoding"]
        acl = header_acl(h)
        self.check_acl_allowed(bucket, acl)  # type: ignore[attr-defined]
        return {
            "content_type": h.get("content-type") or "binary/octet-stream",
            "metadata": metadata,
            "headers": headers,
            **self._encryption(req, bucket),
            **self.lock_fields(req, bucket),  # type: ignore[attr-defined]
            "tags": header_tags(h) or {},
            "acl": acl,
        }

    async def _receive_form(self, req: Request, receive: Callable, writer: BodyWriter) -> tuple[dict[str, str], str | None, str]:
        """A multipart/form-data body: the fields before the file (names lowercased, 20 KiB in all), and the file part
        streamed into `writer`; returns (fields, the file's content type, its filename)."""
        from python_multipart.multipart import MultipartParser, parse_options_header

        _, options = parse_options_header(req.headers["content-type"].encode("latin-1"))
        boundary = options.get(b"boundary")
        if not boundary:
            raise S3Error("InvalidArgument", "multipart/form-data without a boundary", ArgumentName="Content-Type")
        state: dict[str, Any] = {"headers": {}, "field": None, "name": "", "value": b"", "type": None, "found": False, "in_file": False,
                                 "filename": "", "text": b"", "size": 0}
        fields: dict[str, str] = {}

        def on_header_field(data: bytes, start: int, end: int) -> None:
            state["field"] = (state["field"] or b"") + data[start:end]

        def on_header_value(data: bytes, start: int, end: int) -> None:
            state["value"] += data[start:end]  # python-multipart bounds each header line ("Maximum header size exceeded")

        def on_header_end() -> None:
            if len(state["headers"]) >= MAX_FORM_PART_HEADERS:
                raise S3Error("MalformedPOSTRequest", f"A part of the form has over {MAX_FORM_PART_HEADERS} headers.", status=400)
            state["headers"][(state["field"] or b"").lower()] = state["value"]
            state["field"], state["value"] = None, b""

        def on_headers_finished() -> None:
            _, disposition = parse_options_header(state["headers"].get(b"content-disposition", b""))
            is_file = b"filename" in disposition or disposition.get(b"name") == b"file"
            state["in_file"] = is_file and not state["found"]
            state["name"] = disposition.get(b"name", b"").decode("utf-8", "replace").lower()
            state["text"] = b""
            if state["in_file"]:
                state["found"] = True
                state["type"] = state["headers"].get(b"content-type", b"").decode("latin-1") or None
                state["filename"] = disposition.get(b"filename", b"").decode("utf-8", "replace")

        def on_part_data(data: bytes, start: int, end: int) -> None:
            if state["in_file"]:
                writer.write(data[start:end])
            elif not state["found"]:  # a field before the file (AWS ignores those after it)
                state["size"] += end - start
                if state["size"] > MAX_FORM_FIELDS_BYTES:
                    raise S3Error("MaxPostPreDataLengthExceeded", "Your POST request fields preceding the upload file were too large.",
                                  MaxPostPreDataLength=str(MAX_FORM_FIELDS_BYTES))
                state["text"] += data[start:end]

        def on_part_end() -> None:
            if not state["in_file"] and not state["found"] and state["name"]:
                if len(fields) >= MAX_FORM_FIELDS:
                    raise S3Error("MalformedPOSTRequest", f"The form has over {MAX_FORM_FIELDS} fields before its file.", status=400)
                fields[state["name"]] = state["text"].decode("utf-8", "surrogateescape")  # header-bound fields keep their bytes (_form_header)

        def on_part_begin() -> None:
            state["headers"] = {}

        try:
            parser = MultipartParser(boundary, {
                "on_part_begin": on_part_begin, "on_header_field": on_header_field, "on_header_value": on_header_value,
                "on_header_end": on_header_end, "on_headers_finished": on_headers_finished, "on_part_data": on_part_data,
                "on_part_end": on_part_end,
            })
        except Exception as exc:  # python-multipart refuses the boundary itself (over 256 bytes)
            writer.discard()
            raise S3Error("MalformedPOSTRequest", f"The multipart/form-data body is malformed: {exc}", status=400) from None
        try:
            async for chunk in self.body_chunks(req, receive):
                try:
                    parser.write(chunk)
                except S3Error:
                    raise
                except Exception as exc:  # python-multipart's parse errors
                    raise S3Error("MalformedPOSTRequest", f"The multipart/form-data body is malformed: {exc}", status=400) from None
            parser.finalize()
            if not state["found"]:
                raise S3Error("InvalidArgument", "The multipart/form-data body has no file field", ArgumentName="file")
            return fields, state["type"], state["filename"]
        except BaseException:
            writer.discard()
            raise

    async def post_object(self, req: Request, receive: Callable, send: Callable) -> None:
        """PostObject: a browser's HTML form upload to the bucket (boto3's generate_presigned_post makes its fields)."""
        if not req.headers.get("content-type", "").lower().startswith("multipart/form-data"):
            raise S3Error("PreconditionFailed", "Bucket POST must be of the enclosure-type multipart/form-data", Condition="Bucket POST must be of the enclosure-type-multipart/form-data")
        bucket = self.bucket(req)
        writer = BodyWriter(self.store)
        fields, _, filename = await self._receive_form(req, receive, writer)
        try:
            key = fields.get("key", "").replace("${filename}", filename)
            if not key:
                raise S3Error("InvalidArgument", "Bucket POST must contain a field named 'key'.  If it is specified, please check the order of the fields.",
                              ArgumentName="key", ArgumentValue="")
            if len(key.encode("utf-8", "surrogateescape")) > MAX_KEY_BYTES:
                raise S3Error("KeyTooLongError", MaxSizeAllowed=str(MAX_KEY_BYTES))
            if any("\udc80" <= c <= "\udcff" for c in key):
                raise S3Error("InvalidArgument", "The key field is not valid UTF-8", ArgumentName="key")
            if "policy" in fields:
                policy = decode_policy(fields["policy"])
                if self.verify_signatures:
                    check_signature(fields, self.keys)
                check_policy(policy, fields, bucket.name, writer.size, self.ctx.clock())
            elif self.verify_signatures:
                raise S3Error("AccessDenied", "Anonymous POST uploads are refused while signature checks are on (s3.verify_signatures).")
            # Fields that become headers travel as header bytes (UTF-8 read as Latin-1, as a header would arrive); a
            # control character (CR, LF, NUL) could split the answer's headers, so it is refused.
            fields = {k: (_form_header(k, v) if k == "content-type" or k in STORED_HEADERS or k.startswith("x-amz-meta-")
                          or k in ("success_action_redirect", "redirect") else v) for k, v in fields.items()}
            metadata = {k[11:]: v for k, v in fields.items() if k.startswith("x-amz-meta-")}
            acl = fields.get("acl")
            if acl is not None and acl not in CANNED_ACLS:
                raise S3Error("InvalidArgument", None, ArgumentName="acl", ArgumentValue=acl[:64])
            self.check_acl_allowed(bucket, acl)  # type: ignore[attr-defined]
        except BaseException:
            writer.discard()
            raise
        data_file, body = writer.finish()
        meta = ObjectMeta(key, writer.size, f'"{writer.md5.hexdigest()}"', self.storage.now(), content_type=fields.get("content-type") or "binary/octet-stream",
                          metadata=metadata, headers=check_stored_headers({k: fields[k] for k in STORED_HEADERS if k in fields}),
                          data_file=data_file, body=body, acl=acl, **default_encryption(bucket))
        self.storage.commit(bucket, meta)
        self.notify(req, "ObjectCreated:Post", bucket, meta)
        location = f"http://{req.headers.get('host', 'localhost')}/{bucket.name}/{quote(key)}"
        headers = [("etag", meta.etag), ("location", location)] + version_headers(bucket, meta) + _sse_headers(meta)
        redirect = fields.get("success_action_redirect") or fields.get("redirect")
        if redirect and redirect.startswith(("http://", "https://")):
            query = urlencode({"bucket": bucket.name, "key": key, "etag": meta.etag})
            await self.respond(send, req, 303, [*headers[:1], ("location", f"{redirect}{'&' if '?' in redirect else '?'}{query}")])
            return
        status = {"200": 200, "201": 201}.get(fields.get("success_action_status", ""), 204)
        if status == 201:
            await self.xml(send, req, "PostResponse", [el("Location", location), el("Bucket", bucket.name), el("Key", key), el("ETag", meta.etag)],
                           status=201, headers=headers)
        else:
            await self.respond(send, req, status, headers)

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
        fields = self._new_meta(req, bucket)
        writer = BodyWriter(self.store)
        content_type = req.headers.get("content-type", "")
        if req.auth is None and content_type.startswith("multipart/form-data"):
            _, part_type, _ = await self._receive_form(req, receive, writer)
            fields["content_type"] = part_type or "binary/octet-stream"
            checksums: dict[str, str] = {}
        else:
            checksums = await self.receive_body(req, receive, writer)
        self._check_put_preconditions(req, bucket)  # again: another upload may have committed while this one streamed
        data_file, body = writer.finish()
        meta = ObjectMeta(req.key, writer.size, f'"{writer.md5.hexdigest()}"', self.storage.now(), checksums=checksums,
                          data_file=data_file, body=body, checksum_type="FULL_OBJECT" if checksums else None, **fields)
        if bucket.name not in self.store.buckets:  # deleted while the body streamed
            writer.discard()
            raise S3Error("NoSuchBucket", BucketName=bucket.name)
        self.storage.commit(bucket, meta)
        self.notify(req, "ObjectCreated:Put", bucket, meta)
        headers = [("etag", meta.etag)] + _sse_headers(meta) + version_headers(bucket, meta)
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
        headers += _sse_headers(meta) + lock_headers(meta)
        bucket = self.store.buckets.get(req.bucket or "")
        if bucket is not None:
            headers += version_headers(bucket, meta)
        if meta.tags:
            headers.append(("x-amz-tagging-count", str(len(meta.tags))))
        if req.headers.get("x-amz-checksum-mode", "").upper() == "ENABLED" and meta.checksums:
            headers += [(f"x-amz-checksum-{a}", v) for a, v in meta.checksums.items()]
            if meta.checksum_type:
                headers.append(("x-amz-checksum-type", meta.checksum_type))
        if meta.part_sizes:
            headers.append(("x-amz-mp-parts-count", str(len(meta.part_sizes))))
        for param, header in RESPONSE_OVERRIDES.items():
            if param in req.params:
                headers = [(k, v) for k, v in headers if k != header] + [(header, req.params[param])]
        headers.append(("x-content-type-options", "nosniff"))  # served as its type, never sniffed into a page
        headers.append(("content-security-policy", WEBSITE_SANDBOX if bucket is not None and bucket.website else OBJECT_SANDBOX))
        return headers

    @staticmethod
    def _check_overrides(req: Request) -> None:
        """response-* parameters: only on signed requests (as AWS), and only values a header can carry."""
        asked = [p for p in RESPONSE_OVERRIDES if p in req.params]
        if not asked:
            return
        if req.auth is None:
            raise S3Error("InvalidRequest", "Request specific response headers cannot be used for anonymous GET requests.")
        for param in asked:
            value = req.params[param]
            if len(value) > 1024 or any(not (32 <= ord(c) <= 255) or c == "\x7f" for c in value):
                raise S3Error("InvalidArgument", f"{param} must be printable Latin-1 text of at most 1024 characters",
                              ArgumentName=param, ArgumentValue=value[:64].encode("ascii", "backslashreplace").decode())

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

    async def get_object(self, req: Request, receive: Callable, send: Callable) -> None:
        self._check_overrides(req)
        meta = self.object(req)
        check_customer_key(meta, req.headers)
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
            if not digits(part_number, 5) or not 1 <= int(part_number) <= 10000:
                raise S3Error("InvalidArgument", "Part number must be an integer between 1 and 10000, inclusive", ArgumentName="partNumber", ArgumentValue=part_number)
            number = int(part_number)
            sizes = meta.part_sizes or [size]
            if number > len(sizes):
                raise S3Error("InvalidPartNumber", status=400, ActualPartCount=str(len(sizes)), PartNumberRequested=part_number)
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
        raw += [(k.encode("latin-1"), v.encode("latin-1")) for k, v in (*headers, *req.cors)]
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

    async def get_object_attributes(self, req: Request, receive: Callable, send: Callable) -> None:
        """GetObjectAttributes: the attributes x-amz-object-attributes names, parts paged by x-amz-max-parts and
        x-amz-part-number-marker (Part elements only for objects with part checksums, as S3)."""
        meta = self.object(req)
        check_customer_key(meta, req.headers)
        wanted = {a.strip() for a in req.headers.get("x-amz-object-attributes", "").split(",") if a.strip()}
        if not wanted or wanted - OBJECT_ATTRIBUTES:
            raise S3Error("InvalidArgument", "Invalid attribute name specified.", ArgumentName="x-amz-object-attributes",
                          ArgumentValue=", ".join(sorted(wanted - OBJECT_ATTRIBUTES))[:128] or None)
        parts: list[Any] = []
        if "ETag" in wanted:
            parts.append(el("ETag", meta.etag.strip('"')))
        if "Checksum" in wanted and meta.checksums:
            parts.append(el("Checksum", *[el(f"Checksum{a.upper()}", v) for a, v in meta.checksums.items()],
                            el("ChecksumType", meta.checksum_type or "FULL_OBJECT")))
        if "ObjectParts" in wanted and meta.part_sizes:
            limit, marker = (self._header_number(req, name, default) for name, default in (("x-amz-max-parts", 1000), ("x-amz-part-number-marker", 0)))
            numbers = [n for n in range(1, len(meta.part_sizes) + 1) if n > marker]
            shown = numbers[:limit]
            inner = [el("PartsCount", len(meta.part_sizes)), el("PartNumberMarker", marker), el("MaxParts", limit),
                     el("IsTruncated", "true" if len(numbers) > limit else "false")]
            if shown:
                inner.insert(2, el("NextPartNumberMarker", shown[-1]))
            algorithm = next(iter(meta.checksums), None)
            if meta.part_checksums and algorithm:
                inner += [el("Part", el("PartNumber", n), el("Size", meta.part_sizes[n - 1]), el(f"Checksum{algorithm.upper()}", meta.part_checksums[n - 1]))
                          for n in shown]
            parts.append(el("ObjectParts", *inner))
        if "StorageClass" in wanted:
            parts.append(el("StorageClass", meta.headers.get("x-amz-storage-class", "STANDARD")))
        if "ObjectSize" in wanted:
            parts.append(el("ObjectSize", meta.size))
        bucket = self.bucket(req)
        await self.xml(send, req, "GetObjectAttributesOutput", parts, headers=[("last-modified", http_date(meta.last_modified))] + version_headers(bucket, meta))

    @staticmethod
    def _header_number(req: Request, name: str, default: int) -> int:
        raw = req.headers.get(name)
        if raw is None:
            return default
        if not digits(raw.strip(), 5):
            raise S3Error("InvalidArgument", f"{name} must be a whole number", ArgumentName=name, ArgumentValue=raw[:32])
        return int(raw)

    async def delete_object(self, req: Request, receive: Callable, send: Callable) -> None:
        bucket = self.bucket(req)
        version_id = req.params.get("versionId")
        current = bucket.objects.get(req.key)
        if version_id is not None and bucket.object_lock:
            self.check_locked(req, self.store.find_version(bucket, req.key, version_id))  # type: ignore[attr-defined]
        gone = self.storage.remove(bucket.name, req.key, version_id)
        headers = []
        if gone is not None and (bucket.versioning or version_id is not None):
            headers.append(("x-amz-version-id", gone.version_id or "null"))
            if gone.delete_marker:
                headers.append(("x-amz-delete-marker", "true"))
        if gone is not None and (current is not None or version_id is not None):
            self.notify(req, "ObjectRemoved:DeleteMarkerCreated" if gone.delete_marker and version_id is None else "ObjectRemoved:Delete",
                        bucket, gone)
        await self.respond(send, req, 204, headers)

    async def delete_objects(self, req: Request, receive: Callable, send: Callable) -> None:
        bucket = self.bucket(req)
        # As AWS: Content-MD5 or a checksum is required, which a page's cross-site "simple" POST cannot compute.
        body = await self.read_small_body(req, receive, require_digest="always")
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
                results.append(el("Error", el("Key", ""), el("Code", "UserKeyMustBeSpecified"), el("Message", "The key must be specified")))
                continue
            version_id = element.findtext("VersionId")
            current = bucket.objects.get(key)
            if version_id is not None and bucket.object_lock:
                try:
                    self.check_locked(req, self.store.find_version(bucket, key, version_id))  # type: ignore[attr-defined]
                except S3Error as exc:
                    results.append(el("Error", el("Key", key), el("VersionId", version_id), el("Code", exc.code), el("Message", exc.message)))
                    continue
            gone = self.storage.remove(bucket.name, key, version_id)
            if gone is not None and (current is not None or version_id is not None):
                self.notify(req, "ObjectRemoved:DeleteMarkerCreated" if gone.delete_marker and version_id is None else "ObjectRemoved:Delete",
                            bucket, gone)
            if not quiet:
                marker = [el("DeleteMarker", "true"), el("DeleteMarkerVersionId", gone.version_id or "null")] if gone is not None and gone.delete_marker else []
                results.append(el("Deleted", el("Key", key), el("VersionId", version_id) if version_id else "", *marker))
        await self.xml(send, req, "DeleteResult", results)

    def _copy_source(self, req: Request) -> ObjectMeta:
        raw = req.headers["x-amz-copy-source"]
        source = unquote(raw.split("?", 1)[0]).lstrip("/")
        query = raw.split("?", 1)[1] if "?" in raw else ""
        version_id = next((unquote(v) for k, _, v in (p.partition("=") for p in query.split("&")) if k == "versionId"), None)
        src_bucket, _, src_key = source.partition("/")
        if not src_bucket or not src_key:
            raise S3Error("InvalidArgument", "Copy Source must mention the source bucket and key: sourcebucket/sourcekey", ArgumentName="x-amz-copy-source", ArgumentValue=raw)
        bucket = self.store.buckets.get(src_bucket)
        if bucket is None:
            raise S3Error("NoSuchBucket", BucketName=src_bucket)
        meta = bucket.objects.get(src_key) if version_id is None else self.store.find_version(bucket, src_key, version_id)
        if meta is None:
            raise S3Error("NoSuchKey", Key=src_key) if version_id is None else S3Error("NoSuchVersion", Key=src_key, VersionId=version_id[:64])
        if meta.delete_marker:
            raise S3Error("InvalidRequest", "The source of a copy request may not specifically refer to a delete marker by version id.")
        check_customer_key(meta, req.headers, COPY_SOURCE_CUSTOMER)
        if self._evaluate_conditions(meta, req.headers, "x-amz-copy-source-") is not None:
            raise S3Error("PreconditionFailed", Condition="x-amz-copy-source-If-Match")
        return meta

    async def copy_object(self, req: Request, receive: Callable, send: Callable) -> None:
        source = self._copy_source(req)
        bucket = self.writable_bucket(req)
        directive = req.headers.get("x-amz-metadata-directive", "COPY").upper()
        if directive not in ("COPY", "REPLACE"):
            raise S3Error("InvalidArgument", "Unknown metadata directive.", ArgumentName="x-amz-metadata-directive", ArgumentValue=directive)
        same = bucket.objects.get(req.key) is source
        changes_encryption = "x-amz-server-side-encryption" in req.headers or CUSTOMER + "algorithm" in req.headers
        if same and directive == "COPY" and not changes_encryption and "x-amz-storage-class" not in req.headers:
            raise S3Error("InvalidRequest", "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes.")
        self._check_put_preconditions(req, bucket)
        if directive == "REPLACE":
            fields = self._new_meta(req, bucket)
        else:
            # the storage class is the request's (STANDARD unless it names one), as S3 copies; the rest is the source's
            kept = {k: v for k, v in source.headers.items() if k != "x-amz-storage-class"}
            kept.update(check_stored_headers({k: req.headers[k] for k in ("x-amz-storage-class", "x-amz-website-redirect-location") if k in req.headers}))
            acl = header_acl(req.headers)
            self.check_acl_allowed(bucket, acl)  # type: ignore[attr-defined]
            # Encryption is never copied: the copy is encrypted as the request says, else by the destination
            # bucket's default (as S3; SSE-C with the key this request gives, if any)
            fields = {"content_type": source.content_type, "metadata": dict(source.metadata), "headers": kept, "acl": acl,
                      **self._encryption(req, bucket), **self.lock_fields(req, bucket)}  # type: ignore[attr-defined]
        tagging = req.headers.get("x-amz-tagging-directive", "COPY").upper()
        if tagging not in ("COPY", "REPLACE"):
            raise S3Error("InvalidArgument", "Unknown tagging directive.", ArgumentName="x-amz-tagging-directive", ArgumentValue=tagging[:16])
        fields["tags"] = (header_tags(req.headers) or {}) if tagging == "REPLACE" else dict(source.tags)
        writer = await asyncio.to_thread(self.store.copy_body, source) if source.size > 4 * 1024 * 1024 else self.store.copy_body(source)
        data_file, body = writer.finish()
        checksums = {}
        if source.checksum_type == "FULL_OBJECT":
            checksums = dict(source.checksums)
        meta = ObjectMeta(req.key, writer.size, f'"{writer.md5.hexdigest()}"', self.storage.now(), checksums=checksums,
                          checksum_type="FULL_OBJECT" if checksums else None, data_file=data_file, body=body, **fields)
        self.storage.commit(bucket, meta)
        self.notify(req, "ObjectCreated:Copy", bucket, meta)
        copied_from = [("x-amz-copy-source-version-id", source.version_id or "null")] if source.version_id or "versionId=" in req.headers["x-amz-copy-source"] else []
        await self.xml(send, req, "CopyObjectResult", [el("LastModified", iso8601(meta.last_modified)), el("ETag", meta.etag)],
                       headers=_sse_headers(meta) + version_headers(bucket, meta) + copied_from)


def _sse_headers(meta: ObjectMeta) -> list[tuple[str, str]]:
    return _sse_headers_from({"sse": meta.sse, "sse_kms_key_id": meta.sse_kms_key_id, "sse_customer_key_md5": meta.sse_customer_key_md5,
                              "bucket_key": meta.bucket_key})


def _sse_headers_from(fields: dict[str, Any]) -> list[tuple[str, str]]:
    headers = []
    if fields.get("sse"):
        headers.append(("x-amz-server-side-encryption", fields["sse"]))
        if fields.get("sse_kms_key_id"):
            headers.append(("x-amz-server-side-encryption-aws-kms-key-id", fields["sse_kms_key_id"]))
        if fields.get("bucket_key"):
            headers.append(("x-amz-server-side-encryption-bucket-key-enabled", "true"))
    if fields.get("sse_customer_key_md5"):
        headers += [(CUSTOMER + "algorithm", "AES256"), (CUSTOMER + "key-md5", fields["sse_customer_key_md5"])]
    return headers


CUSTOMER = "x-amz-server-side-encryption-customer-"
COPY_SOURCE_CUSTOMER = "x-amz-copy-source-server-side-encryption-customer-"


def customer_key(h: dict[str, str], prefix: str = CUSTOMER) -> str | None:
    """SSE-C: the MD5 (base64) of the customer key these headers give, checked as S3 checks it; None without them."""
    algorithm, key, key_md5 = h.get(prefix + "algorithm"), h.get(prefix + "key"), h.get(prefix + "key-md5")
    if algorithm is None and key is None and key_md5 is None:
        return None
    needs = "Requests specifying Server Side Encryption with Customer provided keys must provide"
    if algorithm is None:
        raise S3Error("InvalidArgument", f"{needs} a valid encryption algorithm.", ArgumentName=prefix + "algorithm", ArgumentValue="null")
    if algorithm != "AES256":
        raise S3Error("InvalidEncryptionAlgorithmError", "The encryption request you specified is not valid. Supported value: AES256.",
                      ArgumentName=prefix + "algorithm", ArgumentValue=algorithm[:64])
    if key is None:
        raise S3Error("InvalidArgument", f"{needs} an appropriate secret key.", ArgumentName=prefix + "key", ArgumentValue="null")
    try:
        raw = base64.b64decode(key, validate=True)
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise S3Error("InvalidArgument", "The secret key was invalid for the specified algorithm.", ArgumentName=prefix + "key", ArgumentValue="null")
    actual = b64(hashlib.md5(raw).digest())
    if key_md5 is None:
        raise S3Error("InvalidArgument", f"{needs} the client calculated MD5 of the secret key.", ArgumentName=prefix + "key-MD5", ArgumentValue="null")
    if key_md5 != actual:
        raise S3Error("InvalidArgument", "The calculated MD5 hash of the key did not match the hash that was provided.",
                      ArgumentName=prefix + "key-MD5", ArgumentValue="null")
    return actual


def check_customer_key(meta: ObjectMeta, h: dict[str, str], prefix: str = CUSTOMER) -> None:
    """A read of an object (GET, HEAD, a copy's source) gives the key it was stored with, and only then."""
    given = customer_key(h, prefix)
    if meta.sse_customer_key_md5 is None:
        if given is not None:
            raise S3Error("InvalidRequest", "The encryption parameters are not applicable to this object.")
    elif given is None:
        raise S3Error("InvalidRequest", "The object was stored using a form of Server Side Encryption. "
                      "The correct parameters must be provided to retrieve the object.")
    elif given != meta.sse_customer_key_md5:
        raise S3Error("AccessDenied", "The provided customer key does not match the one the object was stored with.")


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
    m = re.fullmatch(r"\s*bytes\s*=\s*([0-9]{0,19})\s*-\s*([0-9]{0,19})\s*", header)
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
