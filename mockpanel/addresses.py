"""Addresses a TCP proxy listens on and relays to, as mockpanel.toml, the panel and Toxiproxy's API write them."""

from __future__ import annotations

import re
from typing import Any

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")


class ProxyError(ValueError):
    """A proxy that cannot be: a bad name, address or port (the reason in words)."""


def split_address(text: Any, default_host: str = "127.0.0.1", what: str = "address") -> tuple[str, int]:
    """`host:port`, `:port`, `[::1]:port` or a bare port, as (host, port)."""
    if isinstance(text, int) and not isinstance(text, bool):
        host, port_text = default_host, str(text)
    elif isinstance(text, str) and text.strip():
        text = text.strip()
        if text.isascii() and text.isdigit():
            host, port_text = default_host, text
        else:
            host, sep, port_text = text.rpartition(":")
            if not sep:
                raise ProxyError(f"{what} {text[:80]!r}: write host:port")
            host = host.strip("[]") or default_host
    else:
        raise ProxyError(f"{what}: write host:port")
    if not (port_text.isascii() and port_text.isdigit()) or not 0 <= int(port_text) <= 65535:
        raise ProxyError(f"{what} {str(text)[:80]!r}: the port must be 0-65535")
    if len(host) > 253 or not re.fullmatch(r"[A-Za-z0-9_.:-]+", host):
        raise ProxyError(f"{what} {str(text)[:80]!r}: not a host name")
    return host, int(port_text)
