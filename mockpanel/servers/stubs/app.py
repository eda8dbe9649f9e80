"""A stub server's routes: every request is answered by a mapping, the OpenAPI document, or (recording) the upstream;
WireMock's admin API under /__admin/ (a control API: the admin token, no cross-site call, JSON bodies)."""

from __future__ import annotations

import asyncio
import json
import math
import os
import random
from pathlib import Path
from typing import Any, Callable, NamedTuple

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from ...guard import cross_site
from ...service import ServerContext, _transport_of, wait_for_disconnect
from ...spec import Built, DomainError
from ...toxics import rst
from ...web import errors_as, json_body
from .mappings import StubMapping, incoming_dict
from .matching import Incoming, RegexBudget, regex_budget
from .server import HOP_BY_HOP, Stubs
from .templating import TemplateTooLarge

MAX_UPSTREAM_BODY = 64 * 1024 * 1024
ADMIN = "/__admin"


class Route(NamedTuple):
    """What answered, as the journal and the Servers pane's endpoint counts name it (a mapping, an operation)."""

    path: str


UNMATCHED = Route("(no mapping matched)")
RECORDED = Route("(recorded)")


def _headers(scope: dict) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for key, value in scope["headers"]:
        found.setdefault(key.decode("latin-1").lower(), []).append(value.decode("latin-1"))
    return found


async def _read_body(receive: Callable) -> bytes:
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    return bytes(body)


async def _send(send: Callable, status: int, headers: list[tuple[str, str]], body: bytes, head: bool = False) -> None:
    raw = [(k.encode("latin-1"), v.encode("latin-1", "replace")) for k, v in headers if k.lower() not in HOP_BY_HOP]
    raw.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": b"" if head else body})


def _json(status: int, data: Any) -> tuple[int, list[tuple[str, str]], bytes]:
    return status, [("content-type", "application/json")], json.dumps(data).encode()


def _delay_s(response: dict[str, Any]) -> float:
    delay = response.get("fixedDelayMilliseconds", 0) / 1000
    distribution = response.get("delayDistribution")
    if distribution:
        kind = distribution["type"]
        if kind == "uniform":
            delay += random.uniform(distribution["lower"], distribution["upper"]) / 1000
        elif kind == "lognormal":
            delay += min(distribution["median"] * math.exp(random.gauss(0, distribution["sigma"])), 600_000) / 1000
        else:
            delay += distribution["milliseconds"] / 1000
    return delay


async def _fault(kind: str, receive: Callable, send: Callable) -> None:
    """WireMock's faults, on the connection itself: a reset, nothing at all, a broken chunk, or garbage."""
    transport = _transport_of(receive)
    if transport is None:  # pragma: no cover - uvicorn always has one
        return
    if kind == "CONNECTION_RESET_BY_PEER":
        rst(transport)
    elif kind == "EMPTY_RESPONSE":
        transport.close()
    elif kind == "MALFORMED_RESPONSE_CHUNK":
        transport.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nlorem ipsum")
        transport.close()
    else:  # RANDOM_DATA_THEN_CLOSE
        transport.write(os.urandom(64))
        transport.close()
    await wait_for_disconnect(receive)


