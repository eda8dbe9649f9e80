"""The S3 mock (seed 002, port 9000): the S3 REST protocol for boto3 and the aws cli, plus the seed's curl endpoints."""

from __future__ import annotations

import itertools
from typing import Any

from fastapi import APIRouter, Query, Request

from ...service import ServerContext
from ...settings import Setting, SettingsError
from ...spec import Built, Invalid, NotFound, ServerSpec
from ...web import json_app, json_body
from .protocol import S3Protocol, valid_bucket_name
from .domain import Storage
from .notifications import Notifier, check_rule
from .signing import MAX_PRESIGN_SECONDS
from .storage import Store
from .xml import FAULT_CODES, error_document
from ...timefmt import iso

SETTINGS = (
    Setting("data_dir", "str", None, "keep buckets and objects in this directory across restarts (default: in memory)", ("S3_DATA_DIR",)),
    Setting("presigned_url_base", "str", None, "base URL of presigned URLs (default: the URL the request came to)", ("PRESIGNED_URL_BASE",)),
    Setting("verify_signatures", "bool", False, "check SigV4/SigV2 signatures against access_keys; anonymous requests are then refused",
            ("S3_VERIFY_SIGNATURES",)),
    Setting("strict", "bool", False, "fail locally where production would fail: signatures verified (as verify_signatures), unsigned "
            "requests refused, Content-MD5 or a checksum required where AWS requires one", ("S3_STRICT",)),
    Setting("public_buckets", "list", (), "buckets anyone may read (GET/HEAD) even with verify_signatures on", ("S3_PUBLIC_BUCKETS",)),
    Setting("access_keys", "list", ("test-key:test-secret",), "access-key:secret pairs (comma-separated)", ("S3_ACCESS_KEYS",), secret_default=True),
    Setting("auto_create_buckets", "str", "unsigned", "create a missing bucket on write: unsigned (curl) requests only, always, or never",
            ("S3_AUTO_CREATE_BUCKETS",), choices=("unsigned", "always", "never")),
    Setting("buckets", "list", (), "buckets that exist from the start (comma-separated)", ("S3_BUCKETS",)),
    Setting("notifications", "json", (), "event notification rules: [{bucket, url, events, prefix, suffix}] (a TOML array of tables, "
            "or JSON)", ("S3_NOTIFICATIONS",)),
    Setting("notification_targets", "list", (), "ARN=URL pairs: where PutBucketNotificationConfiguration's Topic/Queue/Lambda ARNs "
            "deliver (default: the webhook receiver, /webhooks/<the ARN's last part>)", ("S3_NOTIFICATION_TARGETS",)),
    Setting("notification_secret", "str", "webhook-secret-123", "secret of the X-Webhook-Signature on event notifications (the receiver's "
            "default WEBHOOK_SECRET)", ("S3_NOTIFICATION_SECRET",)),
    Setting("cors", "str", "any", "browsers' cross-origin requests to buckets without CORS rules: any (allowed, as the seed) or "
            "bucket (only what a bucket's own rules allow, as AWS)", ("S3_CORS",), choices=("any", "bucket")),
    Setting("bucket_names", "str", "strict", "bucket names accepted: strict (today's S3 rules) or legacy (also underscores and "
            "capitals, as us-east-1 accepted before 2018 — a porting aid for suites written against moto)", ("S3_BUCKET_NAMES",),
            choices=("strict", "legacy")),
    Setting("region", "str", "us-east-1", "region of buckets created without a LocationConstraint", ("S3_REGION",)),
    Setting("min_part_size", "int", 5 * 1024 * 1024, "smallest multipart part (but the last) CompleteMultipartUpload accepts", ("S3_MIN_PART_SIZE",)),
    Setting("virtual_host_suffixes", "list", ("localhost",), "host names under which BUCKET.<suffix> addresses a bucket"),
)

_fault_ids = itertools.count(1)


def render_error(status: int, message: str, scope: dict) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """Injected faults as S3 errors, so SDKs run their retry logic (503 SlowDown, 500 InternalError, ...)."""
    code = FAULT_CODES.get(status, "InternalError" if status >= 500 else "InvalidRequest")
    request_id = f"FAULT{next(_fault_ids):011X}"
    body = error_document(code, message, request_id, resource=scope.get("path"))
    return [(b"content-type", b"application/xml"), (b"x-amz-request-id", request_id.encode()), (b"x-amz-id-2", request_id.encode())], body


