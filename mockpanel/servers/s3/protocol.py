"""The S3 REST protocol as boto3 and the aws cli send it: a plain ASGI app over the Storage facade.

The request (request.py) is routed by a table (ROUTES) to the operations, which live by kind: listings.py,
objects.py (with conditional requests and ranges), multipart.py, checksums.py; xml.py renders and parses S3's XML.
"""

from __future__ import annotations

from collections import OrderedDict

import hmac
import itertools
import logging
import time
from typing import AsyncIterator, Callable, Iterable

from ...service import BodyTooLarge, ServerContext
import hashlib

from .checksums import CHECKSUM_ALGORITHMS, ChecksummedBodies, b64, check_value, new_checksum
from .domain import Storage
from .governance import OWNERSHIPS, Governance
from .lifecycle import Lifecycle
from .listings import Listings
from .multipart import Multipart
from .objects import Objects
from .request import MAX_KEY_BYTES, MAX_XML_BODY, ClientGone, Request, valid_bucket_name
from .signing import Auth, check_expiry, check_signed_parts, chunk_signatures, parse_auth, verify
from .notifications import Notifier
from .storage import Bucket, ObjectMeta
from .subresources import Subresources, cors_headers, header_acl, matching_rule
from ...web import DOCS_ASSETS
from .xml import S3Error, document, el, error_document, parse


OPEN_PATHS = {"/health", "/docs", "/redoc", "/openapi.json", "/docs/oauth2-redirect"}  # open even with signature checks on
NO_PARAMS = "(no query parameters)"
COPY_SOURCE = "header:x-amz-copy-source"  # a condition names a query parameter, or a header after "header:"

# (level, method) -> [(condition, operation)]: the first whose condition holds (None: always) answers the request.
ROUTES: dict[tuple[str, str], list[tuple[str | None, str]]] = {
    ("service", "GET"): [(None, "list_buckets")],
    ("bucket", "PUT"): [(NO_PARAMS, "create_bucket"), ("versioning", "put_bucket_versioning"), ("tagging", "put_bucket_tagging"), ("acl", "put_acl"),
                        ("cors", "put_bucket_cors"), ("notification", "put_bucket_notification"), ("website", "put_bucket_website"),
                        ("policy", "put_bucket_policy"), ("publicAccessBlock", "put_public_access_block"),
                        ("ownershipControls", "put_ownership_controls"), ("encryption", "put_bucket_encryption"),
                        ("object-lock", "put_object_lock_configuration"), ("lifecycle", "put_bucket_lifecycle"), (None, "unsupported")],
    ("bucket", "HEAD"): [(None, "head_bucket")],
    ("bucket", "DELETE"): [(NO_PARAMS, "delete_bucket"), ("tagging", "delete_bucket_tagging"), ("cors", "delete_bucket_cors"),
                           ("website", "delete_bucket_website"), ("policy", "delete_bucket_policy"),
                           ("publicAccessBlock", "delete_public_access_block"), ("ownershipControls", "delete_ownership_controls"),
                           ("encryption", "delete_bucket_encryption"), ("lifecycle", "delete_bucket_lifecycle"), (None, "unsupported")],
    ("bucket", "GET"): [("location", "get_location"), ("uploads", "list_uploads"), ("versions", "list_versions"),
                        ("versioning", "get_bucket_versioning"), ("acl", "get_acl"), ("cors", "get_bucket_cors"),
                        ("tagging", "get_bucket_tagging"), ("notification", "get_bucket_notification"), ("website", "get_bucket_website"),
                        ("policyStatus", "get_bucket_policy_status"), ("policy", "get_bucket_policy"),
                        ("publicAccessBlock", "get_public_access_block"), ("ownershipControls", "get_ownership_controls"),
                        ("encryption", "get_bucket_encryption"), ("object-lock", "get_object_lock_configuration"),
                        ("lifecycle", "get_bucket_lifecycle"), (None, "list_objects")],
    ("bucket", "POST"): [("delete", "delete_objects"), (None, "post_object")],
    ("object", "PUT"): [("uploadId", "put_part"), ("tagging", "put_object_tagging"), ("acl", "put_acl"), ("retention", "put_object_retention"),
                        ("legal-hold", "put_object_legal_hold"), (COPY_SOURCE, "copy_object"), (None, "put_object")],
    ("object", "GET"): [("uploadId", "list_parts"), ("tagging", "get_object_tagging"), ("acl", "get_acl"), ("attributes", "get_object_attributes"),
                        ("retention", "get_object_retention"), ("legal-hold", "get_object_legal_hold"), (None, "get_object")],
    ("object", "HEAD"): [(None, "get_object")],
    ("object", "DELETE"): [("uploadId", "abort_upload"), ("tagging", "delete_object_tagging"), (None, "delete_object")],
    ("object", "POST"): [("uploads", "create_upload"), ("uploadId", "complete_upload")],
}
# S3's subresources (query parameters that name an operation): a request carrying one the route it reached does not
# consume is answered NotImplemented, never silently served as another operation (GET ?attributes as GetObject).
SUBRESOURCES = frozenset({
    "accelerate", "acl", "analytics", "attributes", "cors", "delete", "encryption", "intelligent-tiering", "inventory", "legal-hold",
    "lifecycle", "location", "logging", "metadataConfiguration", "metadataTable", "metrics", "notification", "object-lock",
    "ownershipControls", "policy", "policyStatus", "publicAccessBlock", "replication", "requestPayment", "restore", "retention",
    "select", "select-type", "tagging", "torrent", "uploads", "uploadId", "versioning", "versions", "website", "renameObject",
})


