"""Network faults as one facade: the TCP proxies (proxy.py) and every mock's toxics (toxics.py), changed by the panel,
the control API, scenarios, the pytest plugin and Toxiproxy's own HTTP API (served here on `toxiproxy_port`, off
unless asked), so the tools teams already have drive mockpanel unchanged."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response

from .addresses import ProxyError, split_address
from .proxy import Proxy, loopback_only
from .spec import Conflict, DomainError, NotFound
from .toxics import Toxic, ToxicError, ToxicSet, parse_toxic
from .web import errors_as

TOXIPROXY_VERSION = "2.12.0"  # the API version whose shapes these are
MAX_PROXIES = 256
MAX_BODY = 1024 * 1024


class Network:
    """The Hub's proxies and the toxic sets of its mocks, by name (a mock's name reaches its own connections)."""

    def __init__(self, hub: Any) -> None:
        self.hub = hub
        self.proxies: dict[str, Proxy] = {}

    def _event(self, kind: str, **data: Any) -> None:
        self.hub.bus.event("proxies", kind, **data)

    # --- proxies ---

    def add_proxy(self, name: str, listen: Any, upstream: Any, enabled: bool = True, from_api: bool = True) -> Proxy:
        """A new proxy (not started: `await start_proxy`). From an API its listener binds loopback whatever it asks
        (a proxy open to the network is configured on purpose, in mockpanel.toml)."""
        if name in self.proxies:
            raise Conflict(f"proxy {name} already exists")
        if name in self.hub.runners:
            raise Conflict(f"{name} is a mock of this mockpanel: name the proxy otherwise")
        if len(self.proxies) >= MAX_PROXIES:
            raise DomainError(f"at most {MAX_PROXIES} proxies")
        try:
            host, port = split_address(listen, what="listen")
            upstream_at = split_address(upstream, default_host="localhost", what="upstream")
            if from_api:
                host = loopback_only(host)
            proxy = Proxy(name, (host, port), upstream_at, self.hub.journal.of(name), self._event, enabled=enabled)
        except ProxyError as exc:
            raise DomainError(str(exc)) from None
        self.proxies[name] = proxy
        return proxy

    def proxy(self, name: str, doing: str = "") -> Proxy:
        """The proxy `name`; NotFound, or Conflict naming a mock asked to do what only proxies do (`doing`)."""
        if doing and name in self.hub.runners:
            raise Conflict(f"{name} is a mock of this mockpanel: {doing}")
        try:
            return self.proxies[name]
        except KeyError:
            raise NotFound(f"proxy not found: {name[:80]}") from None

    async def remove_proxy(self, name: str) -> None:
        proxy = self.proxy(name, "stop it from the panel or the command line")
        await proxy.stop()
        del self.proxies[name]
        self._event("proxy_removed", proxy=name)

    async def update_proxy(self, name: str, data: dict[str, Any]) -> Proxy:
        """Toxiproxy's POST /proxies/{name}: listen, upstream, enabled (a new address restarts the listener)."""
        proxy = self.proxy(name, "its toxics change, its address does not")
        try:
            if "upstream" in data:
                proxy.upstream_host, proxy.upstream_port = split_address(data["upstream"], default_host="localhost", what="upstream")
            if "listen" in data:
                host, port = split_address(data["listen"], what="listen")
                if (loopback_only(host), port) != (proxy.host, proxy.port):
                    await proxy.stop()
                    proxy.host, proxy.wanted_port = loopback_only(host), port
        except ProxyError as exc:
            raise DomainError(str(exc)) from None
        if "enabled" in data:
            if not isinstance(data["enabled"], bool):
                raise DomainError("enabled is true or false")
            proxy.enabled = data["enabled"]
        if proxy.enabled and proxy.status != "running":
            await proxy.start()
        elif not proxy.enabled and proxy.status == "running":
            await proxy.stop()
        return proxy

    async def start(self) -> None:
        await asyncio.gather(*(p.start() for p in self.proxies.values()))

    async def stop(self) -> None:
        await asyncio.gather(*(p.stop() for p in self.proxies.values()))

    def failed(self) -> dict[str, str]:
        return {f"proxy {name}": p.reason or "failed" for name, p in self.proxies.items() if p.status == "failed"}

    # --- toxics, of a proxy or a mock ---

    def toxics(self, name: str) -> ToxicSet:
        if name in self.proxies:
            return self.proxies[name].toxics
        if name in self.hub.runners:
            return self.hub[name].ctx.toxics
        raise NotFound(f"proxy not found: {name[:80]} (no proxy or mock has that name)")

    def add_toxic(self, name: str, data: Any) -> Toxic:
        toxics = self.toxics(name)
        try:
            toxic = data if isinstance(data, Toxic) else parse_toxic(data)
            return toxics.add(toxic)
        except ToxicError as exc:
            raise (Conflict if "already exists" in str(exc) else DomainError)(str(exc)) from None

    def update_toxic(self, name: str, toxic: str, data: Any) -> Toxic:
        if not isinstance(data, dict):
            raise DomainError("a toxic is a JSON object")
        try:
            return self.toxics(name).update(toxic, data)
        except LookupError as exc:
            raise NotFound(str(exc)) from None
        except ToxicError as exc:
            raise DomainError(str(exc)) from None

    def toxic(self, name: str, toxic: str) -> Toxic:
        try:
            return self.toxics(name).get(toxic).model_copy()
        except LookupError as exc:
            raise NotFound(str(exc)) from None

    def remove_toxic(self, name: str, toxic: str) -> None:
        try:
            self.toxics(name).remove(toxic)
        except LookupError as exc:
            raise NotFound(str(exc)) from None

    def clear_toxics(self, name: str | None = None) -> list[str]:
        """Every toxic off (of one proxy or mock, or of all): what had any."""
        names = [name] if name else [*self.hub.runners, *self.proxies]
        return [n for n in names if self.toxics(n).clear()]

    def as_toxiproxy(self) -> dict[str, dict[str, Any]]:
        """Every proxy as Toxiproxy lists them, the mocks too (upstream "mockpanel:NAME": their toxics act on the
        mock's own connections)."""
        found: dict[str, dict[str, Any]] = {}
        for name, runner in self.hub.runners.items():
            port = getattr(runner, "port", None)
            found[name] = {"name": name, "listen": f"{runner.ctx.settings.host}:{port or runner.ctx.settings.port}", "upstream": f"mockpanel:{name}",
                           "enabled": runner.status == "running", "toxics": [t.as_json() for t in runner.ctx.toxics.toxics.values()]}
        for name, proxy in self.proxies.items():
            found[name] = proxy.as_toxiproxy()
        return found

    def one_as_toxiproxy(self, name: str) -> dict[str, Any]:
        found = self.as_toxiproxy()
        if name not in found:
            raise NotFound(f"proxy not found: {name[:80]}")
        return found[name]

    async def reset(self) -> None:
        """Toxiproxy's POST /reset: every proxy enabled, every toxic removed."""
        self.clear_toxics()
        for proxy in self.proxies.values():
            if not proxy.enabled:
                await proxy.set_enabled(True)

    async def create_from(self, data: Any) -> Proxy:
        if not isinstance(data, dict) or not isinstance(data.get("name"), str):
            raise DomainError('a proxy is {"name": ..., "listen": "127.0.0.1:PORT", "upstream": "HOST:PORT"}')
        enabled = data.get("enabled", True)
        if not isinstance(enabled, bool):
            raise DomainError("enabled is true or false")
        proxy = self.add_proxy(data["name"], data.get("listen") or "127.0.0.1:0", data.get("upstream"), enabled)
        if enabled and not await proxy.start():
            del self.proxies[proxy.name]
            raise DomainError(f"proxy {proxy.name}: {proxy.reason}")
        return proxy

    async def populate(self, items: Any) -> list[Proxy]:
        """Toxiproxy's POST /populate: each proxy created, or replaced when its listen or upstream differ."""
        if isinstance(items, dict) and "proxies" in items:
            items = items["proxies"]
        if not isinstance(items, list) or len(items) > MAX_PROXIES:
            raise DomainError(f"populate takes a JSON array of at most {MAX_PROXIES} proxies")
        made = []
        for data in items:
            if isinstance(data, dict) and data.get("name") in self.proxies:
                current = self.proxies[data["name"]]
                if current.upstream == _address_text(data.get("upstream"), "localhost") and \
                        (data.get("listen") is None or current.listen == _address_text(data.get("listen"), "127.0.0.1")):
                    made.append(current)
                    continue
                await self.remove_proxy(data["name"])
            made.append(await self.create_from(data))
        return made


