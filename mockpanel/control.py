"""The control API every server answers under /__mockpanel/: faults, journal, reset. Exempt from faults."""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from . import export, testgen
from .clock import MockClock, change_from
from .faults import FaultPolicy
from .journal import summarize
from .service import ServerContext
from .spec import NotFound
from .web import json_app, json_body

_POLICY_BODY = {"requestBody": {"required": True, "content": {"application/json": {"schema": FaultPolicy.model_json_schema()}}}}


def create_control_app(ctx: ServerContext) -> FastAPI:
    app = json_app(
        title=f"mockpanel control API ({ctx.name})",
        docs_url="/__mockpanel/docs",
        swagger_ui_oauth2_redirect_url="/__mockpanel/docs/oauth2-redirect",  # FastAPI's default sits outside the guarded prefix
        redoc_url=None,
        openapi_url="/__mockpanel/openapi.json",
        static_url="/__mockpanel/docs/assets",
    )

    @app.get("/__mockpanel/faults", response_model=FaultPolicy, summary="The server's fault policy")
    async def get_faults() -> FaultPolicy:
        return ctx.faults.policy

    def _policy_body(body: Any, base: dict[str, Any]) -> FaultPolicy:
        if not isinstance(body, dict):
            raise RequestValidationError([{"loc": ("body",), "msg": "expected a JSON object of policy fields", "type": "dict_type"}])
        try:
            return FaultPolicy.model_validate(base | body)
        except ValidationError as exc:
            raise RequestValidationError(exc.errors()) from None

    @app.put("/__mockpanel/faults", response_model=FaultPolicy, summary="Replace the fault policy (missing fields take defaults)",
             openapi_extra=_POLICY_BODY)
    async def put_faults(request: Request) -> FaultPolicy:
        return ctx.faults.replace(_policy_body(await json_body(request), {}))

    @app.patch("/__mockpanel/faults", response_model=FaultPolicy, summary="Change some fields of the fault policy",
               openapi_extra=_POLICY_BODY)
    async def patch_faults(request: Request) -> FaultPolicy:
        return ctx.faults.replace(_policy_body(await json_body(request), ctx.faults.policy.model_dump()))

    @app.delete("/__mockpanel/faults", response_model=FaultPolicy, summary="Switch all faults off")
    async def clear_faults() -> FaultPolicy:
        return ctx.faults.clear()

    @app.get("/__mockpanel/requests", summary="This server's journal, oldest first (format: json, jsonl or har)",
             responses={200: {"content": {"application/json": {}, "application/x-ndjson": {"schema": {"type": "string"}},
                                          "text/x-python": {"schema": {"type": "string"}}}}})
    async def requests(
        request: Request,
        format: Literal["json", "jsonl", "har", "pytest"] = Query("json", description="json (default), jsonl (one request a line), har (HAR 1.2) "
                                                                  "or pytest (a test file replaying them against fresh mocks)"),
        method: str | None = None,
        status: int | None = None,
        path: str | None = Query(None, description="substring of the path"),
        since: int | None = Query(None, description="only entries with a larger id"),
        limit: int = Query(100, ge=0, le=100_000, description="at most this many, the newest"),
        redact: bool = Query(False, description="mask Authorization, cookies, API keys, signature and token parameters, token fields"),
    ) -> Any:
        found = ctx.journal.query(method=method, status=status, path=path, since=since, limit=limit)
        if format == "jsonl":
            return PlainTextResponse(export.jsonl(found, redact), media_type="application/x-ndjson")
        if format == "har":
            return JSONResponse(export.har(found, request.url.scheme, redact), headers={"content-disposition": f'inline; filename="{ctx.name}.har"'})
        if format == "pytest":
            return PlainTextResponse(testgen.generate(found, title=f"{ctx.name} traffic", redact=redact), media_type="text/x-python",
                                     headers={"content-disposition": f'inline; filename="test_recorded_{ctx.name}.py"'})
        return {"server": ctx.name, "count": len(found), "requests": [(export.redacted(e) if redact else e).as_dict() for e in found]}

    @app.delete("/__mockpanel/requests", summary="Forget this server's journal entries")
    async def clear_requests() -> dict[str, Any]:
        ctx.journal.clear()
        return {"cleared": True}

    @app.get("/__mockpanel/traces", summary="Recent traces across every server, newest first: root, servers, duration, errors, faults")
    async def traces(limit: int = Query(50, ge=1, le=1000), errors: bool = Query(False, description="only traces with a 5xx, "
                     "an unanswered request or a fault")) -> dict[str, Any]:
        found = ctx.journal.whole.traces(limit, errors_only=errors)
        return {"count": len(found), "traces": found}

    @app.get("/__mockpanel/traces/{key}", summary="One trace's hops in the order they started, with parent links "
             "(key: a trace id, or an X-Request-ID one of its requests carried)",
             responses={200: {"content": {"application/json": {}, "text/x-python": {"schema": {"type": "string"}}}}})
    async def trace(request: Request, key: str, format: Literal["json", "otlp", "har", "pytest"] = Query(
            "json", description="json (hops and spans), otlp (OTLP/JSON TracesData, for Jaeger or Grafana Tempo), har (the hops) "
                                "or pytest (a test file replaying the trace against fresh mocks)"),
            redact: bool = Query(False, description="pytest: write no credential into the file (Authorization and the like as ***)")) -> Any:
        whole = ctx.journal.whole
        trace_id = whole.find_trace(key) or key
        hops, external = whole.trace(trace_id), whole.external.of(trace_id)
        if not hops and not external:
            raise NotFound(f"no journaled request or exported span belongs to trace or request id {key[:64]!r}")
        if format == "otlp":
            return JSONResponse(export.otlp_json(hops, external), headers={"content-disposition": f'inline; filename="trace-{trace_id}.json"'})
        if format == "har":
            return JSONResponse(export.har(hops, request.url.scheme), headers={"content-disposition": f'inline; filename="trace-{trace_id}.har"'})
        if format == "pytest":
            return PlainTextResponse(testgen.generate(hops, trace_id=trace_id, title=f"trace {trace_id[:8]}", redact=redact), media_type="text/x-python",
                                     headers={"content-disposition": f'inline; filename="test_trace_{trace_id[:8]}.py"'})
        return {**summarize(hops, external), "hops": [hop.as_dict() for hop in hops], "spans": [span.as_dict() for span in external]}

    @app.post("/__mockpanel/v1/traces", summary="OTLP/HTTP trace receiver: your service's spans (application/x-protobuf or "
              "application/json) join the mocks' traces", responses={200: {"content": {"application/json": {}, "application/x-protobuf": {}}}})
    async def otlp_traces(request: Request) -> Any:
        from .otlp import MAX_BODY, MAX_SPANS_PER_EXPORT, OtlpError, parse

        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY:
                return JSONResponse({"code": 3, "message": f"an export is at most {MAX_BODY // (1024 * 1024)} MiB"}, status_code=413)
        try:
            # Decoding 4 MiB (130,000 tiny spans) takes most of a second: in a thread, so the servers' loop keeps serving.
            spans, rejected = await asyncio.to_thread(parse, bytes(body), content_type)
        except OtlpError as exc:
            return JSONResponse({"code": 3, "message": str(exc)}, status_code=400)  # 3: INVALID_ARGUMENT
        ctx.journal.whole.external.add(spans)
        ctx.event("spans_received", count=len(spans))
        why = f"at most {MAX_SPANS_PER_EXPORT} spans an export are kept" if rejected else ""
        if content_type == "application/x-protobuf":  # an ExportTraceServiceResponse, with its partial success if any
            from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

            answer = ExportTraceServiceResponse()
            if rejected:
                answer.partial_success.rejected_spans = rejected
                answer.partial_success.error_message = why
            return Response(answer.SerializeToString(), media_type="application/x-protobuf")
        return JSONResponse({"partialSuccess": {"rejectedSpans": str(rejected), "errorMessage": why}} if rejected else {})

    @app.post("/__mockpanel/reset", summary="Put the server's state back to its seed data")
    async def reset() -> dict[str, Any]:
        await ctx.reset()
        return {"server": ctx.name, "reset": True}

    @app.get("/__mockpanel/stats", summary="Request counters and latency percentiles")
    async def stats() -> dict[str, Any]:
        p50, p95 = ctx.stats.latency()
        return {
            "server": ctx.name,
            **ctx.stats.as_dict(),
            "p50_ms": p50,
            "p95_ms": p95,
            "faults": ctx.faults.policy.describe(),
            # what the journal holds in memory: this server's ring, and every ring together against its bound
            "journal": {"entries": len(ctx.journal), "bytes": ctx.journal.bytes, "max_bytes": ctx.journal.max_bytes,
                        "all_bytes": ctx.journal.whole.bytes, "all_max_bytes": ctx.journal.whole.max_bytes},
            "loop": ctx.loop_health(),  # stalls over 250 ms of the event loop every server (and the panel) shares
        }

    for router in ctx.control_routers:
        app.include_router(router)
    return app


