"""Who may talk to a mock from a browser: the Host allow-list (against DNS rebinding) and the cross-site check on
state-changing control calls (against simple requests from any page). Both run on every request, so both are a
dict lookup once a host has been judged."""

from __future__ import annotations

import functools
import ipaddress
import re
import socket
from typing import Iterable

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