class S3Protocol(Listings, Objects, Multipart, Subresources, Governance, Lifecycle, ChecksummedBodies):
    def __init__(self, ctx: ServerContext, storage: Storage, convenience: Callable, notifier: Notifier | None = None) -> None:
        self.ctx = ctx
        self.notifier = notifier or Notifier(ctx, [], "", {})
        self.storage = storage
        self.store = storage.store
        self.convenience = convenience
        self.convenience_paths = {"/health", "/presigned-url", "/admin/buckets", "/admin/reset", "/docs", "/redoc", "/openapi.json", "/docs/oauth2-redirect"}
        s = ctx.settings
        self.strict: bool = s["strict"]  # fail locally where production would fail
        self.verify_signatures: bool = s["verify_signatures"] or self.strict
        self.keys: dict[str, str] = dict(pair.split(":", 1) for pair in s["access_keys"] if ":" in pair)
        self.auto_create: str = s["auto_create_buckets"]
        self.cors_mode: str = s["cors"]
        self.region: str = s["region"]
        self.min_part_size: int = s["min_part_size"]
        self.public_buckets = frozenset(s["public_buckets"])
        self.virtual_host_suffixes = tuple("." + h for h in s["virtual_host_suffixes"])
        self.legacy_names: bool = s["bucket_names"] == "legacy"
        self._ids = itertools.count(1)
        self.completing: set[str] = set()  # upload ids a CompleteMultipartUpload is joining right now
        # Completed uploads, newest last: a CompleteMultipartUpload repeated (a retry whose answer was lost) gets the
        # same answer, as from S3. Bounded: old ids fall out.
        self.completed: OrderedDict[str, tuple[str, str, str, tuple[tuple[int, str], ...]]] = OrderedDict()
        self._id_prefix = f"{int(time.time()) & 0xFFFFFF:06X}"

    def new_request_id(self) -> str:
        return f"{self._id_prefix}{next(self._ids):010X}"

    async def respond(self, send: Callable, req: Request, status: int, headers: list[tuple[str, str]] | None = None,
                      body: bytes = b"", content_type: str | None = None) -> None:
        raw = [(b"x-amz-request-id", req.request_id.encode()), (b"x-amz-id-2", req.request_id.encode())]
        if req.body_pending:
            raw.append((b"connection", b"close"))
        if content_type:
            raw.append((b"content-type", content_type.encode()))
        for k, v in (*(headers or ()), *req.cors):
            raw.append((k.encode("latin-1"), v.encode("latin-1")))
        if req.method == "HEAD" or status in (204, 304):
            if not any(k == "content-length" for k, _ in headers or ()):
                raw.append((b"content-length", b"0" if status in (204, 304) else str(len(body)).encode()))
            body = b""
        else:
            raw.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": raw})
        await send({"type": "http.response.body", "body": body})
        if req.notify:  # the write is acknowledged: now its event notifications go
            self.notifier.send(req.notify)
            req.notify = []

    def notify(self, req: Request, event: str, bucket: Bucket, meta: ObjectMeta) -> None:
        """Queue the event notifications a change makes; they are sent once the request has been answered."""
        if bucket.notifications or self.notifier.settings_rules:
            req.notify += self.notifier.pending(event, bucket, meta, req.request_id, req.client_ip)

    async def error(self, send: Callable, req: Request, exc: S3Error) -> None:
        req.notify = []
        body = error_document(exc.code, exc.message, req.request_id, **exc.extra, **({"Resource": req.resource_name()} if "Resource" not in exc.extra else {}))
        await self.respond(send, req, exc.status, exc.headers, body=body, content_type="application/xml")

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

    async def read_small_body(self, req: Request, receive: Callable, limit: int = MAX_XML_BODY, require_digest: str | None = None,
                              object_checksums: bool = False) -> bytes:
        """A configuration body (XML), checked against its Content-MD5 and x-amz-checksum-* headers when sent.
        `require_digest`: AWS requires one of them for this request; "always" refuses it without one (DeleteObjects),
        "strict" only in strict mode (PutBucketCors, PutBucketTagging, PutBucketNotificationConfiguration…).
        `object_checksums`: the x-amz-checksum-* headers describe the object, not this body (CompleteMultipartUpload)."""
        md5 = req.headers.get("content-md5")
        sums = {k[15:]: v for k, v in req.headers.items() if k.startswith("x-amz-checksum-") and k[15:] in CHECKSUM_ALGORITHMS
                and not object_checksums}
        if md5 is None and not sums and (require_digest == "always" or (require_digest == "strict" and self.strict)):
            raise S3Error("InvalidRequest", "Missing required header for this request: Content-MD5")
        chunks = bytearray()
        async for chunk in self.body_chunks(req, receive):
            chunks += chunk
            if len(chunks) > limit:
                raise S3Error("MalformedXML", "The request body is larger than the maximum allowed size.")
        body = bytes(chunks)
        if md5 is not None and b64(hashlib.md5(body).digest()) != md5:
            raise S3Error("BadDigest", "The Content-MD5 you specified did not match what we received.")
        for algorithm, value in sums.items():
            check_value(algorithm, value)
            hasher = new_checksum(algorithm)
            hasher.update(body)
            if b64(hasher.digest()) != value:
                raise S3Error("BadDigest", f"The {algorithm.upper()} you specified did not match the calculated checksum.")
        return body

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
            if req.invalid is not None:
                raise req.invalid
            path = scope["path"]
            convenience = req.method in ("GET", "DELETE", "HEAD") and (
                path in self.convenience_paths or path.startswith(("/admin/objects/", "/docs")))
            open_path = path in OPEN_PATHS or path.startswith(DOCS_ASSETS + "/")
            if convenience and self.verify_signatures and not open_path and self._admin_token(req):
                await self.convenience(scope, receive, send)  # the admin token opens them, as the control API
                return
            auth = parse_auth(req.headers, req.params)
            if convenience and (auth is None or self.verify_signatures):
                if self.verify_signatures and not open_path:
                    if auth is None:  # /presigned-url would sign anything for anyone: a presign oracle
                        raise S3Error("AccessDenied", f"With signature checks on, {path} needs a signed request or the admin token.")
                    self._check_signature(req, auth)
                await self.convenience(scope, receive, send)
                return
            origin = req.headers.get("origin")
            if req.method == "OPTIONS":  # here: a preflight this server answers itself (owns_cors), or no Origin at all
                if origin is None:
                    raise S3Error("BadRequest", "Insufficient information. Origin request header needed.")
                await self.preflight(req, origin, send)
                return
            if origin is not None and req.bucket in self.store.buckets:
                rule = matching_rule(self.store.buckets[req.bucket], origin, req.method, [])
                req.cors = cors_headers(rule, origin, preflight=False) if rule else []
            req.auth = auth
            if auth is not None:
                check_expiry(auth, self.ctx.clock())
                if self.verify_signatures:
                    self._check_signature(req, auth)
            elif self.verify_signatures and req.bucket is None:  # anonymous access to a bucket is authorize()'s to decide
                raise S3Error("AccessDenied", "Anonymous requests are refused while signature checks are on (s3.verify_signatures).")
            await self.dispatch(req, receive, send)
        except S3Error as exc:
            await self.error(send, req, exc)
        except ClientGone:
            return
        except BodyTooLarge as exc:
            await self.error(send, req, S3Error("EntityTooLarge", f"Your proposed upload exceeds the maximum allowed size of {exc.limit} bytes"))
        except Exception as exc:  # a bug: still answer in S3's format, and say what broke
            logging.getLogger("uvicorn.error").exception("s3: %s %s failed", req.method, req.raw_path)
            await self.error(send, req, S3Error("InternalError", f"mockpanel's S3 mock failed: {type(exc).__name__}: {exc}"))

    @staticmethod
    def _form_post(req: Request) -> bool:
        """A browser's POST upload to a bucket: it carries its credentials in its signed policy, checked by post_object."""
        return req.method == "POST" and not req.key and not req.params and req.headers.get("content-type", "").lower().startswith("multipart/form-data")

    def owns_cors(self, scope: dict) -> bool:
        """Whether a request with Origin is answered from its bucket's CORS rules (else: every origin is allowed, as
        the seed did). Buckets with rules always; every bucket path with s3.cors = "bucket"; never the convenience
        paths (/health, /admin/..., /presigned-url, /docs)."""
        path = scope["path"]
        if path in self.convenience_paths or path.startswith(("/admin/objects/", "/docs")) or scope["method"] == "OPTIONS" and path == "/":
            return False
        name = self._virtual_bucket(scope) or path[1:].partition("/")[0]
        if not name:
            return False
        bucket = self.store.buckets.get(name)
        return self.cors_mode == "bucket" or (bucket is not None and bool(bucket.cors))

    async def preflight(self, req: Request, origin: str, send: Callable) -> None:
        bucket = self.store.buckets.get(req.bucket or "")
        method = req.headers.get("access-control-request-method", "")
        asked = [h.strip() for h in req.headers.get("access-control-request-headers", "").split(",") if h.strip()]
        rule = matching_rule(bucket, origin, method, asked) if bucket is not None else None
        if rule is None:
            raise S3Error("AccessForbidden", "CORSResponse: This CORS request is not allowed. This is usually because the evalution of Origin, "
                          "request method / Access-Control-Request-Method or Access-Control-Request-Headers are not whitelisted by the resource's CORS spec.",
                          status=403, Method=method[:16], ResourceType="OBJECT" if req.key else "BUCKET")
        await self.respond(send, req, 200, cors_headers(rule, origin, preflight=True, method=method, headers=asked))

    def _admin_token(self, req: Request) -> bool:
        token = self.ctx.admin_token
        given = req.headers.get("authorization", "")
        return bool(token) and hmac.compare_digest(given.encode("latin-1"), f"Bearer {token}".encode())

    def _check_signature(self, req: Request, auth: Auth) -> None:
        """As AWS: a known key, the request's time within 15 minutes (or its presigned expiry), host and every
        x-amz-* header signed, and the signature right."""
        check_expiry(auth, self.ctx.clock())
        secret = self.keys.get(auth.access_key)
        if secret is None:
            raise S3Error("InvalidAccessKeyId", AWSAccessKeyId=auth.access_key)
        check_signed_parts(auth, req.headers, self.ctx.clock.wall())  # the client's clock is the wall clock
        verify(auth, secret, req.method, req.raw_path, req.resource, req.query, req.multi)
        req.chunk_signatures = chunk_signatures(auth, secret, req.headers.get("x-amz-content-sha256", ""))

    async def dispatch(self, req: Request, receive: Callable, send: Callable) -> None:
        if req.bucket is None:
            level = "service"
        elif not req.key:
            level = "bucket"
        else:
            level = "object"
            size = len(req.key.encode("utf-8", "surrogateescape"))
            if size > MAX_KEY_BYTES:
                raise S3Error("KeyTooLongError", MaxSizeAllowed=str(MAX_KEY_BYTES), Size=str(size))
        for condition, operation in ROUTES.get((level, req.method), ()):
            if (condition is None or (condition == NO_PARAMS and not req.params) or condition in req.params
                    or (condition.startswith("header:") and condition[7:] in req.headers)):
                if operation != "unsupported" and any(p in SUBRESOURCES and p != condition for p in req.params):
                    operation = "unsupported"
                self.authorize(req, operation)
                return await getattr(self, operation)(req, receive, send)
        raise S3Error("MethodNotAllowed", Method=req.method, ResourceType=level.upper())

    async def unsupported(self, req: Request, receive: Callable, send: Callable) -> None:
        names = ", ".join(sorted(k for k in req.params if not k.startswith("X-Amz-"))) or req.method
        raise S3Error("NotImplemented", f"mockpanel's S3 mock does not implement this request ({req.method} ?{names}).")

    # --- bucket subresources answered with their empty defaults ---

    async def get_bucket_versioning(self, req: Request, receive: Callable, send: Callable) -> None:
        bucket = self.bucket(req)
        await self.xml(send, req, "VersioningConfiguration", [el("Status", bucket.versioning)] if bucket.versioning else [])

    async def put_bucket_versioning(self, req: Request, receive: Callable, send: Callable) -> None:
        bucket = self.bucket(req)
        root = parse(await self.read_small_body(req, receive))
        status = (root.findtext("Status") or "").strip()
        if root.tag != "VersioningConfiguration" or status not in ("Enabled", "Suspended"):
            raise S3Error("MalformedXML", "The XML you provided was not well-formed or did not validate against our published schema: "
                          "Status is Enabled or Suspended")
        if bucket.object_lock and status != "Enabled":
            # AWS refuses it: suspended, a locked object's next write would be the null version a plain PUT replaces
            raise S3Error("InvalidBucketState", "An Object Lock configuration is present on this bucket, so the versioning state cannot be changed.",
                          status=409)
        self.storage.set_versioning(bucket.name, status)
        await self.respond(send, req, 200)

    async def get_bucket_notification(self, req: Request, receive: Callable, send: Callable) -> None:
        bucket = self.bucket(req)
        await self.xml(send, req, "NotificationConfiguration", self.notifier.to_xml(bucket.notifications or []))

    async def put_bucket_notification(self, req: Request, receive: Callable, send: Callable) -> None:
        bucket = self.bucket(req)
        bucket.notifications = self.notifier.from_xml(await self.read_small_body(req, receive, require_digest="strict")) or None
        self.store.save_bucket(bucket)
        await self.respond(send, req, 200)

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
            if not valid_bucket_name(req.bucket or "", self.legacy_names):
                raise S3Error("InvalidBucketName", BucketName=req.bucket)
            return self._create(req.bucket, self.region)  # type: ignore[arg-type]
        raise S3Error("NoSuchBucket", BucketName=req.bucket)

    def _create(self, name: str, region: str) -> Bucket:
        return self.storage.create_bucket(name, region)

    async def create_bucket(self, req: Request, receive: Callable, send: Callable) -> None:
        name = req.bucket or ""
        if not valid_bucket_name(name, self.legacy_names):
            raise S3Error("InvalidBucketName", BucketName=name)
        acl = header_acl(req.headers)
        ownership = req.headers.get("x-amz-object-ownership")
        if ownership is not None and ownership not in OWNERSHIPS:
            raise S3Error("InvalidArgument", f"x-amz-object-ownership is one of {', '.join(OWNERSHIPS)}", ArgumentName="x-amz-object-ownership")
        if ownership == "BucketOwnerEnforced" and acl not in (None, "private", "bucket-owner-full-control"):
            raise S3Error("InvalidBucketAclWithObjectOwnership", "Bucket cannot have ACLs set with ObjectOwnership's BucketOwnerEnforced setting")
        lock = req.headers.get("x-amz-bucket-object-lock-enabled", "").lower() == "true"
        body = await self.read_small_body(req, receive)
        region = self.region
        if body.strip():
            root = parse(body)
            constraint = root.find("LocationConstraint")
            if root.tag != "CreateBucketConfiguration":
                raise S3Error("MalformedXML")
            if constraint is not None and (constraint.text or "").strip():
                region = constraint.text.strip()
        existing = self.store.buckets.get(name)
        if existing is not None:
            if region == "us-east-1" and existing.region == "us-east-1":
                await self.respond(send, req, 200, [("location", f"/{name}")])  # the legacy us-east-1 answer SDKs rely on
                return
            raise S3Error("BucketAlreadyOwnedByYou", BucketName=name)
        bucket = self._create(name, region)
        bucket.acl, bucket.ownership = acl, ownership
        if lock:  # Object Lock at creation turns versioning on, as S3 does
            bucket.versioning, bucket.object_lock = "Enabled", {"enabled": True, "rule": None}
        if acl or ownership or lock:
            self.store.save_bucket(bucket)
        await self.respond(send, req, 200, [("location", f"/{name}")])

    async def head_bucket(self, req: Request, receive: Callable, send: Callable) -> None:
        bucket = self.bucket(req)
        await self.respond(send, req, 200, [("x-amz-bucket-region", bucket.region)])

    async def delete_bucket(self, req: Request, receive: Callable, send: Callable) -> None:
        bucket = self.bucket(req)
        if bucket.objects or bucket.history:  # objects and versions (delete markers too) keep a bucket
            raise S3Error("BucketNotEmpty", BucketName=bucket.name)
        for upload in [u for u in self.store.uploads.values() if u.bucket == bucket.name]:  # only objects keep a bucket
            if upload.upload_id not in self.completing:
                self.store.abort_upload(upload.upload_id)
        self.storage.delete_bucket(bucket.name)
        await self.respond(send, req, 204)

    async def get_location(self, req: Request, receive: Callable, send: Callable) -> None:
        bucket = self.bucket(req)
        region = "" if bucket.region == "us-east-1" else bucket.region
        await self.xml(send, req, "LocationConstraint", [region])
