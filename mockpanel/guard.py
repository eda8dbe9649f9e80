"""Who may talk to a mock from a browser: the Host allow-list (against DNS rebinding) and the cross-site check on
state-changing control calls (against simple requests from any page). Both run on every request, so both are a
dict lookup once a host has been judged."""

from __future__ import annotations

import asyncio
import functools
import hmac
import ipaddress
import json
import re
import socket
from typing import Any, Callable, Iterable

from .journal import change_source

DEFAULT_NAMES = ("localhost", "host.docker.internal")
SAFE_METHODS = (b"GET", b"HEAD", b"OPTIONS")
# What a Host (or an Origin's authority) may be: a name of letters, digits, '-', '_' and '.', or an IPv6 literal in
# brackets, with an optional port. Anything else ("evil.example/x.localhost") is not a host, whatever it ends with.
HOST_SYNTAX = re.compile(r"(?:[a-z0-9_.-]+|\[[0-9a-f:.]+\])(?::[0-9]{1,5})?")


@functools.lru_cache(maxsize=1)
def machine_names() -> tuple[str, ...]:
    """This machine's name (and its fully qualified one): asked once, since getfqdn() may wait on DNS."""
    return tuple({socket.gethostname().lower(), socket.getfqdn().lower()})


def host_name(raw: str) -> str | None:
    """The name or address in a Host (or Origin authority) value, lowercased, without port or trailing dot; None for
    an IP literal (always allowed: a rebinding page needs a name it controls)."""
    text = raw.strip().lower()
    if text.startswith("["):
        end = text.find("]")
        candidate = text[1:end] if end > 0 else text[1:]
    else:
        candidate = text.rsplit(":", 1)[0] if text.count(":") == 1 else text
    candidate = candidate.rstrip(".")
    try:
        ipaddress.ip_address(candidate)
        return None
    except ValueError:
        return candidate


def host_refused(raw: bytes | None) -> str:
    """Why a Host is refused, naming the setting that allows it (the client's value escaped and cut)."""
    shown = (raw or b"").decode("latin-1")[:100].encode("ascii", "backslashreplace").decode()
    return (f"host {shown!r} is not allowed: add it to allowed_hosts (MOCKPANEL_ALLOWED_HOSTS, --allowed-hosts or "
            "[mockpanel] allowed_hosts in mockpanel.toml; '*' allows any host)")


class HostGuard:
    """Hosts a server answers: localhost and *.localhost, IP literals, host.docker.internal, this machine's name,
    the server's own virtual-host suffixes, and the `allowed_hosts` setting ("*" allows any; "*.example.test" a
    domain and its subdomains)."""

    MAX_CACHE = 1024

    def __init__(self, allowed: Iterable[str] = (), suffixes: Iterable[str] = ()) -> None:
        allowed = [a.strip().lower() for a in allowed if a.strip()]
        self.any = "*" in allowed
        names = {*DEFAULT_NAMES, *machine_names()}
        domains = {"localhost", *(s.strip(".").lower() for s in suffixes if s.strip("."))}
        for entry in allowed:
            if entry.startswith(("*.", ".")):
                domains.add(entry.lstrip("*").lstrip("."))
            elif entry != "*":
                names.add(entry.rstrip("."))
        self.names = frozenset(names | domains)
        self.domains = tuple("." + d for d in domains)
        self._judged: dict[bytes | None, bool] = {None: True}  # no Host header (HTTP/1.0): nothing to rebind

    def allows(self, raw: bytes | None) -> bool:
        judged = self._judged.get(raw)
        if judged is None:
            judged = self._judge(raw)
            if len(self._judged) >= self.MAX_CACHE:
                self._judged = {None: True}
            self._judged[raw] = judged
        return judged

    def _judge(self, raw: bytes | None) -> bool:
        if raw is None:
            return True
        if not HOST_SYNTAX.fullmatch(raw.decode("latin-1").strip().lower()):
            return False
        if self.any:
            return True
        name = host_name(raw.decode("latin-1"))
        return name is None or name in self.names or name.endswith(self.domains)


