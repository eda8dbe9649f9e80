"""The client application mock (seed 002, port 3000): a web page and REST calls that drive an image API —
JWT -> upload -> poll -> display — and stress its rate limit."""

from __future__ import annotations

import asyncio
import io
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx2
import jwt
from fastapi import File, Form, Query, UploadFile
from fastapi.responses import HTMLResponse, JSONResponse

from ... import tracing
from ...service import ServerContext
from ...settings import Setting
from ...spec import Built, ServerSpec
from ...web import json_app
from ...timefmt import iso

DEFAULT_IMAGE_API = "http://localhost:8002"

SETTINGS = (
    Setting("image_api_url", "str", None, f"the image API to drive (default {DEFAULT_IMAGE_API}, or mockpanel's own with --demo)", ("IMAGE_API_URL",)),
    Setting("jwt_secret", "str", "dev-secret-change-in-production", "secret of the tokens it generates (must match the image API's)", ("JWT_SECRET",), secret_default=True),
    Setting("token_expiry_minutes", "positive", 60, "lifetime of generated tokens"),
    Setting("request_timeout_s", "positive", 10, "how long a call to the image API may take"),
    Setting("stress_concurrency", "positive", 8, "uploads in flight at once during a stress test"),
    Setting("history_size", "positive", 500, "uploads remembered in the history"),
)


FINAL_STATUSES = ("completed", "failed")
REFRESHED_PER_READ = 100  # unsettled jobs asked for per /api/history read, newest first


class ImageApiError(Exception):
    """The image API could not be reached or answered something unusable: the client app answers 502."""


def tiny_png(seed: int = 0, size: tuple[int, int] = (64, 48)) -> bytes:
    from PIL import Image

    image = Image.new("RGB", size, ((seed * 37) % 256, (seed * 91) % 256, 160))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


class UploadHistory:
    """The client app's domain: the uploads made through it, newest first, bounded; each change is an event."""

    def __init__(self, ctx: ServerContext, size: int) -> None:
        self.ctx = ctx
        self.size = size
        self._uploads: list[dict[str, Any]] = []

    def uploads(self) -> list[dict[str, Any]]:
        """Newest first (copies: a reader cannot change the history)."""
        return [dict(entry) for entry in self._uploads]

    def __len__(self) -> int:
        return len(self._uploads)

    def remember(self, entry: dict[str, Any]) -> None:
        self._uploads.insert(0, entry)
        del self._uploads[self.size:]
        self.ctx.event("upload", **{k: entry.get(k) for k in ("job_id", "image_id", "user_id", "filename", "http_status", "request_id")})

    def job_status(self, job_id: str, status: str) -> None:
        """What the image API last said of a job this app uploaded."""
        changed = False
        for entry in self._uploads:
            if entry.get("job_id") == job_id and entry.get("status") != status:
                entry["status"] = status
                changed = True
        if changed:
            self.ctx.event("upload_status", job_id=job_id, status=status)

    def unsettled(self, limit: int) -> list[str]:
        """Jobs of the newest uploads whose last known status is not final (a stress test's: nobody polled them)."""
        jobs = [e["job_id"] for e in self._uploads if e.get("job_id") and e.get("status") not in FINAL_STATUSES]
        return list(dict.fromkeys(jobs))[:limit]

    def reset(self) -> None:
        self._uploads.clear()


