"""The mocks' one clock: what every server reads for "now" (tokens' iat and exp, presigned and POST-policy expiry,
lifecycle and Object Lock, webhook signature timestamps, stub templates' `now`, sessions), kept by the Hub.

It is the wall clock until someone moves it — `PUT /__mockpanel/clock` on any server, the pytest plugin's
`mocks.clock`, a scenario step, the panel's `@` key — and then the wall clock moved by an offset, or frozen at one
moment. The OIDC issuer's clock and S3's lifecycle clock are views of it. What judges the *client's* clock (S3's
15-minute request skew) keeps the wall clock: moving the mocks' time does not make every client late."""

from __future__ import annotations

import math
import re
import time
from datetime import datetime, timezone
from typing import Any, Callable

import jwt

from .errors import Invalid
from .timefmt import iso

MAX_SHIFT_S = 100 * 365 * 86_400  # one change moves the clock by at most a hundred years
LATEST = 253_402_300_799  # 9999-12-31T23:59:59Z: what strftime and every client can still write
CHANGE_KEYS = ("now", "advance_s", "frozen")

# A listener hears every change: (before, after) in the mocks' time; what it did (S3: lifecycle applied) or None.
Listener = Callable[[float, float], "dict[str, Any] | None"]


class MockClock:
    """Wall time from `base` (time.time unless a test injects one), moved by an offset or frozen at a moment.
    Callable: `clock()` is `clock.now()`, so it stands wherever a `() -> float` clock did."""

    def __init__(self, base: Callable[[], float] = time.time) -> None:
        self.base = base
        self.offset = 0.0
        self.frozen_at: float | None = None
        self.virtual = False  # not the wall clock: offset or frozen (read per request, so kept, not derived)
        self.listeners: dict[str, Listener] = {}
        self.on_change: Callable[[dict[str, Any]], None] | None = None  # the Hub's: an event on the bus

    def now(self) -> float:
        return self.frozen_at if self.frozen_at is not None else self.base() + self.offset

    __call__ = now

    def wall(self) -> float:
        """The wall clock (the clients' time), whatever the mocks' time is."""
        return self.base()

    def virtual_now(self) -> float | None:
        """The mocks' time when it is not the wall clock, else None (what the journal keeps beside wall time)."""
        return self.now() if self.virtual else None

    def listen(self, name: str, listener: Listener) -> None:
        self.listeners[name] = listener

    def change(self, *, now: float | None = None, advance_s: float | None = None, frozen: bool | None = None) -> dict[str, Any]:
        """Set (`now`), move (`advance_s`, either way), freeze or resume; several at once apply in that order.
        The state after it, with `effects`: what each listener did."""
        before = self.now()
        target = before if now is None else now
        if advance_s is not None:
            target += advance_s
        if not 0 <= target <= LATEST:
            raise Invalid(f"the clock would read {target:.0f}: it stays between 1970 and 9999")
        still = self.frozen_at is not None if frozen is None else frozen
        if still:
            self.offset = 0.0
        elif self.frozen_at is None:
            self.offset += target - before  # exact: a change that moves nothing leaves the wall clock the wall clock
        else:
            self.offset = target - self.base()  # resumed: running on from where it was frozen
        self.frozen_at = target if still else None
        self.virtual = still or self.offset != 0.0
        return self._changed(before)

    def reset(self) -> dict[str, Any]:
        """Back to the wall clock."""
        before = self.now()
        self.offset, self.frozen_at, self.virtual = 0.0, None, False
        return self._changed(before)

    def _changed(self, before: float) -> dict[str, Any]:
        after = self.now()
        effects = {}
        for name, listener in list(self.listeners.items()):
            done = listener(before, after)
            if done:
                effects[name] = done
        state = self.state()
        if self.on_change is not None:  # what serve's log and the panel's feed say: the new time, how far it moved, what acted
            self.on_change({"now_iso": state["now_iso"], "offset_s": state["offset_s"], "frozen": state["frozen"],
                            "moved_s": round(after - before, 3), **({"effects": effects} if effects else {})})
        return {**state, "effects": effects}

    def state(self) -> dict[str, Any]:
        now, wall = self.now(), self.base()
        return {"now": round(now, 3), "now_iso": iso(now), "wall": round(wall, 3), "offset_s": round(now - wall, 3),
                "frozen": self.frozen_at is not None, "virtual": self.virtual}

    def describe(self) -> str | None:
        """What the panel's header shows while the clock is not the wall clock: "⏱ 2030-01-01 00:00:05Z +3h frozen"."""
        if not self.virtual:
            return None
        now = self.now()
        moment = time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(now))
        return f"⏱ {moment} {shift(now - self.base())}{' frozen' if self.frozen_at is not None else ''}"