def clock_routes(clock: MockClock) -> APIRouter:
    """GET/PUT/DELETE /__mockpanel/clock, the mocks' one clock (clock.py): the Hub adds them to every server's
    control API, so behind its guard."""
    router = APIRouter()

    @router.get("/__mockpanel/clock", summary="The mocks' time: now, the wall clock, the offset, frozen or not")
    async def get_clock() -> dict[str, Any]:
        return clock.state()

    @router.put("/__mockpanel/clock", summary='Move every mock\'s clock: {"advance_s": N}, {"now": epoch seconds or ISO 8601}, '
                '{"frozen": true|false}; answers the new state and what each server did (S3: lifecycle applied)')
    async def put_clock(request: Request) -> dict[str, Any]:
        return clock.change(**change_from(await json_body(request)))

    @router.delete("/__mockpanel/clock", summary="Back to the wall clock")
    async def wall_clock() -> dict[str, Any]:
        return clock.reset()

    return router



MAX_STATE_ARCHIVE = 64 * 1024**3  # a state archive sent to PUT /__mockpanel/state (written to disk as it arrives, never held)
STATE_READ_SECONDS = 60.0  # at most this long waiting for the next piece of an archive: a stalled sender lets go of the lock


def state_routes(hub: Any) -> APIRouter:
    """GET/PUT /__mockpanel/state: every mock's state as one archive (state.py); the Hub adds them to every server's
    control API, so behind its guard. One save or load at a time."""
    from fastapi.responses import StreamingResponse

    from . import state

    router = APIRouter()
    lock = asyncio.Lock()

    @router.get("/__mockpanel/state", summary="Everything the mocks hold, as one tar archive (the snapshot format: see State)",
                responses={200: {"content": {"application/x-tar": {}}}})
    async def get_state() -> Any:
        async with lock:  # captured in one step of the loop, never in the middle of a load
            pieces = await state.stream_archive(hub)
        return StreamingResponse(pieces, media_type="application/x-tar",
                                 headers={"content-disposition": 'attachment; filename="mockpanel-state.tar"'})

    @router.put("/__mockpanel/state", summary="Load a state archive into every mock: all or nothing (Content-Type: application/x-tar)",
                openapi_extra={"requestBody": {"required": True, "content": {"application/x-tar": {"schema": {"type": "string", "format": "binary"}}}}})
    async def put_state(request: Request) -> dict[str, Any]:
        async with lock:
            return await state.load_stream(hub, request.stream(), MAX_STATE_ARCHIVE, STATE_READ_SECONDS)

    return router

