"""A small reference implementation of the image API the client app drives (port 8002, on with --demo).

It follows the contract in DESIGN.md: a bearer JWT, 50 uploads per user per minute, the original and three
variants stored in the S3 mock over HTTP, and a signed `image.processed` webhook when a job completes. With it,
client app -> image API -> S3 -> webhook receiver runs on one machine.
"""

from __future__ import annotations

import asyncio
import ctypes
import hashlib
import hmac
import io
import json
import re
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx2
import jwt
from fastapi import File, Form, Header, HTTPException, Request, UploadFile
from fastapi.responses import JSONResponse
from PIL import Image, UnidentifiedImageError

from .. import tracing
from ..clock import BY_OUR_CLOCK, check_token_times
from ..service import ServerContext
from ..settings import Setting
from ..spec import Built, NotFound, ServerSpec
from ..web import json_app
from ..timefmt import iso
from .client_app import DEFAULT_IMAGE_API

CLIENT_SECRET_DEFAULT = "dev-secret-change-in-production"  # seed 002's client app default: the two must agree
VARIANTS = {"thumbnail": 150, "medium": 800, "large": 1600}  # longest side, in pixels
MAX_UPLOAD = 20 * 1024 * 1024

SETTINGS = (
    Setting("jwt_secret", "str", CLIENT_SECRET_DEFAULT, "secret the bearer tokens are checked with", ("JWT_SECRET",), secret_default=True),
    Setting("rate_limit", "positive", 50, "uploads per user per minute", ("RATE_LIMIT_PER_MINUTE",)),
    Setting("s3_url", "str", None, "S3 endpoint for originals and variants (default: mockpanel's S3 server)", ("AWS_ENDPOINT_URL",)),
    Setting("webhook_url", "str", None, "where image.processed goes (default: mockpanel's receiver, client id image-api)", ("WEBHOOK_URL",)),
    Setting("webhook_secret", "str", "webhook-secret-123", "secret of X-Webhook-Signature", ("WEBHOOK_SECRET",)),
    Setting("default_bucket", "str", "test-uploads", "bucket used when an upload names none"),
    Setting("max_jobs", "positive", 10_000, "jobs kept (the oldest are forgotten: their status is then 404)"),
    Setting("max_pixels", "positive", 40_000_000, "largest image decoded (width x height, read from its header first); larger: the job fails"),
    Setting("decodes_at_once", "positive", 1, "images decoded at the same time (each can take hundreds of MB)"),
)


@dataclass
class Job:
    job_id: str
    image_id: str
    user_id: str
    bucket: str
    context: str
    filename: str
    content_type: str
    request_id: str | None
    status: str = "pending"
    error: str | None = None
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)
    urls: dict[str, str] = field(default_factory=dict)
    sizes: dict[str, list[int]] = field(default_factory=dict)

    def view(self) -> dict[str, Any]:
        return {"job_id": self.job_id, "image_id": self.image_id, "status": self.status, "error": self.error, "user_id": self.user_id,
                "bucket": self.bucket, "context": self.context, "filename": self.filename,
                "created_at": iso(self.created_at, millis=False), "updated_at": iso(self.updated_at, millis=False)}


class ImageJobs:
    """The reference image API's domain: its jobs (bounded, oldest forgotten), per-user rate windows, and the tasks
    processing them. Routes and the Client app pane go through here."""

    def __init__(self, ctx: ServerContext, max_jobs: int) -> None:
        self.ctx = ctx
        self.max_jobs = max_jobs
        self._jobs: dict[str, Job] = {}
        self.uploads_by_user: dict[str, deque[float]] = {}
        self.tasks: set[asyncio.Task] = set()

    def jobs(self) -> list[Job]:
        """Oldest first."""
        return list(self._jobs.values())

    def job(self, job_id: str) -> Job:
        job = self._jobs.get(job_id)
        if job is None:
            raise NotFound(f"job {job_id} not found")
        return job

    def __len__(self) -> int:
        return len(self._jobs)

    def add(self, job: Job) -> None:
        self._jobs[job.job_id] = job
        while len(self._jobs) > self.max_jobs:
            self._jobs.pop(next(iter(self._jobs)))  # oldest first: dicts keep insertion order
        self.ctx.event("upload_started", job_id=job.job_id, image_id=job.image_id, user_id=job.user_id, filename=job.filename)

    def reset(self) -> None:
        self._jobs.clear()
        self.uploads_by_user.clear()

    def rate_limited(self, user_id: str, limit: int, now: float) -> int | None:
        """Seconds to wait if this upload is over the limit, else None (and the upload is counted)."""
        window = self.uploads_by_user.setdefault(user_id, deque())
        while window and now - window[0] >= 60:
            window.popleft()
        if len(window) >= limit:
            return max(1, int(60 - (now - window[0])) + 1)
        window.append(now)
        return None

    def set_status(self, job: Job, status: str, error: str | None = None) -> None:
        job.status, job.error, job.updated_at = status, error, self.ctx.clock()
        self.ctx.event("job_status", job_id=job.job_id, image_id=job.image_id, user_id=job.user_id, status=status, error=error)