def shift(seconds: float) -> str:
    """+3h, -2d4h, +15m, +0s: an offset in words short enough for the header."""
    sign, left = ("-" if seconds < 0 else "+"), int(round(abs(seconds)))
    parts = []
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)):
        if left >= size and len(parts) < 2:
            parts.append(f"{left // size}{unit}")
            left %= size
    return sign + ("".join(parts) or "0s")


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise Invalid(f"{name} must be a number of seconds")
    return float(value)


def moment(value: Any) -> float:
    """Epoch seconds from a number or an ISO 8601 date-time ("2030-01-01T00:00:00Z"; no zone means UTC)."""
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            raise Invalid(f"now: {value[:40]!r} is neither epoch seconds nor an ISO 8601 date-time") from None
        return (parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)).timestamp()
    return _number(value, "now")


def change_from(body: Any) -> dict[str, Any]:
    """The keyword arguments of MockClock.change from a control API body: {"advance_s": N}, {"now": epoch seconds or
    ISO 8601}, {"frozen": true}, or several of them."""
    if not isinstance(body, dict) or not body:
        raise Invalid('send {"advance_s": 3600}, {"now": 2000000000}, {"now": "2030-01-01T00:00:00Z"} or {"frozen": true}')
    unknown = sorted(set(body) - set(CHANGE_KEYS))
    if unknown:
        raise Invalid(f"unknown clock field(s) {', '.join(map(str, unknown))[:100]} (expected now, advance_s, frozen)")
    change: dict[str, Any] = {}
    if body.get("now") is not None:
        change["now"] = moment(body["now"])
    if body.get("advance_s") is not None:
        change["advance_s"] = _number(body["advance_s"], "advance_s")
        if abs(change["advance_s"]) > MAX_SHIFT_S:
            raise Invalid("advance_s moves the clock by at most a hundred years")
    if body.get("frozen") is not None:
        if not isinstance(body["frozen"], bool):
            raise Invalid("frozen must be true or false")
        change["frozen"] = body["frozen"]
    if not change:
        raise Invalid("nothing to change: give now, advance_s or frozen")
    return change


_WORDS = re.compile(r"^([+-])\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)$")
_UNITS = {"s": 1, "m": 60, "h": 3_600, "d": 86_400, "w": 604_800}


def parse_change(text: str) -> dict[str, Any] | None:
    """What the panel's prompt takes: "+1h", "-2d", "+90s", "2030-01-01T00:00:00Z", "freeze", "resume", or "wall"
    (back to the wall clock: None). Raises Invalid with the forms it takes."""
    words = text.strip().lower()
    if words in ("wall", "reset", "real"):
        return None
    if words in ("freeze", "frozen", "stop"):
        return {"frozen": True}
    if words in ("resume", "run", "go"):
        return {"frozen": False}
    found = _WORDS.match(words)
    if found:
        seconds = float(found.group(2)) * _UNITS[found.group(3)] * (-1 if found.group(1) == "-" else 1)
        return change_from({"advance_s": seconds})
    if words[:1].isdigit():
        return change_from({"now": text.strip()})
    raise Invalid("type +1h, -2d, +90s, a date-time (2030-01-01T00:00:00Z), freeze, resume or wall")


def check_token_times(claims: dict[str, Any], now: float, leeway: float = 0) -> None:
    """PyJWT's iat, nbf and exp checks, by the mocks' clock instead of the wall clock (decode with
    verify_exp/verify_nbf/verify_iat off, then this): the same exceptions and messages."""
    for claim, message in (("iat", "Issued At claim (iat) must be an integer."), ("nbf", "Not Before claim (nbf) must be an integer."),
                           ("exp", "Expiration Time claim (exp) must be an integer.")):
        if claim not in claims:
            continue
        try:
            value = int(claims[claim])
        except (ValueError, TypeError, OverflowError):
            raise (jwt.InvalidIssuedAtError if claim == "iat" else jwt.DecodeError)(message) from None
        if claim == "exp" and value <= now - leeway:
            raise jwt.ExpiredSignatureError("Signature has expired")
        if claim != "exp" and value > now + leeway:
            raise jwt.ImmatureSignatureError(f"The token is not yet valid ({claim})")


BY_OUR_CLOCK = {"verify_exp": False, "verify_nbf": False, "verify_iat": False}  # decode options; then check_token_times