def build_app(ctx: ServerContext, stubs: Stubs) -> Any:
    """The ASGI app of one stub server."""
    import httpx2

    upstream_client: list[Any] = []

    def client() -> Any:
        if not upstream_client:
            # No cookie jar: a Set-Cookie from the upstream goes back to the client that caused it, and is never sent
            # again with another client's request (a jar that accepts no cookie).
            from http.cookiejar import CookieJar, DefaultCookiePolicy

            jar = CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))
            upstream_client.append(httpx2.AsyncClient(timeout=30, follow_redirects=False, trust_env=False, cookies=jar))
        return upstream_client[0]

    async def close_client() -> None:
        if upstream_client:
            await upstream_client.pop().aclose()

    ctx.on_stop(close_client)

    async def body_of(mapping: StubMapping) -> bytes:
        response = mapping.response
        if "jsonBody" in response:
            return json.dumps(response["jsonBody"]).encode()
        if "base64Body" in response:
            import base64

            return base64.b64decode(response["base64Body"])
        if mapping.body_file is not None:
            return await asyncio.to_thread(mapping.body_file.read_bytes)
        return str(response.get("body", "")).encode()

    async def proxy(request: Incoming, prefix_headers: dict[str, Any] | None = None,
                    removed: frozenset[str] = frozenset()) -> tuple[int, list[tuple[str, str]], bytes, bool]:
        """The request sent on to the upstream, and its answer. The URL is the upstream's with this request's path
        and query appended: whatever the path says, the request goes nowhere else."""
        base = httpx2.URL(stubs.upstream)
        raw_path = (base.raw_path.rstrip(b"/") + ("/" + request.url.lstrip("/")).encode("latin-1"))
        url = base.copy_with(raw_path=raw_path)
        if url.host != base.host or url.port != base.port or url.scheme != base.scheme:  # pragma: no cover - belt and braces
            return (*_json(400, {"detail": "refused: the request would leave the configured upstream"}), False)
        headers = [(k, v) for k, vs in request.headers.items() for v in vs if k not in HOP_BY_HOP and k != "accept-encoding"
                   and k not in removed]
        for key, value in (prefix_headers or {}).items():
            headers.append((key.lower(), str(value)))
        try:
            answer = await client().request(request.method, url, headers=headers, content=request.body or None)
        except httpx2.HTTPError as exc:
            return (*_json(502, {"detail": f"the upstream {stubs.upstream} did not answer: {type(exc).__name__}: {str(exc)[:200]}"}), False)
        body = answer.content
        if len(body) > MAX_UPSTREAM_BODY:
            return (*_json(502, {"detail": f"the upstream's answer is larger than {MAX_UPSTREAM_BODY // (1024 * 1024)} MiB"}), False)
        return answer.status_code, [(k, v) for k, v in answer.headers.multi_items() if k.lower() not in HOP_BY_HOP], body, True

    configured = ctx.settings.sources.get("cors_origins", "default") != "default"
    allowed = {o.lower() for o in ctx.settings.get("cors_origins") or ()} if configured else set()
    if not configured:
        # Recording relays to a real service: its CORS is then this app's (which refuses pages of other sites), not
        # the seeds' open CORS, unless the user names origins for this stub.
        ctx.cors_owner = lambda scope: stubs.mode == "record"

    def refused_page(scope: dict) -> str | None:
        """Why a page of another site may not have this request recorded: recording relays to the real service,
        so only the origins named in this stub's cors_origins (any, with "*") may use it from a browser."""
        if "*" in allowed:
            return None
        origin = next((v.decode("latin-1").lower() for k, v in scope["headers"] if k == b"origin"), None)
        if origin is not None and origin in allowed:
            return None
        return cross_site(scope)

    async def app(scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            return
        # One regex budget for the whole request: choosing a mapping and the near-miss report share it.
        token = regex_budget.set(RegexBudget())
        try:
            await answer(scope, receive, send)
        finally:
            regex_budget.reset(token)

    async def answer(scope: dict, receive: Callable, send: Callable) -> None:
        raw_path = scope.get("raw_path") or scope["path"].encode()
        request = Incoming(
            method=scope["method"], path=raw_path.decode("latin-1"), query=scope["query_string"].decode("latin-1"),
            headers=_headers(scope), client=(scope.get("client") or ("",))[0], logged=ctx.clock(),
        )
        request.body = await _read_body(receive)
        head = scope["method"] == "HEAD"
        if stubs.mode == "record":
            scope["route"] = RECORDED
            why = refused_page(scope)
            if why is not None:
                await _send(send, *_json(403, {"detail": f"refused a request from a page of another site ({why}): recording relays it to "
                                                         f"{stubs.upstream} and keeps it as a mapping; name the pages' origins in this stub's "
                                                         "cors_origins to allow them"}), head)
                return
            status, headers, body, reached = await proxy(request)
            if reached:
                try:
                    stubs.record(request, status, headers, body)
                except DomainError as exc:
                    ctx.event("record_failed", reason=exc.message)
            stubs.logged(request, None, status)
            await _send(send, status, headers, body, head)
            return
        mapping = stubs.match(request)
        if mapping is not None:
            scope["route"] = Route(mapping.url_text())
            response = mapping.response
            delay = _delay_s(response)
            if delay:
                await asyncio.sleep(delay)
            stubs.logged(request, mapping, response.get("status", 200))
            if response.get("fault"):
                await _fault(response["fault"], receive, send)
                return
            if response.get("proxyBaseUrl"):
                status, headers, body, _ = await proxy(request, response.get("additionalProxyRequestHeaders"),
                                                       frozenset(h.lower() for h in response.get("removeProxyRequestHeaders") or ()))
                await _send(send, status, headers, body, head)
                return
            if mapping.body_file is not None and not mapping.body_file.is_file():
                status, headers, body = _json(404, {"detail": f"the mapping's bodyFileName {mapping.response['bodyFileName']!r} is gone "
                                                              "from the files directory (reload the stubs)"})
                await _send(send, status, headers, body, head)
                return
            if mapping.answer is not None:  # the same every time: made once
                await _send(send, response.get("status", 200), *mapping.answer, head)
                return
            headers = []
            rendered_body = None
            if mapping.render is not None:  # response-template: the request's values put in
                host = (request.headers.get("host") or ["localhost"])[0]
                try:
                    rendered_headers, rendered_body = mapping.render(request, f"{scope.get('scheme', 'http')}://{host}",
                                                                      mapping.pattern.path_values(request))
                except TemplateTooLarge as exc:  # this request's values made it so: the client's to change
                    await _send(send, *_json(422, {"detail": f"{exc} (mapping {mapping.label()})"}), head)
                    return
                for name, values in rendered_headers.items():
                    headers.extend((name, v) for v in values)
            else:
                for name, value in (response.get("headers") or {}).items():
                    for item in value if isinstance(value, list) else [value]:
                        headers.append((name, str(item)))
            if "jsonBody" in response and not any(k.lower() == "content-type" for k, _ in headers):
                headers.append(("content-type", "application/json"))
            body = rendered_body.encode() if rendered_body is not None else await body_of(mapping)
            if mapping.render is None and mapping.body_file is None:
                mapping.answer = (headers, body)  # a body file may change on disk: read each time
            await _send(send, response.get("status", 200), headers, body, head)
            return
        if stubs.openapi is not None:
            openapi = stubs.openapi
            answer = openapi.answer(request)  # compiled validators: a 1 MiB body is checked in milliseconds
            if answer is not None:
                scope["route"] = Route(answer.route or request.path)
                if answer.route is not None:
                    stubs.operation_answered(request.method, answer.route, answer.refused)
                stubs.logged(request, None, answer.status)
                await _send(send, answer.status, answer.headers, answer.body, head)
                return
        misses = stubs.near_misses(request)
        scope["route"] = UNMATCHED
        stubs.logged(request, None, 404, misses)
        status, headers, body = _json(404, {
            "detail": f"no stub mapping matches {request.method} {request.url[:200]}"
                      + (f"; the closest: {misses[0][0].label()}" if misses else "") + (f" ({request.cut_short})" if request.cut_short else ""),
            "nearMisses": [{"mapping": m.label(), "id": m.id, "distance": round(d, 2), "differences": diffs} for m, d, diffs in misses],
        })
        await _send(send, status, headers, body, head)

    return app


def _wiremock_error(exc: DomainError) -> JSONResponse:
    """WireMock's error shape ({"errors": [{"code", "title"}]}), with mockpanel's "detail" beside it."""
    return JSONResponse({"errors": [{"code": 10, "title": exc.message}], "detail": exc.message}, status_code=exc.status)


def admin_router(stubs: Stubs) -> APIRouter:
    """WireMock's admin API, as its clients call it (the Python `wiremock` package among them). Each route parses and
    renders; the facade (Stubs) does the work, and a DomainError it raises is answered in WireMock's shape."""
    router = APIRouter(tags=["WireMock admin API"])
    errors = errors_as(_wiremock_error)

    def listed(mappings: list[StubMapping], total: int | None = None) -> dict[str, Any]:
        return {"mappings": [m.raw for m in mappings], "meta": {"total": len(mappings) if total is None else total}}

    def served(entry: Any, host: str) -> dict[str, Any]:
        return {"id": str(entry.id), "request": incoming_dict(entry.request, host),
                "responseDefinition": {"status": entry.status, "fromConfiguredStub": entry.mapping is not None},
                "wasMatched": entry.mapping is not None, **({"stubMapping": entry.mapping.raw} if entry.mapping else {})}

    def host_of(request: Request) -> str:
        return request.headers.get("host", "")

    @router.get(ADMIN + "/mappings", summary="The stub mappings, highest priority first (limit and offset page them)")
    async def list_mappings(limit: int | None = None, offset: int = 0) -> dict[str, Any]:
        chosen = stubs.mappings[max(offset, 0):][: limit if limit is not None and limit >= 0 else None]
        return listed(chosen, len(stubs.mappings))

    @router.post(ADMIN + "/mappings/import", summary="Add mappings in bulk: {\"mappings\": [...]} (all or none)")
    @errors
    async def import_mappings(request: Request) -> Any:
        body = await json_body(request)
        await stubs.import_mappings(body.get("mappings") if isinstance(body, dict) else None)
        return {}

    @router.post(ADMIN + "/mappings/find-by-metadata", summary="The mappings whose metadata match")
    @errors
    async def find_by_metadata(request: Request) -> Any:
        return listed(stubs.by_metadata(await json_body(request)))

    @router.post(ADMIN + "/mappings/remove-by-metadata", summary="Delete the mappings whose metadata match")
    @errors
    async def remove_by_metadata(request: Request) -> Any:
        for mapping in stubs.by_metadata(await json_body(request)):
            stubs.remove(mapping.id)
        return {}

    @router.post(ADMIN + "/mappings", status_code=201, summary="Add a stub mapping")
    @errors
    async def create_mapping(request: Request) -> Any:
        return JSONResponse(stubs.add(await json_body(request)).raw, status_code=201)

    @router.delete(ADMIN + "/mappings", summary="Delete every stub mapping")
    async def delete_mappings() -> dict[str, Any]:
        stubs.remove_all()
        return {}

    @router.post(ADMIN + "/mappings/reset", summary="The mappings as in the mappings directory again")
    @errors
    async def reset_mappings() -> Any:
        await stubs.try_reload()
        return {}

    @router.post(ADMIN + "/mappings/save", summary="Write the mappings made since start-up into the mappings directory")
    @errors
    async def save_mappings() -> Any:
        return {"saved": stubs.save()}

    @router.get(ADMIN + "/mappings/{mapping_id}", summary="One stub mapping")
    @errors
    async def get_mapping(mapping_id: str) -> Any:
        return stubs.get(mapping_id).raw

    @router.put(ADMIN + "/mappings/{mapping_id}", summary="Replace one stub mapping")
    @errors
    async def put_mapping(mapping_id: str, request: Request) -> Any:
        return stubs.replace(mapping_id, await json_body(request)).raw

    @router.delete(ADMIN + "/mappings/{mapping_id}", summary="Delete one stub mapping")
    @errors
    async def delete_mapping(mapping_id: str) -> Any:
        stubs.remove(mapping_id)
        return {}

    @router.get(ADMIN + "/requests", summary="The requests received, newest first")
    async def list_requests(request: Request, limit: int | None = None) -> dict[str, Any]:
        entries = list(reversed(stubs.log))[: limit if limit and limit > 0 else None]
        return {"requests": [served(e, host_of(request)) for e in entries], "meta": {"total": len(stubs.log)},
                "requestJournalDisabled": False}

    @router.delete(ADMIN + "/requests", summary="Forget the requests received")
    @router.post(ADMIN + "/requests/reset", summary="Forget the requests received")
    async def reset_requests() -> dict[str, Any]:
        stubs.clear_log()
        return {}

    @router.post(ADMIN + "/requests/count", summary="How many received requests match a request pattern")
    @errors
    async def count_requests(request: Request) -> Any:
        return {"count": len(stubs.count(await json_body(request)))}

    @router.post(ADMIN + "/requests/find", summary="The received requests that match a request pattern")
    @errors
    async def find_requests(request: Request) -> Any:
        return {"requests": [incoming_dict(e.request, host_of(request)) for e in stubs.count(await json_body(request))]}

    def near_miss_list(pairs: Any, host: str) -> dict[str, Any]:
        return {"nearMisses": [{"request": incoming_dict(r, host), "stubMapping": m.raw,
                                "matchResult": {"distance": round(d, 3)}, "differences": diffs,
                                **({"cutShort": r.cut_short} if r.cut_short else {})}
                               for r, misses in pairs for m, d, diffs in misses]}

    @router.get(ADMIN + "/requests/unmatched", summary="The received requests no mapping matched, the newest first")
    async def unmatched(request: Request) -> dict[str, Any]:
        return {"requests": [incoming_dict(r, host_of(request)) for r, _ in reversed(stubs.unmatched)]}

    @router.get(ADMIN + "/requests/unmatched/near-misses", summary="The closest mappings to each unmatched request, the newest first")
    async def near_misses(request: Request) -> dict[str, Any]:
        return near_miss_list(reversed(stubs.unmatched), host_of(request))

    @router.post(ADMIN + "/near-misses/request", summary="The closest mappings to a request given as WireMock logs one")
    @errors
    async def near_misses_of(request: Request) -> Any:
        given = stubs.request_from_json(await json_body(request))
        token = regex_budget.set(RegexBudget())  # the client chose the request: its report has a request's budget
        try:
            misses = stubs.near_misses(given)
        finally:
            regex_budget.reset(token)
        return near_miss_list([(given, misses)], host_of(request))

    @router.get(ADMIN + "/requests/{request_id}", summary="One received request")
    @errors
    async def get_request(request_id: str, request: Request) -> Any:
        return served(stubs.logged_request(request_id), host_of(request))

    @router.get(ADMIN + "/health", summary="Whether the stub server answers, and what it holds")
    async def health() -> dict[str, Any]:
        return {"status": "healthy", "message": "mockpanel stub server", "mappings": len(stubs.mappings), "mode": stubs.mode}

    @router.get(ADMIN + "/scenarios", summary="Every scenario with its state")
    async def scenarios() -> dict[str, Any]:
        return {"scenarios": stubs.scenarios.describe(stubs.mappings)}

    @router.post(ADMIN + "/scenarios/reset", summary="Every scenario back to Started")
    async def reset_scenarios() -> dict[str, Any]:
        stubs.scenarios.reset()
        return {}

    @router.put(ADMIN + "/scenarios/{name}/state", summary="Set one scenario's state")
    @errors
    async def set_scenario(name: str, request: Request) -> Any:
        body = await json_body(request)
        stubs.set_scenario(name, body.get("state") if isinstance(body, dict) else None)
        return {}

    @router.post(ADMIN + "/reset", summary="Mappings as on disk, scenarios started, the request log empty")
    @errors
    async def reset_all() -> Any:
        await stubs.reset()
        return {}

    @router.post(ADMIN + "/recordings/start", summary="Record: proxy every request to the upstream and keep each exchange as a mapping")
    @errors
    async def start_recording(request: Request) -> Any:
        body = await json_body(request) if await request.body() else {}  # WireMock's clients may send no body
        stubs.start_recording(body.get("targetBaseUrl") if isinstance(body, dict) else None)
        return {}

    @router.post(ADMIN + "/recordings/stop", summary="Replay: answer from the mappings (those recorded among them)")
    async def stop_recording() -> dict[str, Any]:
        stubs.set_mode("replay")
        return {"mappings": [m.raw for m in stubs.mappings if m.source not in ("admin API", "panel")]}

    @router.get(ADMIN + "/recordings/status", summary="Recording or not")
    async def recording_status() -> dict[str, Any]:
        return {"status": "Recording" if stubs.mode == "record" else "Stopped"}

    return router


def build(ctx: ServerContext, base_dir: Path) -> Built:
    """A stub server from its settings: mappings (a directory), files (default: __files beside mappings), openapi (a
    document), record (an upstream URL), mode, seed. Paths are relative to the configuration file's directory."""
    values = ctx.settings.values

    def place(key: str) -> Path | None:
        raw = values.get(key)
        return (base_dir / raw) if raw else None

    mappings_dir = place("mappings")
    if mappings_dir is not None and (mappings_dir / "mappings").is_dir():
        mappings_dir = mappings_dir / "mappings"  # a WireMock root (its --root-dir): mappings/ and __files/ in it
    files_dir = place("files") or (mappings_dir.parent / "__files" if mappings_dir is not None else None)
    upstream = values.get("record")
    mode = values.get("mode") or ("record" if upstream else "replay")
    stubs = Stubs(ctx.name, mappings_dir=mappings_dir, files_dir=files_dir, openapi_path=place("openapi"), upstream=upstream,
                  mode=mode, seed=values.get("seed") or 0, event=ctx.event, clock=ctx.clock)
    ctx.notices.extend(f"warning: {ctx.name}: mapping left out, the others served: {reason}" for reason in stubs.refused)
    ctx.on_reset(lambda: stubs.clear_log())
    ctx.control_routers.append(admin_router(stubs))
    return Built(build_app(ctx, stubs), stubs)