def _object_summary(meta) -> dict[str, Any]:
    return {
        "key": meta.key,
        "size": meta.size,
        "etag": meta.etag,
        "content_type": meta.content_type,
        "last_modified": iso(meta.last_modified, millis=False),
        "metadata": {k: _readable(v) for k, v in meta.metadata.items()},
        "server_side_encryption": meta.sse,
    }


def _readable(value: str) -> str:
    """Header values travel as latin-1; a UTF-8 metadata value shows as the text the client meant."""
    try:
        return value.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return value


def notification_routes(storage: Storage, notifier: Notifier) -> APIRouter:
    """/__mockpanel/notifications/{bucket}: a bucket's event notification rules (a rule, or a list of them)."""
    router = APIRouter()

    def bucket_of(name: str):
        bucket = storage.store.buckets.get(name)
        if bucket is None:
            raise NotFound(f"bucket {name!r} does not exist")
        return bucket

    @router.get("/__mockpanel/notifications/{bucket}", summary="A bucket's notification rules (with those from settings)")
    async def get_rules(bucket: str) -> dict[str, Any]:
        return {"bucket": bucket, "rules": notifier.rules(bucket_of(bucket)), "delivered": notifier.delivered, "failed": notifier.failed}

    @router.put("/__mockpanel/notifications/{bucket}", summary="Replace a bucket's notification rules: {url, events, prefix, suffix} or a list")
    async def put_rules(bucket: str, request: Request) -> dict[str, Any]:
        found = bucket_of(bucket)
        raw = await json_body(request)
        try:
            rules = [check_rule(r) for r in (raw if isinstance(raw, list) else [raw])]
        except ValueError as exc:
            raise Invalid(str(exc)) from None
        found.notifications = rules[:100]
        storage.store.save_bucket(found)
        return {"bucket": bucket, "rules": notifier.rules(found)}

    @router.delete("/__mockpanel/notifications/{bucket}", summary="Remove a bucket's notification rules (those from settings stay)")
    async def delete_rules(bucket: str) -> dict[str, Any]:
        found = bucket_of(bucket)
        found.notifications = None
        storage.store.save_bucket(found)
        return {"bucket": bucket, "rules": notifier.rules(found)}

    return router


def clock_routes(storage: Storage) -> APIRouter:
    """/__mockpanel/s3/clock and /__mockpanel/s3/lifecycle/run: the mock's clock, by which lifecycle rules act."""
    router = APIRouter()

    @router.get("/__mockpanel/s3/clock", summary="The mock's clock (lifecycle rules and Object Lock dates): its offset and now")
    async def get_clock() -> dict[str, Any]:
        return storage.status()

    @router.post("/__mockpanel/s3/clock", summary="Advance the clock — {\"advance_s\": N} or {\"advance_days\": N} — and apply "
                 "every lifecycle rule at the new time (what was expired, removed, aborted)")
    async def advance(request: Request) -> dict[str, Any]:
        body = await json_body(request)
        if not isinstance(body, dict) or not any(isinstance(body.get(k), (int, float)) and not isinstance(body.get(k), bool)
                                                 for k in ("advance_s", "advance_days")):
            raise Invalid('send {"advance_days": 7} or {"advance_s": 3600}')
        seconds = float(body.get("advance_s") or 0) + float(body.get("advance_days") or 0) * 86_400
        applied = storage.advance_clock(seconds)
        return {**storage.status(), "applied": applied}

    @router.delete("/__mockpanel/s3/clock", summary="Back to the real clock (nothing expired comes back)")
    async def real_clock() -> dict[str, Any]:
        storage.reset_clock()
        return storage.status()

    @router.post("/__mockpanel/s3/lifecycle/run", summary="Apply every bucket's lifecycle rules now, as AWS's daily run")
    async def run() -> dict[str, Any]:
        return {**storage.status(), "applied": storage.apply_lifecycle()}

    return router


