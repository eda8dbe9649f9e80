"""The webhook receiver's wire layer: its routes, the dashboard page and the SSE feed; every operation is Receiver's."""

from __future__ import annotations

import asyncio
import math
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, AsyncIterator

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from ...service import ServerContext, wait_for_disconnect
from ...spec import Built, Invalid
from ...web import json_app
from .models import ResponsePlan
from .receiver import Receiver


def _parse_time(value: str | None, name: str) -> float | None:
    if value is None or value == "":
        return None
    try:
        number = float(value)
        if math.isfinite(number):
            return number
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise Invalid(f"{name} must be an ISO 8601 time or epoch seconds, got {value!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.timestamp()


class ClientPatch(BaseModel):
    """What PATCH /__mockpanel/clients/{client_id} may change; fields left out stay as they are."""

    model_config = ConfigDict(extra="forbid")

    secret: str | None = Field(None, min_length=1, max_length=1024, description="this client's secret")
    require_signature: bool | None = Field(None, description="override of REQUIRE_SIGNATURE for this client")
    plan: ResponsePlan | str | None = Field(None, description="a response plan: 500x3+200, delay=2000, timeout (or as JSON); null for none")


def build(ctx: ServerContext) -> Built:
    receiver = Receiver(ctx)
    ctx.max_body_bytes = ctx.settings["max_body_bytes"]
    ctx.on_reset(receiver.reset)
    dashboard_html = (Path(__file__).parent / "dashboard.html").read_text(encoding="utf-8")

    app = json_app(
        title="Webhook receiver mock",
        description="Receives webhooks for any client id, verifies X-Webhook-Signature, GitHub, Stripe and Standard Webhooks "
        "signatures, and answers by per-client response plans. Dashboard at /.",
        version="1.0.0",
    )

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def dashboard() -> str:
        return dashboard_html

    @app.get("/health", summary="Health check")
    async def health() -> dict[str, Any]:
        return {"status": "healthy", "service": "webhook-receiver-mock", "events": len(receiver)}

    @app.post("/webhooks/{client_id}", summary="Receive a webhook (any body, stored byte-exact)",
              responses={200: {"description": "Stored"}, 401: {"description": "Signature required and missing or invalid"}})
    async def receive(client_id: str, request: Request):
        body = await request.body()
        raw_headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.scope["headers"]]
        client = request.client
        delivery = receiver.receive(client_id, request.method, request.url.query, raw_headers, body,
                                    f"{client.host}:{client.port}" if client else None)
        event, status, plan = delivery.event, delivery.status, delivery.plan
        if plan is not None and plan.timeout:
            event.response_status = None
            receiver.add(event)
            await wait_for_disconnect(request.receive)
            return JSONResponse({"detail": "held until the sender gave up"}, status_code=504)  # never reaches a live sender
        if plan is not None and plan.delay_ms:
            await asyncio.sleep(plan.delay_ms / 1000)
        event.response_status = status
        receiver.add(event)
        answer: dict[str, Any] = {"received": status < 400, "event_id": event.id, "client_id": client_id,
                                  "signature": event.signature.verdict, "attempt": event.attempt}
        if status == 401:
            answer["detail"] = f"signature {event.signature.verdict}: {event.signature.reason}"
        elif status >= 400:
            answer["detail"] = f"response plan: attempt {event.attempt} answers {status}"
        return JSONResponse(answer, status_code=status)

    @app.get("/webhooks/events", summary="Stored events, newest first")
    async def list_events(
        client_id: str | None = None,
        event_type: str | None = None,
        verdict: str | None = Query(None, pattern="^(valid|invalid|unsigned)$"),
        since: str | None = Query(None, max_length=64, description="ISO 8601 or epoch seconds"),
        until: str | None = Query(None, max_length=64, description="ISO 8601 or epoch seconds"),
        q: str | None = Query(None, max_length=1000, description="text to find in the body or headers"),
        limit: int = Query(100, ge=1, le=1000),
        offset: int = Query(0, ge=0),
    ) -> dict[str, Any]:
        found = receiver.search(client_id, event_type, verdict, _parse_time(since, "since"), _parse_time(until, "until"), q)
        page = found[offset : offset + limit]
        return {"total": len(found), "limit": limit, "offset": offset, "events": [e.summary() for e in page]}

    @app.get("/webhooks/events/{event_id}", summary="One event with headers, body and the signature debugger")
    async def get_event(event_id: str) -> dict[str, Any]:
        return receiver.event(event_id).full()

    @app.delete("/webhooks/events", summary="Delete every stored event")
    async def clear_events() -> dict[str, Any]:
        return {"deleted": receiver.clear()}

    @app.post("/webhooks/replay/{event_id}", summary="Re-send an event's raw body to another URL, re-signed with the current secret")
    async def replay(event_id: str, target_url: str = Query(..., max_length=2048)) -> dict[str, Any]:
        return await receiver.replay(event_id, target_url)

    @app.get("/webhooks/stats", summary="Per-client counts, signature verdicts and event types")
    async def stats() -> dict[str, Any]:
        return receiver.stats()

    @app.get("/webhooks/stream", summary="Server-sent events: every event as it arrives (the dashboard's feed)")
    async def stream(request: Request) -> StreamingResponse:
        queue = receiver.subscribe()

        async def feed() -> AsyncIterator[str]:
            try:
                yield "retry: 1000\n\n"
                while True:
                    try:
                        yield await asyncio.wait_for(queue.get(), timeout=15)
                    except asyncio.TimeoutError:
                        yield ": keep-alive\n\n"
            finally:
                receiver.unsubscribe(queue)

        return StreamingResponse(feed(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})

    ctx.control_routers.append(_client_router(receiver))
    return Built(app, receiver)


def _client_router(receiver: Receiver) -> APIRouter:
    router = APIRouter(prefix="/__mockpanel/clients", tags=["webhook clients"])

    @router.get("", summary="Configured webhook clients")
    async def list_clients() -> dict[str, Any]:
        return {"clients": [receiver.client(c) for c in receiver.clients()]}

    @router.get("/{client_id}", summary="One client's secret source, signature policy and response plan")
    async def get_client(client_id: str) -> dict[str, Any]:
        return receiver.client(client_id)

    @router.patch("/{client_id}", summary="Set a client's secret, require_signature or plan (a plan also restarts attempt counts)")
    async def patch_client(client_id: str, body: ClientPatch) -> dict[str, Any]:
        return receiver.configure(client_id, **body.model_dump(include=body.model_fields_set))

    @router.delete("/{client_id}", summary="Forget a client's configuration")
    async def delete_client(client_id: str) -> dict[str, Any]:
        return receiver.forget_client(client_id)

    return router