def build(ctx: ServerContext) -> Built:
    s = ctx.settings
    history = UploadHistory(ctx, s["history_size"])
    ctx.max_body_bytes = 25 * 1024 * 1024
    ctx.on_reset(history.reset)
    page = (Path(__file__).parent / "page.html").read_text(encoding="utf-8")

    def api_base() -> str:
        return (s["image_api_url"] or ctx.peers().get("imageapi") or DEFAULT_IMAGE_API).rstrip("/")

    def make_token(user_id: str) -> str:
        now = datetime.fromtimestamp(ctx.clock(), timezone.utc)  # the mocks' clock, as the image API judges it
        claims = {"sub": user_id, "iat": int(now.timestamp()), "exp": int((now + timedelta(minutes=s["token_expiry_minutes"])).timestamp()),
                  "type": "access", "jti": uuid.uuid4().hex}
        return jwt.encode(claims, s["jwt_secret"], algorithm="HS256")

    async def call(method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        url = api_base() + path
        try:
            async with httpx2.AsyncClient(timeout=s["request_timeout_s"]) as client:
                response = await client.request(method, url, **kwargs)
        except httpx2.TimeoutException:
            raise ImageApiError(f"the image API at {api_base()} did not answer within {s['request_timeout_s']}s") from None
        except httpx2.HTTPError as exc:
            fix = ("start your image API there, or set IMAGE_API_URL to where it runs" if s["image_api_url"] else
                   "start your image API there, set IMAGE_API_URL to where it runs, or start mockpanel's reference one: "
                   "mockpanel --demo (it starts by itself when nothing answers at start-up)")
            raise ImageApiError(f"the image API at {api_base()} is unreachable ({type(exc).__name__}: {exc}): {fix}") from None
        try:
            body = response.json()
        except ValueError:
            raise ImageApiError(f"the image API at {api_base()} answered {response.status_code} with something that is not JSON: {response.text[:120]!r}") from None
        if not isinstance(body, dict):
            raise ImageApiError(f"the image API at {api_base()} answered {response.status_code} with JSON that is not an object")
        return response.status_code, body

    app = json_app(title="Client application mock", version="1.0.0",
                  description="Drives an image API: JWT -> upload -> poll -> display, and stress-tests its rate limit. Web UI at /.")

    @app.exception_handler(ImageApiError)
    async def _bad_gateway(request, exc: ImageApiError) -> JSONResponse:
        return JSONResponse({"detail": str(exc), "image_api_url": api_base()}, status_code=502)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index() -> str:
        return page

    @app.get("/health", summary="Health check")
    async def health() -> dict[str, Any]:
        return {"status": "healthy", "service": "client-app-mock", "image_api_url": api_base()}

    @app.get("/api/generate-token", summary="An HS256 JWT for a user id (sub = user id)")
    async def generate_token(user_id: str = Query(..., min_length=1, max_length=200)) -> dict[str, Any]:
        return {"token": make_token(user_id), "user_id": user_id, "token_type": "bearer", "expires_in": s["token_expiry_minutes"] * 60}

    async def forward_upload(data: bytes, filename: str, content_type: str, bucket: str, user_id: str, context: str) -> tuple[int, dict[str, Any], str]:
        request_id = uuid.uuid4().hex
        status, body = await call(
            "POST", "/api/v1/images/upload",
            files={"file": (filename, data, content_type)}, data={"bucket": bucket, "context": context},
            headers={"Authorization": f"Bearer {make_token(user_id)}", "X-Request-ID": request_id, **tracing.headers()},
        )
        return status, body, request_id

    @app.post("/api/upload", summary="Upload an image through the image API")
    async def upload(file: UploadFile = File(...), bucket: str = Form("test-uploads"), user_id: str = Form("test-user-123"),
                     context: str = Form("demo")) -> JSONResponse:
        data = await file.read()
        status, body, request_id = await forward_upload(data, file.filename or "upload", file.content_type or "application/octet-stream",
                                                        bucket, user_id, context)
        entry = {"job_id": body.get("job_id"), "image_id": body.get("image_id"), "status": body.get("status"), "user_id": user_id,
                 "filename": file.filename, "size": len(data), "bucket": bucket, "context": context, "http_status": status,
                 "detail": body.get("detail"), "request_id": request_id, "uploaded_at": iso(ctx.clock(), millis=False)}
        history.remember(entry)
        return JSONResponse({**body, "request_id": request_id}, status_code=status)

    @app.get("/api/status/{job_id}", summary="A job's status, from the image API")
    async def job_status(job_id: str) -> JSONResponse:
        status, body = await call("GET", f"/api/v1/jobs/{quote(job_id, safe='')}")
        if isinstance(body.get("status"), str):
            history.job_status(job_id, body["status"])
        return JSONResponse(body, status_code=status)

    @app.get("/api/result/{job_id}", summary="A completed job's image URLs, from the image API")
    async def job_result(job_id: str) -> JSONResponse:
        status, body = await call("GET", f"/api/v1/jobs/{quote(job_id, safe='')}/result")
        return JSONResponse(body, status_code=status)

    @app.post("/api/stress-test", summary="Upload `count` images at once to find the rate limit")
    async def stress_test(user_id: str = Form("test-user-123"), count: int = Form(51, ge=1, le=1000),
                          bucket: str = Form("test-uploads")) -> dict[str, Any]:
        started = time.perf_counter()
        gate = asyncio.Semaphore(s["stress_concurrency"])
        image = tiny_png()
        results: list[int | None] = [None] * count
        order: list[int] = []

        async def one(index: int) -> None:
            async with gate:
                try:
                    status, body, request_id = await forward_upload(image, f"stress-{index}.png", "image/png", bucket, user_id, "stress-test")
                except ImageApiError:
                    status, body, request_id = 502, {}, None
                results[index] = status
                order.append(index)
                if status == 202:
                    history.remember({"job_id": body.get("job_id"), "image_id": body.get("image_id"), "status": body.get("status"), "user_id": user_id,
                              "filename": f"stress-{index}.png", "size": len(image), "bucket": bucket, "context": "stress-test",
                              "http_status": status, "request_id": request_id, "uploaded_at": iso(ctx.clock(), millis=False)})

        await asyncio.gather(*(one(i) for i in range(count)))
        by_status: dict[str, int] = {}
        for status in results:
            by_status[str(status)] = by_status.get(str(status), 0) + 1
        limited = [i for i in order if results[i] == 429]
        return {"count": count, "by_status": by_status, "accepted": by_status.get("202", 0), "rate_limited": by_status.get("429", 0),
                "first_429_index": limited[0] if limited else None, "first_429_order": order.index(limited[0]) if limited else None,
                "duration_ms": round((time.perf_counter() - started) * 1000, 1)}

    @app.get("/api/history", summary="Uploads made through this client app, newest first")
    async def get_history() -> dict[str, Any]:
        gate = asyncio.Semaphore(s["stress_concurrency"])

        async def refresh(job_id: str) -> None:
            async with gate:
                try:
                    status, body = await call("GET", f"/api/v1/jobs/{quote(job_id, safe='')}")
                except ImageApiError:
                    return  # the history still says what was last known
            if status == 200 and isinstance(body.get("status"), str):
                history.job_status(job_id, body["status"])

        await asyncio.gather(*(refresh(job) for job in history.unsettled(REFRESHED_PER_READ)))
        return {"total": len(history), "uploads": history.uploads()}

    return Built(app, history)


SPEC = ServerSpec(name="client", title="Client app", default_port=3000, build=build, settings=SETTINGS)