def release_memory() -> None:
    """Give freed memory back to the system after a large decode (glibc keeps it otherwise); elsewhere a no-op."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


class TooManyPixels(ValueError):
    """An image whose header promises more pixels than max_pixels: refused before anything is decoded."""


def _open(data: bytes, max_pixels: int) -> Image.Image:
    """The image, its header read (nothing decoded). Pillow itself refuses a header of over twice its own bomb limit
    (~179 megapixels) as it opens: that is the same refusal as ours, with the size Pillow read."""
    try:
        return Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:
        pixels = re.search(r"\((\d+) pixels\)", str(exc))
        size = f"{int(pixels.group(1)) / 1e6:.0f} megapixels" if pixels else "over Pillow's own limit"
        raise TooManyPixels(f"the image is {size}, over the limit of {max_pixels / 1e6:g} (imageapi.max_pixels)") from None


def _variants(data: bytes, max_pixels: int) -> tuple[dict[str, tuple[bytes, tuple[int, int]]], str, str, tuple[int, int]]:
    """Resized PNG/JPEG variants of an image (in a worker thread: Pillow work is CPU-bound)."""
    with _open(data, max_pixels) as image:  # reads the header only
        width, height = image.size
        if width * height > max_pixels:
            raise TooManyPixels(f"the image is {width}×{height} = {width * height / 1e6:.0f} megapixels, over the limit of "
                                f"{max_pixels / 1e6:g} (imageapi.max_pixels)")
        image.load()
        fmt = "PNG" if image.mode in ("RGBA", "LA", "P") or (image.format or "").upper() == "PNG" else "JPEG"
        out = {}
        for name, longest in VARIANTS.items():
            copy = image.copy()
            copy.thumbnail((longest, longest))
            if fmt == "JPEG" and copy.mode not in ("RGB", "L"):
                copy = copy.convert("RGB")
            buffer = io.BytesIO()
            copy.save(buffer, fmt)
            out[name] = (buffer.getvalue(), copy.size)
        original_size = image.size
    return out, fmt.lower(), "image/png" if fmt == "PNG" else "image/jpeg", original_size


def build(ctx: ServerContext) -> Built:
    s = ctx.settings
    state = ImageJobs(ctx, s["max_jobs"])
    ctx.max_body_bytes = MAX_UPLOAD + 64 * 1024
    decoding = asyncio.Semaphore(s["decodes_at_once"])
    ctx.on_reset(state.reset)

    def s3_base() -> str:
        return (s["s3_url"] or ctx.peers().get("s3") or "http://localhost:9000").rstrip("/")

    def webhook_target() -> str | None:
        if s["webhook_url"]:
            return s["webhook_url"]
        receiver = ctx.peers().get("webhooks")
        return f"{receiver}/webhooks/image-api" if receiver else None

    app = json_app(title="Image API (reference)", version="1.0.0",
                  description="mockpanel's reference implementation of the image processing API the client app drives.")

    @app.get("/api/v1/health", summary="Health check")
    async def health() -> dict[str, Any]:
        return {"status": "healthy", "service": "image-api-reference", "jobs": len(state), "s3": s3_base(), "webhook": webhook_target()}

    def user_from(authorization: str | None) -> str:
        if not authorization or not authorization.lower().startswith("bearer "):
            raise HTTPException(401, "send Authorization: Bearer <JWT>", headers={"WWW-Authenticate": "Bearer"})
        try:
            claims = jwt.decode(authorization[7:].strip(), s["jwt_secret"], algorithms=["HS256"], options={"require": ["sub", "exp"], **BY_OUR_CLOCK})
            check_token_times(claims, ctx.clock())
        except jwt.ExpiredSignatureError:
            raise HTTPException(401, "token has expired", headers={"WWW-Authenticate": "Bearer"}) from None
        except jwt.InvalidTokenError as exc:
            raise HTTPException(401, f"invalid token: {exc}", headers={"WWW-Authenticate": "Bearer"}) from None
        return str(claims["sub"])

    @app.post("/api/v1/images/upload", status_code=202, summary="Upload an image for processing",
              responses={401: {"description": "No or bad token"}, 415: {"description": "Not an image"}, 429: {"description": "Rate limited"}})
    async def upload(request: Request, file: UploadFile = File(...), bucket: str = Form(""), context: str = Form(""),
                     authorization: str | None = Header(None)) -> JSONResponse:
        user_id = user_from(authorization)
        wait = state.rate_limited(user_id, s["rate_limit"], ctx.clock())
        if wait is not None:
            return JSONResponse({"detail": f"rate limit of {s['rate_limit']} uploads per minute reached for {user_id}", "retry_after": wait},
                                status_code=429, headers={"Retry-After": str(wait)})
        data = await file.read()
        try:
            with _open(data, s["max_pixels"]) as probe:
                probe.verify()
        except TooManyPixels:
            pass  # an image: accepted, and its job fails with the reason, as any image over the pixel cap
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
            raise HTTPException(415, f"{file.filename or 'the upload'} is not an image Pillow can read (PNG, JPEG, GIF, WebP, ...)") from None
        job = Job(uuid.uuid4().hex, uuid.uuid4().hex, user_id, bucket or s["default_bucket"], context, file.filename or "upload",
                  file.content_type or "application/octet-stream", request.headers.get("x-request-id"))
        job.created_at = job.updated_at = ctx.clock()
        state.add(job)
        task = asyncio.create_task(process(job, data))
        state.tasks.add(task)
        task.add_done_callback(state.tasks.discard)
        return JSONResponse({"job_id": job.job_id, "image_id": job.image_id, "status": job.status}, status_code=202)

    @app.get("/api/v1/jobs/{job_id}", summary="A job's status")
    async def job_status(job_id: str) -> dict[str, Any]:
        return state.job(job_id).view()

    @app.get("/api/v1/jobs/{job_id}/result", summary="A completed job's image URLs",
             responses={409: {"description": "Not completed (yet)"}})
    async def job_result(job_id: str) -> dict[str, Any]:
        job = state.job(job_id)
        if job.status != "completed":
            raise HTTPException(409, f"job {job_id} is {job.status}" + (f": {job.error}" if job.error else ""))
        return {"image_id": job.image_id, "urls": job.urls, "sizes": job.sizes}

    async def process(job: Job, data: bytes) -> None:
        headers = {**tracing.headers(), **({"x-request-id": job.request_id} if job.request_id else {})}
        await asyncio.sleep(0.05)  # let the client see "pending" before "processing"
        state.set_status(job, "processing")
        try:
            async with decoding:
                try:
                    variants, ext, content_type, original_size = await asyncio.to_thread(_variants, data, s["max_pixels"])
                finally:
                    release_memory()
        except Exception as exc:
            state.set_status(job, "failed", f"processing failed: {exc}")
            return
        base = s3_base()
        prefix = f"images/{job.image_id}"
        objects = {"original": (data, job.content_type, f"{prefix}/original-{job.filename}")}
        job.sizes["original"] = list(original_size)
        for name, (body, size) in variants.items():
            objects[name] = (body, content_type, f"{prefix}/{name}.{ext}")
            job.sizes[name] = list(size)
        try:
            async with httpx2.AsyncClient(timeout=15) as client:
                for name, (body, ctype, key) in objects.items():
                    r = await client.put(f"{base}/{job.bucket}/{key}", content=body, headers={"content-type": ctype, **headers})
                    if r.status_code >= 300:
                        raise RuntimeError(f"S3 answered {r.status_code} for {key}: {r.text[:200]}")
                    job.urls[name] = f"{base}/{job.bucket}/{key}"
        except (httpx2.HTTPError, RuntimeError) as exc:
            state.set_status(job, "failed", f"storing in S3 failed: {exc}")
            return
        target = webhook_target()
        if target:
            event = {"event_type": "image.processed", "image_id": job.image_id, "job_id": job.job_id, "status": "completed", "urls": job.urls}
            body = json.dumps(event).encode()
            signature = hmac.new(s["webhook_secret"].encode(), body, hashlib.sha256).hexdigest()
            try:
                async with httpx2.AsyncClient(timeout=10) as client:
                    r = await client.post(target, content=body, headers={"content-type": "application/json", "x-webhook-signature": signature, **headers})
                if r.status_code >= 300:
                    raise RuntimeError(f"webhook receiver answered {r.status_code}")
            except (httpx2.HTTPError, RuntimeError) as exc:
                state.set_status(job, "failed", f"webhook delivery to {target} failed: {exc}")
                return
        state.set_status(job, "completed")

    return Built(app, state)


async def answers(url: str, timeout: float = 0.5) -> bool:
    """Whether something accepts connections at the URL's host and port."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(parts.hostname, port), timeout)
    except (OSError, asyncio.TimeoutError, ValueError):
        return False
    writer.close()
    return True


async def start_unless_taken(settings: Any) -> str | None:
    """Left to itself, the reference API runs when the client app would otherwise find nothing to drive."""
    client = settings.servers.get("client")
    if client is None or not client.enabled:
        return ""  # nothing would drive it
    if client["image_api_url"]:
        return (f"imageapi: the client app drives IMAGE_API_URL={client['image_api_url']}; the reference image API stays off "
                "(--demo starts it)")
    if await answers(DEFAULT_IMAGE_API):
        return (f"imageapi: something already answers at {DEFAULT_IMAGE_API}: the client app drives it and the reference image API "
                "stays off (set IMAGE_API_URL to choose another)")
    return None


SPEC = ServerSpec(name="imageapi", title="Image API (reference)", default_port=8002, build=build, settings=SETTINGS,
                  enabled_by_default="auto", auto_start=start_unless_taken)