def cross_site(scope: dict, also: Iterable[str] = ()) -> str | None:
    """Why a request was sent by a page of another origin than this server's own, or None.

    A server's own site is its exact origin: this request's scheme and Host (port included), or one of `also` (a
    configured public origin). Another port of localhost is another server, and an IP-literal Origin another site:
    browsers call a page on 127.0.0.1:9000 "same-site" with 127.0.0.1:8000, so Sec-Fetch-Site is trusted only to
    refuse, and an Origin must match to the letter."""
    origin = host = None
    for key, value in scope["headers"]:
        if key == b"sec-fetch-site" and value in (b"cross-site", b"same-site"):
            return f"Sec-Fetch-Site: {value.decode('latin-1')}"
        if key == b"origin":
            origin = value.decode("latin-1")
        elif key == b"host":
            host = value.decode("latin-1")
    if origin is None:
        return None  # not sent by a page (curl, an SDK), or a same-origin GET, which changes nothing
    own = f"{scope.get('scheme', 'http')}://{host}".lower() if host else None
    if origin.lower() != own and origin.lower() not in {a.lower() for a in also}:
        return f"Origin: {origin[:100]}"
    return None


# --- the one guard every door passes ---

MAX_DOOR_BODY = 1024 * 1024  # a control call's body: names, numbers, a policy, a scenario's text
MAX_JSON_DEPTH = 64  # nesting of a JSON body at a door; deeper is refused before any route sees it
PARSE_IN_THREAD = 64 * 1024  # a JSON body larger than this is parsed (and its depth checked) off the servers' loop
PARSED_JSON = "mockpanel.json"  # where the guard leaves a JSON body it parsed (web.json_body reads it from there)
_NO_JSON = object()

# render(status, message, scope) -> (headers, body): each door answers in its own format.
Render = Callable[[int, str, dict], "tuple[list[tuple[bytes, bytes]], bytes]"]


def json_error(status: int, message: str, scope: dict) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """The JSON servers' error body, {"detail": ...}."""
    return [(b"content-type", b"application/json")], json.dumps({"detail": message}).encode()


def _too_deep(value: Any, limit: int) -> bool:
    stack = [(value, 1)] if isinstance(value, (dict, list)) else []
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        children = item.values() if isinstance(item, dict) else item
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


def parse_json_body(raw: bytes, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """`raw` as JSON, refusing more than `max_depth` levels of nesting; ValueError saying why."""
    try:
        value = json.loads(raw)
    except RecursionError:
        raise ValueError(f"JSON nested deeper than {max_depth} levels") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"body is not valid JSON: {exc}") from None
    if _too_deep(value, max_depth):
        raise ValueError(f"JSON nested deeper than {max_depth} levels")
    return value


