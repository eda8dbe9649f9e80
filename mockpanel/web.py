"""The JSON servers' common error shape: FastAPI's `{"detail": ...}`, produced in one place."""

from __future__ import annotations

import functools
from typing import Any, Callable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from .spec import DomainError, Unauthorized


def validation_details(errors: Any) -> list[dict[str, Any]]:
    # FastAPI's own 422 shape, minus `input` and `ctx`: they can echo megabytes of the request back.
    return [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")} for e in errors]


async def json_body(request: Request) -> Any:
    """The body parsed as JSON whatever its Content-Type (curl -d sends a form type); 422 when it is not JSON."""
    import json

    from .guard import PARSED_JSON

    if PARSED_JSON in request.scope:  # the door's guard parsed (and bounded) it already
        return request.scope[PARSED_JSON]
    raw = await request.body()
    try:
        return json.loads(raw or b"null")
    except (ValueError, UnicodeDecodeError) as exc:
        raise RequestValidationError([{"loc": ("body",), "msg": f"body is not valid JSON: {exc}", "type": "json_invalid"}]) from None


DOCS_ASSETS = "/docs/assets"  # Swagger UI's and ReDoc's files, served by the server itself


def json_app(*, static_url: str = DOCS_ASSETS, **kwargs: Any) -> FastAPI:
    """A JSON server's FastAPI app: the error shape below, and /docs and /redoc that work offline. FastAPI's own pages
    load Swagger UI and ReDoc from a CDN (blank without internet); fastapi-offline ships those files and serves them
    from `static_url`."""
    from fastapi_offline import FastAPIOffline

    app = FastAPIOffline(static_url=static_url, **kwargs)
    install_json_errors(app)
    return app


def install_json_errors(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": validation_details(exc.errors())}, status_code=422)

    @app.exception_handler(DomainError)
    async def _domain(request: Request, exc: DomainError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, Unauthorized) else None
        return JSONResponse({"detail": exc.message}, status_code=exc.status, headers=headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=getattr(exc, "headers", None))

    generate = app.openapi

    def openapi() -> dict[str, Any]:
        # A 422 says what is wrong either as FastAPI's list of field errors or, for a check that spans fields
        # (a plan, a time range), as one sentence: the schema says so, as clients will see it.
        if app.openapi_schema is None:
            schema = generate()
            error = schema.get("components", {}).get("schemas", {}).get("HTTPValidationError")
            if error is not None:
                listed = error["properties"]["detail"]
                error["properties"]["detail"] = {"title": "Detail", "anyOf": [{k: v for k, v in listed.items() if k != "title"}, {"type": "string"}]}
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def errors_as(render: Callable[[DomainError], Any]) -> Callable[[Any], Any]:
    """A decorator for the routes of an API with an error shape of its own (Toxiproxy's, WireMock's): a DomainError
    the route raises is answered by `render` (the control API's own handler would say {"detail": ...}). One wrapper,
    not a try in every route."""

    def wrap(endpoint: Any) -> Any:
        @functools.wraps(endpoint)
        async def route(*args: Any, **kwargs: Any) -> Any:
            try:
                return await endpoint(*args, **kwargs)
            except DomainError as exc:
                return render(exc)

        return route

    return wrap
