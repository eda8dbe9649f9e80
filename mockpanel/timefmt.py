"""Times as the servers write them: ISO 8601 in UTC, with or without milliseconds and the Z."""

from __future__ import annotations

import time


def iso(ts: float | None = None, *, millis: bool = True, zone: bool = True) -> str:
    """2026-01-15T10:30:05.123Z (millis and zone), 2026-01-15T10:30:05Z, or 2026-01-15T10:30:05 (the auth seed's)."""
    ts = time.time() if ts is None else ts
    text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts))
    if millis:
        text += f".{int(ts * 1000) % 1000:03d}"
    return text + "Z" if zone else text


def clock(ts: float) -> str:
    """10:30:05.123 in local time, for the panel's lists; a time no clock can show (a span's, from outside) reads as
    ??:??:?? instead of ending the pane."""
    try:
        return time.strftime("%H:%M:%S", time.localtime(ts)) + f".{int(ts * 1000) % 1000:03d}"
    except (OverflowError, OSError, ValueError):
        return "??:??:??.???"
