"""The webhook receiver mock (seed 002, port 4000): stores every delivery byte-exact, checks its signature in the
common schemes, answers by a per-client response plan (to exercise a sender's retries), replays, and shows it all
on a live dashboard."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import time
import uuid
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, AsyncIterator
from urllib.parse import urlsplit

import httpx
from fastapi import APIRouter, FastAPI, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field, ValidationError

from ...hub import ServerSpec
from ...service import ServerContext, wait_for_disconnect
from ...settings import Setting, SettingsError
from ...web import install_json_errors, json_body
from .signatures import SignatureCheck, secret_hint, sign, verify

DEFAULT_SECRET = "webhook-secret-123"
CONTENT_HEADERS = ("content-type", "content-encoding", "content-language")

SETTINGS = (
    Setting("webhook_secret", "str", DEFAULT_SECRET, "secret of every client without its own", ("WEBHOOK_SECRET",), secret_default=True),
    Setting("client_secrets", "list", (), "per-client secrets: client-id:secret,...", ("WEBHOOK_CLIENT_SECRETS",)),
    Setting("require_signature", "bool", False, "answer 401 to missing or invalid signatures (else store and answer 200)", ("REQUIRE_SIGNATURE",)),
    Setting("plans", "list", (), "response plans: client-id:500x3+200, client-id:delay=2000, client-id:timeout", ("WEBHOOK_PLANS",)),
    Setting("max_events", "positive", 10_000, "events kept (the oldest are dropped and counted)", ("WEBHOOK_MAX_EVENTS",)),
    Setting("max_body_bytes", "positive", 10 * 1024 * 1024, "largest body accepted (413 above)", ("WEBHOOK_MAX_BODY_BYTES",)),
    Setting("timestamp_tolerance_s", "positive", 300, "Stripe / Standard Webhooks timestamp tolerance", ("WEBHOOK_TOLERANCE_SECONDS",)),
    Setting("replay_timeout_s", "positive", 10, "how long a replay waits for its target", ("WEBHOOK_REPLAY_TIMEOUT",)),
)


class ResponsePlan(BaseModel):
    """How the receiver answers one client: `statuses` for the first attempts of each delivery, then `then`."""

    statuses: list[int] = Field(default_factory=list, description="status for attempt 1, 2, ... of a delivery")
    then: int = Field(200, ge=200, le=599, description="status once the list is used up")
    delay_ms: int = Field(0, ge=0, le=600_000, description="wait this long before answering")
    timeout: bool = Field(False, description="never answer: hold the request until the sender gives up")

    def status_for(self, attempt: int) -> int:
        return self.statuses[attempt - 1] if attempt <= len(self.statuses) else self.then

    @classmethod
    def parse(cls, spec: str) -> "ResponsePlan":
        """'500x3+200', 'delay=2000', 'timeout', '503+429+200'."""
        statuses: list[int] = []
        then, delay, timeout = 200, 0, False
        tokens = [t for t in spec.replace(" ", "").split("+") if t]
        for i, token in enumerate(tokens):
            if token == "timeout":
                timeout = True
            elif token.startswith("delay="):
                delay = int(token[6:])
            elif "x" in token:
                code, count = token.split("x", 1)
                statuses += [int(code)] * int(count)
            elif i == len(tokens) - 1:
                then = int(token)
            else:
                statuses.append(int(token))
        return cls(statuses=statuses, then=then, delay_ms=delay, timeout=timeout)


class ClientConfig(BaseModel):
    secret: str | None = Field(None, description="this client's secret (else the global WEBHOOK_SECRET)")
    require_signature: bool | None = Field(None, description="override of REQUIRE_SIGNATURE for this client")
    plan: ResponsePlan | None = None


@dataclass
class WebhookEvent:
    id: str
    client_id: str
    received_at: float
    method: str
    query: str
    headers: list[tuple[str, str]]
    body: bytes
    source: str | None
    event_type: str | None
    signature: SignatureCheck
    delivery_key: str
    attempt: int
    gap_s: float | None
    response_status: int | None = None  # None: held until the sender gave up
    replays: list[dict[str, Any]] = field(default_factory=list)

    @property
    def content_type(self) -> str | None:
        return next((v for k, v in self.headers if k == "content-type"), None)

    def body_text(self) -> str | None:
        try:
            return self.body.decode("utf-8")
        except UnicodeDecodeError:
            return None

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "client_id": self.client_id,
            "received_at": _iso(self.received_at),
            "event_type": self.event_type,
            "size": len(self.body),
            "content_type": self.content_type,
            "source": self.source,
            "signature": {"scheme": self.signature.scheme, "verdict": self.signature.verdict, "reason": self.signature.reason},
            "delivery": {"key": self.delivery_key, "attempt": self.attempt, "gap_s": self.gap_s},
            "response_status": self.response_status,
        }

    def full(self) -> dict[str, Any]:
        text = self.body_text()
        parsed = None
        if text is not None:
            try:
                parsed = json.loads(text)
            except ValueError:
                parsed = None
        return {
            **self.summary(),
            "method": self.method,
            "query": self.query,
            "headers": [[k, v] for k, v in self.headers],
            "body": text if text is not None else base64.b64encode(self.body).decode(),
            "body_encoding": "utf-8" if text is not None else "base64",
            "json": parsed,
            "signature": self.signature.as_dict(),
            "replays": self.replays,
        }


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _parse_time(value: str | None, name: str) -> float | None:
    if value is None or value == "":
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise HTTPException(422, f"{name} must be an ISO 8601 time or epoch seconds, got {value!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.timestamp()


def _event_type(body: bytes, headers: dict[str, str]) -> str | None:
    if "x-github-event" in headers:
        return headers["x-github-event"]
    stripped = body.lstrip()
    if stripped[:1] == b"{":
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return None
        for name in ("event_type", "type", "event"):
            value = data.get(name) if isinstance(data, dict) else None
            if isinstance(value, str):
                return value
    return None


class WebhookStore:
    """Events (bounded), per-client stats, delivery groups and client configuration."""

    def __init__(self, ctx: ServerContext) -> None:
        s = ctx.settings
        self.ctx = ctx
        self.secret: str = s["webhook_secret"]
        self.require_signature: bool = s["require_signature"]
        self.tolerance: int = s["timestamp_tolerance_s"]
        self.replay_timeout: int = s["replay_timeout_s"]
        self.events: deque[WebhookEvent] = deque(maxlen=s["max_events"])
        self.by_id: dict[str, WebhookEvent] = {}
        self.dropped = 0
        self.stats: dict[str, dict[str, Any]] = {}
        self.deliveries: OrderedDict[str, tuple[int, float]] = OrderedDict()
        self.clients: dict[str, ClientConfig] = {}
        self.listeners: set[asyncio.Queue] = set()
        self._configured = self._config_from_settings(s)
        self.reset()

    @staticmethod
    def _config_from_settings(s) -> dict[str, ClientConfig]:
        clients: dict[str, ClientConfig] = {}
        for item in s["client_secrets"]:
            client, sep, secret = item.partition(":")
            if not sep or not client or not secret:
                raise SettingsError(f"invalid setting webhooks.client_secrets item {item!r}: expected client-id:secret")
            clients.setdefault(client, ClientConfig()).secret = secret
        for item in s["plans"]:
            client, sep, spec = item.partition(":")
            try:
                plan = ResponsePlan.parse(spec)
            except (ValueError, TypeError):
                plan = None
            if not sep or not client or plan is None:
                raise SettingsError(f"invalid setting webhooks.plans item {item!r}: expected client-id:500x3+200, client-id:delay=2000 or client-id:timeout")
            clients.setdefault(client, ClientConfig()).plan = plan
        return clients

    def reset(self) -> None:
        self.clear()
        self.clients = {k: v.model_copy(deep=True) for k, v in self._configured.items()}

    def clear(self) -> int:
        count = len(self.events)
        self.events.clear()
        self.by_id.clear()
        self.stats.clear()
        self.deliveries.clear()
        self.dropped = 0
        return count

    def secret_for(self, client_id: str) -> tuple[str, str]:
        config = self.clients.get(client_id)
        if config is not None and config.secret:
            return config.secret, f"client secret of {client_id}"
        return self.secret, "WEBHOOK_SECRET"

    def configure(self, client_id: str, config: ClientConfig, plan_changed: bool) -> None:
        """Set a client's configuration; a new plan starts every delivery's attempt count again."""
        self.clients[client_id] = config
        if plan_changed:
            for key in [k for k in self.deliveries if k.startswith(client_id + "/")]:
                del self.deliveries[key]

    def plan_for(self, client_id: str) -> ResponsePlan | None:
        config = self.clients.get(client_id)
        return config.plan if config is not None else None

    def requires_signature(self, client_id: str) -> bool:
        config = self.clients.get(client_id)
        if config is not None and config.require_signature is not None:
            return config.require_signature
        return self.require_signature

    def delivery(self, key: str, now: float) -> tuple[int, float | None]:
        """Attempt number of this delivery and the gap since its previous attempt."""
        previous = self.deliveries.pop(key, None)
        attempt, gap = (previous[0] + 1, round(now - previous[1], 3)) if previous else (1, None)
        self.deliveries[key] = (attempt, now)
        while len(self.deliveries) > 10_000:
            self.deliveries.popitem(last=False)
        return attempt, gap

    def add(self, event: WebhookEvent) -> None:
        if len(self.events) == self.events.maxlen:
            oldest = self.events[0]
            self.by_id.pop(oldest.id, None)
            self.dropped += 1
        self.events.append(event)
        self.by_id[event.id] = event
        stats = self.stats.setdefault(event.client_id, {"count": 0, "last_seen": None, "valid": 0, "invalid": 0, "unsigned": 0, "event_types": {}})
        stats["count"] += 1
        stats["last_seen"] = _iso(event.received_at)
        stats[event.signature.verdict] += 1
        kind = event.event_type or "(none)"
        stats["event_types"][kind] = stats["event_types"].get(kind, 0) + 1
        self.ctx.event("webhook_received", id=event.id, client_id=event.client_id, event_type=event.event_type,
                       verdict=event.signature.verdict, scheme=event.signature.scheme)
        self.announce("event", event.summary())

    def announce(self, kind: str, data: dict[str, Any]) -> None:
        message = f"event: {kind}\ndata: {json.dumps(data)}\n\n"
        for queue in list(self.listeners):
            if queue.qsize() < 1000:  # a stalled dashboard must not grow without bound
                queue.put_nowait(message)

    def search(self, client_id=None, event_type=None, verdict=None, since=None, until=None, q=None) -> list[WebhookEvent]:
        needle = q.lower() if q else None
        found = []
        for event in reversed(self.events):
            if client_id is not None and event.client_id != client_id:
                continue
            if event_type is not None and event.event_type != event_type:
                continue
            if verdict is not None and event.signature.verdict != verdict:
                continue
            if since is not None and event.received_at < since:
                continue
            if until is not None and event.received_at > until:
                continue
            if needle is not None:
                haystack = event.body.decode("utf-8", "replace").lower()
                if needle not in haystack and not any(needle in k or needle in v.lower() for k, v in event.headers):
                    continue
            found.append(event)
        return found


def build(ctx: ServerContext) -> FastAPI:
    store = WebhookStore(ctx)
    ctx.state = store
    ctx.max_body_bytes = ctx.settings["max_body_bytes"]
    ctx.on_reset(store.reset)
    dashboard_html = (Path(__file__).parent / "dashboard.html").read_text(encoding="utf-8")

    app = FastAPI(
        title="Webhook receiver mock",
        description="Receives webhooks for any client id, verifies X-Webhook-Signature, GitHub, Stripe and Standard Webhooks "
        "signatures, and answers by per-client response plans. Dashboard at /.",
        version="1.0.0",
    )
    install_json_errors(app)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def dashboard() -> str:
        return dashboard_html

    @app.get("/health", summary="Health check")
    async def health() -> dict[str, Any]:
        return {"status": "healthy", "service": "webhook-receiver-mock", "events": len(store.events)}

    @app.post("/webhooks/{client_id}", summary="Receive a webhook (any body, stored byte-exact)",
              responses={200: {"description": "Stored"}, 401: {"description": "Signature required and missing or invalid"}})
    async def receive(client_id: str, request: Request):
        body = await request.body()
        now = time.time()
        raw_headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.scope["headers"]]
        headers = {k: v for k, v in raw_headers}
        secret, source = store.secret_for(client_id)
        check = verify(headers, body, secret, source, store.tolerance, now)
        key = headers.get("webhook-id") or headers.get("svix-id") or headers.get("x-github-delivery") or "sha256:" + hashlib.sha256(body).hexdigest()
        attempt, gap = store.delivery(f"{client_id}/{key}", now)
        client = request.client
        event = WebhookEvent(
            id=str(uuid.uuid4()), client_id=client_id, received_at=now, method=request.method, query=request.url.query,
            headers=raw_headers, body=body, source=f"{client.host}:{client.port}" if client else None,
            event_type=_event_type(body, headers), signature=check, delivery_key=key, attempt=attempt, gap_s=gap,
        )
        plan = store.plan_for(client_id)
        if store.requires_signature(client_id) and check.verdict != "valid":
            status = 401
        else:
            status = plan.status_for(attempt) if plan else 200
        if plan is not None and plan.timeout:
            event.response_status = None
            store.add(event)
            await wait_for_disconnect(request.receive)
            return JSONResponse({"detail": "held until the sender gave up"}, status_code=504)  # never reaches a live sender
        if plan is not None and plan.delay_ms:
            await asyncio.sleep(plan.delay_ms / 1000)
        event.response_status = status
        store.add(event)
        answer: dict[str, Any] = {"received": status < 400, "event_id": event.id, "client_id": client_id,
                                  "signature": check.verdict, "attempt": attempt}
        if status == 401:
            answer["detail"] = f"signature {check.verdict}: {check.reason}"
        elif status >= 400:
            answer["detail"] = f"response plan: attempt {attempt} answers {status}"
        return JSONResponse(answer, status_code=status)

    @app.get("/webhooks/events", summary="Stored events, newest first")
    async def list_events(
        client_id: str | None = None,
        event_type: str | None = None,
        verdict: str | None = Query(None, pattern="^(valid|invalid|unsigned)$"),
        since: str | None = Query(None, description="ISO 8601 or epoch seconds"),
        until: str | None = Query(None, description="ISO 8601 or epoch seconds"),
        q: str | None = Query(None, max_length=1000, description="text to find in the body or headers"),
        limit: int = Query(100, ge=1, le=1000),
        offset: int = Query(0, ge=0),
    ) -> dict[str, Any]:
        found = store.search(client_id, event_type, verdict, _parse_time(since, "since"), _parse_time(until, "until"), q)
        page = found[offset : offset + limit]
        return {"total": len(found), "limit": limit, "offset": offset, "events": [e.summary() for e in page]}

    @app.get("/webhooks/events/{event_id}", summary="One event with headers, body and the signature debugger")
    async def get_event(event_id: str) -> dict[str, Any]:
        event = store.by_id.get(event_id)
        if event is None:
            raise HTTPException(404, f"event {event_id} not found")
        return event.full()

    @app.delete("/webhooks/events", summary="Delete every stored event")
    async def clear_events() -> dict[str, Any]:
        count = store.clear()
        store.announce("cleared", {"deleted": count})
        ctx.event("webhooks_cleared", deleted=count)
        return {"deleted": count}

    @app.post("/webhooks/replay/{event_id}", summary="Re-send an event's raw body to another URL, re-signed with the current secret")
    async def replay(event_id: str, target_url: str = Query(..., max_length=2048)) -> dict[str, Any]:
        event = store.by_id.get(event_id)
        if event is None:
            raise HTTPException(404, f"event {event_id} not found")
        parts = urlsplit(target_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise HTTPException(422, f"target_url must be an http or https URL, got {target_url!r}")
        return await replay_event(store, event, target_url)

    @app.get("/webhooks/stats", summary="Per-client counts, signature verdicts and event types")
    async def stats() -> dict[str, Any]:
        return {"total": sum(s["count"] for s in store.stats.values()), "stored": len(store.events), "dropped": store.dropped,
                "clients": store.stats}

    @app.get("/webhooks/stream", summary="Server-sent events: every event as it arrives (the dashboard's feed)")
    async def stream(request: Request) -> StreamingResponse:
        queue: asyncio.Queue = asyncio.Queue()
        store.listeners.add(queue)

        async def feed() -> AsyncIterator[str]:
            try:
                yield "retry: 1000\n\n"
                while True:
                    try:
                        yield await asyncio.wait_for(queue.get(), timeout=15)
                    except asyncio.TimeoutError:
                        yield ": keep-alive\n\n"
            finally:
                store.listeners.discard(queue)

        return StreamingResponse(feed(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})

    ctx.control_routers.append(_client_router(store))
    return app


async def replay_event(store: WebhookStore, event: WebhookEvent, target_url: str) -> dict[str, Any]:
    """Send the raw body with its content headers, signed as the original was, with the client's current secret."""
    secret, _ = store.secret_for(event.client_id)
    original = {k: v for k, v in event.headers}
    headers = {k: v for k, v in event.headers if k in CONTENT_HEADERS}
    headers.update(sign(event.signature.scheme, event.body, secret, original))
    headers["x-mockpanel-replay-of"] = event.id
    started = time.perf_counter()
    outcome: dict[str, Any] = {"event_id": event.id, "target_url": target_url, "at": _iso(time.time())}
    try:
        async with httpx.AsyncClient(timeout=store.replay_timeout, follow_redirects=False) as client:
            response = await client.post(target_url, content=event.body, headers=headers)
        outcome.update(delivered=response.status_code < 400, status=response.status_code, error=None)
    except httpx.HTTPError as exc:
        outcome.update(delivered=False, status=None, error=f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
    outcome["duration_ms"] = round((time.perf_counter() - started) * 1000, 1)
    event.replays.append(outcome)
    store.ctx.event("webhook_replayed", **outcome)
    return outcome


def _client_router(store: WebhookStore) -> APIRouter:
    router = APIRouter(prefix="/__mockpanel/clients", tags=["webhook clients"])

    def view(client_id: str) -> dict[str, Any]:
        config = store.clients.get(client_id, ClientConfig())
        secret, source = store.secret_for(client_id)
        return {"client_id": client_id, "secret_source": source, "secret_hint": secret_hint(secret),
                "require_signature": store.requires_signature(client_id), "plan": config.plan.model_dump() if config.plan else None}

    @router.get("", summary="Configured webhook clients")
    async def list_clients() -> dict[str, Any]:
        return {"clients": [view(c) for c in sorted(store.clients)]}

    @router.get("/{client_id}", summary="One client's secret source, signature policy and response plan")
    async def get_client(client_id: str) -> dict[str, Any]:
        return view(client_id)

    @router.patch("/{client_id}", summary="Set a client's secret, require_signature or plan (a plan also restarts attempt counts)")
    async def patch_client(client_id: str, request: Request) -> dict[str, Any]:
        body = await json_body(request)
        if not isinstance(body, dict):
            raise HTTPException(422, "expected a JSON object with secret, require_signature and/or plan")
        current = store.clients.get(client_id, ClientConfig()).model_dump()
        if isinstance(body.get("plan"), str):
            try:
                body["plan"] = ResponsePlan.parse(body["plan"]).model_dump()
            except (ValueError, TypeError):
                raise HTTPException(422, f"plan {body['plan']!r} is not of the form 500x3+200, delay=2000 or timeout") from None
        try:
            config = ClientConfig.model_validate(current | body)
        except ValidationError as exc:
            raise RequestValidationError(exc.errors()) from None
        store.configure(client_id, config, "plan" in body)
        return view(client_id)

    @router.delete("/{client_id}", summary="Forget a client's configuration")
    async def delete_client(client_id: str) -> dict[str, Any]:
        store.clients.pop(client_id, None)
        return view(client_id)

    return router


SPEC = ServerSpec(name="webhooks", title="Webhook receiver", default_port=4000, build=build, settings=SETTINGS)