def _address_text(value: Any, default_host: str) -> str:
    try:
        host, port = split_address(value, default_host)
    except ProxyError:
        return ""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message, "status": status}, status_code=status)


async def _body(request: Request) -> Any:
    """The JSON body, as the door's guard read, bounded and parsed it (both doors of this API have one); {} when
    none came."""
    from .guard import PARSED_JSON

    return request.scope.get(PARSED_JSON, {})


_toxiproxy_errors = errors_as(lambda exc: _error(exc.status, exc.message))  # Toxiproxy's error shape


def toxiproxy_router(network: Network, prefix: str = "") -> APIRouter:
    """Toxiproxy's HTTP API over `network`: its paths, JSON shapes and errors ({"error": ..., "status": ...}).
    On `toxiproxy_port` at the root; on every server under /__mockpanel/toxiproxy (the control API's guards)."""
    router = APIRouter(prefix=prefix, tags=["network faults (Toxiproxy's API)"])

    @router.get("/version", summary="Toxiproxy's API version these shapes follow")
    async def version() -> Any:
        return {"version": TOXIPROXY_VERSION}

    @router.get("/proxies", summary="Every proxy, and every mock (upstream mockpanel:NAME), with its toxics")
    async def proxies() -> Any:
        return network.as_toxiproxy()

    @router.post("/proxies", summary="Create a proxy: {name, listen, upstream, enabled}")
    @_toxiproxy_errors
    async def create(request: Request) -> Any:
        proxy = await network.create_from(await _body(request))
        return JSONResponse(proxy.as_toxiproxy(), status_code=201)

    @router.post("/populate", summary="Create proxies from a list (replacing those whose addresses differ)")
    @_toxiproxy_errors
    async def populate(request: Request) -> Any:
        made = await network.populate(await _body(request))
        return JSONResponse({"proxies": [p.as_toxiproxy() for p in made]}, status_code=201)

    @router.post("/reset", summary="Every proxy enabled, every toxic removed")
    async def reset() -> Any:
        await network.reset()
        return Response(status_code=204)

    @router.get("/proxies/{name}", summary="One proxy")
    @_toxiproxy_errors
    async def one(name: str) -> Any:
        return network.one_as_toxiproxy(name)

    @router.patch("/proxies/{name}", include_in_schema=False)
    @router.post("/proxies/{name}", summary="Change a proxy's listen, upstream or enabled (PATCH too)")
    @_toxiproxy_errors
    async def update(name: str, request: Request) -> Any:
        data = await _body(request)
        if not isinstance(data, dict):
            raise DomainError("a proxy is a JSON object")
        return (await network.update_proxy(name, data)).as_toxiproxy()

    @router.delete("/proxies/{name}", summary="Remove a proxy (its connections end)")
    @_toxiproxy_errors
    async def delete(name: str) -> Any:
        await network.remove_proxy(name)
        return Response(status_code=204)

    @router.get("/proxies/{name}/toxics", summary="A proxy's (or a mock's) toxics")
    @_toxiproxy_errors
    async def toxics(name: str) -> Any:
        return [t.as_json() for t in network.toxics(name).toxics.values()]

    @router.post("/proxies/{name}/toxics", summary="Add a toxic: {type, stream, toxicity, attributes, name}")
    @_toxiproxy_errors
    async def add_toxic(name: str, request: Request) -> Any:
        return network.add_toxic(name, await _body(request)).as_json()

    @router.get("/proxies/{name}/toxics/{toxic}", summary="One toxic")
    @_toxiproxy_errors
    async def get_toxic(name: str, toxic: str) -> Any:
        return network.toxic(name, toxic).as_json()

    @router.patch("/proxies/{name}/toxics/{toxic}", include_in_schema=False)
    @router.post("/proxies/{name}/toxics/{toxic}", summary="Change a toxic's fields (PATCH too)")
    @_toxiproxy_errors
    async def update_toxic(name: str, toxic: str, request: Request) -> Any:
        return network.update_toxic(name, toxic, await _body(request)).as_json()

    @router.delete("/proxies/{name}/toxics/{toxic}", summary="Remove a toxic")
    @_toxiproxy_errors
    async def delete_toxic(name: str, toxic: str) -> Any:
        network.remove_toxic(name, toxic)
        return Response(status_code=204)

    return router