def build(ctx: ServerContext) -> Built:
    s = ctx.settings
    for name in s["buckets"]:
        if not valid_bucket_name(name, s["bucket_names"] == "legacy"):
            raise SettingsError(f"invalid setting s3.buckets: {name!r} is not a valid S3 bucket name")
    storage = Storage(ctx, Store(s["data_dir"]))
    storage.seed()
    ctx.on_reset(storage.reset)
    app = json_app(
        title="S3 mock",
        description="S3-compatible storage (path-style and BUCKET.localhost) plus the seed's convenience endpoints. "
        "The S3 REST API itself (ListBuckets, PutObject, multipart, ...) is served on the same port and is not listed here.",
        version="1.0.0",
    )

    @app.get("/health", summary="Health check")
    async def health() -> dict[str, Any]:
        return {
            "status": "healthy",
            "service": "s3-mock",
            "storage": str(storage.store.root) if storage.store.root else "memory",
            "buckets": len(storage.store.buckets),
            "objects": storage.object_count(),
        }

    @app.get("/presigned-url", summary="A SigV4 presigned URL that plain HTTP clients (curl) can use until it expires")
    async def presigned_url(
        request: Request,
        bucket: str = Query(..., min_length=1),
        key: str = Query(..., min_length=1, max_length=1024),
        expires_in: int = Query(3600, ge=1, le=MAX_PRESIGN_SECONDS),
        method: str = Query("GET", pattern="^(GET|PUT|HEAD|DELETE)$"),
    ) -> dict[str, Any]:
        base = f"{request.url.scheme}://{request.headers.get('host', request.url.netloc)}"
        now = ctx.clock()
        url = storage.presign(method, bucket, key, expires_in, base, now)
        return {"url": url, "bucket": bucket, "key": key, "method": method, "expires_in": expires_in,
                "expires_at": iso(now + expires_in, millis=False)}

    @app.get("/admin/buckets", summary="All buckets with object counts and sizes")
    async def admin_buckets() -> dict[str, Any]:
        return {"buckets": [{"name": b.name, "region": b.region, "created": iso(b.created, millis=False), "objects": b.objects, "size": b.size}
                            for b in storage.buckets()]}

    @app.get("/admin/objects/{bucket}", summary="The objects of one bucket")
    async def admin_objects(bucket: str) -> dict[str, Any]:
        return {"bucket": bucket, "objects": [_object_summary(meta) for meta in storage.objects(bucket)]}

    @app.delete("/admin/reset", summary="Delete every bucket and object (configured buckets come back empty)")
    async def admin_reset() -> dict[str, Any]:
        await ctx.reset()
        return {"status": "reset", "buckets": len(storage.store.buckets)}

    rules = []
    for raw in s["notifications"] if isinstance(s["notifications"], (list, tuple)) else [s["notifications"]]:
        try:
            rule = check_rule(raw)
        except ValueError as exc:
            raise SettingsError(f"invalid setting s3.notifications: {exc}") from None
        if "bucket" not in rule:
            raise SettingsError("invalid setting s3.notifications: each rule names its bucket")
        rules.append(rule)
    targets = {}
    for pair in s["notification_targets"]:
        arn, sep, url = pair.partition("=")
        if not sep or not url.startswith(("http://", "https://")):
            raise SettingsError(f"invalid setting s3.notification_targets: {pair[:100]!r} is not ARN=URL")
        targets[arn] = url
    protocol = S3Protocol(ctx, storage, app, Notifier(ctx, rules, s["notification_secret"], targets))
    ctx.cors_owner = protocol.owns_cors
    ctx.on_stop(protocol.notifier.close)
    ctx.control_routers.append(notification_routes(storage, protocol.notifier))
    ctx.control_routers.append(clock_routes(storage))
    return Built(protocol, storage)


SPEC = ServerSpec(
    name="s3",
    title="S3 storage",
    default_port=9000,
    build=build,
    settings=SETTINGS,
    render_error=render_error,
    max_body_bytes=6 * 1024**3,  # S3's 5 GiB single PUT, plus aws-chunked framing
    preview_bytes_limit=512,
    admin_paths=(("DELETE", "/admin/reset"), ("GET", "/admin/objects/"), ("GET", "/admin/buckets")),
)