class Guard:
    """The one check every door of a server answers behind: the control API (/__mockpanel/, attach included), a
    stub server's /__admin/, Toxiproxy's API on its own port. In order: the Host allow-list; the admin token when
    set; for a state change, no page of another site and a JSON body (which a browser cannot send cross-site
    without asking first), at most `max_body` bytes and MAX_JSON_DEPTH levels deep, parsed once (off the loop when
    large) and handed on in the scope. `source` names the door in the change log ("by Toxiproxy's API")."""

    def __init__(self, hosts: HostGuard, token: str | None, render: Render = json_error, *, max_body: int = MAX_DOOR_BODY,
                 other_types: dict[str, tuple[bytes, ...]] | None = None, limits: dict[str, int] | None = None,
                 streamed: dict[str, tuple[bytes, ...]] | None = None) -> None:
        self.hosts = hosts
        self.token = token
        self._expected = b"Bearer " + token.encode() if token else b""
        self.render = render
        self.max_body = max_body
        self.other_types = other_types or {}  # path -> content types accepted there besides JSON (the OTLP receiver's protobuf)
        self.limits = limits or {}  # path -> its own body limit
        # path -> the content types of a body handed on as it arrives, not read here (a state archive: its route bounds it)
        self.streamed = streamed or {}

    def token_ok(self, scope: dict) -> bool:
        if not self.token:
            return True
        for key, value in scope["headers"]:
            if key == b"authorization" and hmac.compare_digest(value, self._expected):
                return True
        return False

    async def refuse(self, send: Callable, scope: dict, status: int, message: str, render: Render | None = None) -> None:
        """Answer before the body was read: the door's format, the connection closed (its next request would be
        read from this one's body)."""
        headers, body = (render or self.render)(status, message, scope)
        headers = [*headers, (b"content-length", str(len(body)).encode()), (b"connection", b"close")]
        if status == 401:
            headers.append((b"www-authenticate", b'Bearer realm="mockpanel"'))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})

    def judge(self, scope: dict, source: str = "this API") -> tuple[int, str] | None:
        """Why this request may not pass (status, message), before its body is read; None to read on."""
        host = content_type = declared = None
        has_body = False
        for key, value in scope["headers"]:
            if key == b"host":
                if host is not None:
                    return 400, "a request has one Host header, this one has several"
                host = value
            elif key == b"content-type":
                content_type = value.split(b";")[0].strip().lower()
            elif key == b"content-length":
                declared, has_body = value, value != b"0"
            elif key == b"transfer-encoding":
                has_body = True
        if not self.hosts.allows(host):
            return 403, host_refused(host)
        if not self.token_ok(scope):
            return 401, f"{source} needs the admin token: Authorization: Bearer <MOCKPANEL_ADMIN_TOKEN>"
        if scope["method"].encode() in SAFE_METHODS:
            return None
        why = cross_site(scope)
        if why is not None:
            return 403, f"refused a cross-site request ({why}): this API changes state"
        if has_body and scope["path"] in self.streamed:
            if content_type not in self.streamed[scope["path"]]:
                return 415, f"send the body as Content-Type: {self.streamed[scope['path']][0].decode()}"
        elif has_body:
            if content_type != b"application/json" and content_type not in self.other_types.get(scope["path"], ()):
                return 415, "send the body as Content-Type: application/json (curl: -H 'content-type: application/json')"
            limit = self.limits.get(scope["path"], self.max_body)
            if declared is not None and (len(declared) > 18 or not declared.isdigit() or int(declared) > limit):
                return 413, f"a request body here is at most {limit} bytes"
        return None

    async def __call__(self, scope: dict, receive: Callable, send: Callable, app: Callable, source: str,
                       render: Render | None = None) -> None:
        refusal = self.judge(scope, source)
        if refusal is not None:
            await self.refuse(send, scope, *refusal, render=render)
            return
        if scope["method"].encode() not in SAFE_METHODS and scope["path"] not in self.streamed:
            body = bytearray()
            limit = self.limits.get(scope["path"], self.max_body)
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                body += message.get("body", b"")
                if len(body) > limit:
                    await self.refuse(send, scope, 413, f"a request body here is at most {limit} bytes", render=render)
                    return
                if not message.get("more_body"):
                    break
            raw = bytes(body)
            if raw and scope["path"] not in self.other_types:
                try:
                    parsed = await asyncio.to_thread(parse_json_body, raw) if len(raw) > PARSE_IN_THREAD else parse_json_body(raw)
                except ValueError as exc:
                    await self.refuse(send, scope, 400, str(exc)[:300], render=render)
                    return
                scope[PARSED_JSON] = parsed
            receive = _replay(raw, receive)
        token = change_source.set(source)
        try:
            await app(scope, receive, send)
        finally:
            change_source.reset(token)


def _replay(body: bytes, receive: Callable) -> Callable:
    sent = False

    async def replayed() -> dict:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed


class GuardedApp:
    """An ASGI app every request of which passes `guard` (a door with a port of its own: Toxiproxy's API)."""

    def __init__(self, app: Callable, guard: Guard, source: str) -> None:
        self.app, self.guard, self.source = app, guard, source

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.guard(scope, receive, send, self.app, self.source)
