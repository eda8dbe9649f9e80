"""What a mock server is to the core: its spec, what building it returns, its facade's errors, and how it is run.

A server is split the way moto splits a service: a domain facade (its state and every operation on it, which sends
its own events and raises DomainError) and a wire layer (FastAPI routes or a protocol) that parses, calls the facade
and renders. Panes, the palette, the control API, scenarios and the pytest plugin call the same facade.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Awaitable, Any, Callable, NamedTuple, Protocol

from .errors import Conflict, DomainError, Invalid, NotFound, ScenarioError, Unauthorized
from .service import ErrorRenderer, ServerContext, json_error
from .settings import Setting

__all__ = ["Built", "Conflict", "DomainError", "Invalid", "NotFound", "Runner", "ScenarioError", "ServerSpec", "Unauthorized"]


class Built(NamedTuple):
    """What a spec's builder returns: the ASGI app that speaks the protocol, and the domain facade behind it."""

    app: Any
    facade: Any


@dataclass(frozen=True)
class ServerSpec:
    """How to build one kind of mock server."""

    name: str
    title: str
    default_port: int
    build: Callable[[ServerContext], Built]
    settings: tuple[Setting, ...] = ()
    enabled_by_default: bool | str = True  # "auto": auto_start decides when the servers start
    auto_start: Callable[[Any], Awaitable[str | None]] | None = None  # given the Settings: None starts it, else why not ("": no notice)
    render_error: ErrorRenderer = json_error
    max_body_bytes: int = 1024 * 1024
    preview_bytes_limit: int | None = None  # cap on journal body previews (S3 bodies are mostly binary)
    cors: bool = True
    runner: Callable[["ServerSpec", ServerContext], Any] | None = None  # how it is hosted; None: uvicorn (HTTP)
    admin_paths: tuple[tuple[str, str], ...] = ()  # (method, path prefix) of the seeds' admin endpoints
    same_site_paths: tuple[tuple[str, str], ...] = ()  # (method, path prefix) a page on another site may not call
    control_prefixes: tuple[str, ...] = ()  # more path prefixes of its control API (a stub server's WireMock /__admin/)
    door_limits: dict[str, int] = field(default_factory=dict, compare=False)  # path -> a larger body limit at that door (a bulk import)


class Runner(Protocol):
    """Hosts one server. UvicornRunner serves HTTP; a server that is not HTTP (an SMTP catcher) brings its own."""

    name: str
    spec: ServerSpec
    ctx: ServerContext
    facade: Any
    status: str  # stopped, starting, running, failed
    reason: str | None
    url: str | None

    async def start(self) -> bool: ...

    async def stop(self) -> None: ...

    async def restart(self) -> bool: ...

    def describe(self) -> str: ...