def _render(status: int, message: str, scope: dict) -> tuple[list[tuple[bytes, bytes]], bytes]:
    return [(b"content-type", b"application/json")], json.dumps({"error": message, "status": status}).encode()


SOURCE = "Toxiproxy's API"


def toxiproxy_app(network: Network, allowed_hosts: tuple[str, ...] = (), admin_token: str | None = None) -> Any:
    """The API on a port of its own, behind the guard every door passes (guard.Guard): the Host allow-list, the
    admin token when set, no state change from a page of another site, JSON bodies only, bounded."""
    from .guard import Guard, GuardedApp, HostGuard

    app = FastAPI(title="mockpanel: Toxiproxy's API", docs_url=None, redoc_url=None, openapi_url=None)
    app.include_router(toxiproxy_router(network))

    @app.exception_handler(404)
    async def not_found(request: Request, exc: Any) -> Any:
        return _error(404, "not found")

    @app.exception_handler(405)
    async def not_allowed(request: Request, exc: Any) -> Any:
        return _error(405, "method not allowed")

    return GuardedApp(app, Guard(HostGuard(allowed_hosts), admin_token, _render, max_body=MAX_BODY), SOURCE)


class ToxiproxyServer:
    """Toxiproxy's API on a port of its own (uvicorn, in the Hub's loop): status and reason as a server's."""

    def __init__(self, network: Network, host: str, port: int, allowed_hosts: tuple[str, ...] = (),
                 admin_token: str | None = None) -> None:
        self.app = toxiproxy_app(network, allowed_hosts, admin_token)
        self.host, self.port = host, port
        self.status, self.reason, self.url = "stopped", None, None
        self._server: Any = None
        self._task: asyncio.Task | None = None

    async def start(self) -> bool:
        import uvicorn

        from .runner import EmbeddedServer, bind_socket, display_url

        try:
            sock = bind_socket(self.host, self.port)
        except OSError as exc:
            self.status, self.reason = "failed", str(exc)
            return False
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self.app, log_config=None, access_log=False, lifespan="off", server_header=False, timeout_graceful_shutdown=2)
        self._server = EmbeddedServer(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]), name="mockpanel-toxiproxy-api")
        while not self._server.started and not self._task.done():
            await asyncio.sleep(0.005)
        self.status = "running" if self._server.started else "failed"
        self.url = display_url(self.host, self.port)
        return self._server.started

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            try:
                await asyncio.wait_for(self._task, 10)
            except (asyncio.TimeoutError, Exception):
                self._task.cancel()
        self.status = "stopped"
