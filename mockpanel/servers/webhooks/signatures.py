"""Webhook signature schemes, detected from the headers and verified with constant-time compares.

Each check says what it found: the scheme, a verdict (valid / invalid / unsigned) and, when invalid, why — the
expected and received signatures, the timestamp skew, which secret was tried. That is the signature debugger.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping

SEED = "x-webhook-signature"
GITHUB = "github"
STRIPE = "stripe"
STANDARD = "standard-webhooks"


@dataclass
class SignatureCheck:
    scheme: str | None  # None: no signature header
    verdict: str  # valid, invalid, unsigned
    reason: str | None = None
    expected: str | None = None
    received: str | None = None
    secret_source: str | None = None
    secret_hint: str | None = None
    timestamp_skew_s: float | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def secret_hint(secret: str) -> str:
    """Enough to tell secrets apart, never the secret itself."""
    if len(secret) <= 8:
        return f"{len(secret)} characters"
    return f"{secret[:4]}…{secret[-3:]} ({len(secret)} characters)"


def standard_key(secret: str) -> bytes:
    """Standard Webhooks / Svix secrets are base64, usually behind a `whsec_` prefix; anything else is used as bytes."""
    raw = secret[6:] if secret.startswith("whsec_") else secret
    try:
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        return secret.encode()


def _hmac_hex(key: bytes, message: bytes) -> str:
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def _equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode("latin-1", "replace"), b.encode("latin-1", "replace"))


def verify(headers: Mapping[str, str], body: bytes, secret: str, secret_source: str, tolerance_s: int, now: float | None = None) -> SignatureCheck:
    """Check the delivery's signature; `headers` have lower-case names."""
    now = time.time() if now is None else now
    hint = secret_hint(secret)

    def result(scheme: str, ok: bool, reason: str | None = None, **kw: Any) -> SignatureCheck:
        return SignatureCheck(scheme, "valid" if ok else "invalid", None if ok else reason, secret_source=secret_source, secret_hint=hint, **kw)

    def skew_of(ts: str) -> tuple[float | None, str | None]:
        try:
            stamp = int(ts)
        except ValueError:
            return None, f"timestamp {ts!r} is not a whole number of seconds"
        skew = now - stamp
        if abs(skew) > tolerance_s:
            return skew, f"timestamp is {abs(skew):.0f}s {'old' if skew > 0 else 'in the future'}; tolerance is {tolerance_s}s"
        return skew, None

    # Standard Webhooks (and Svix, the same scheme under other names)
    sig_header = headers.get("webhook-signature") or headers.get("svix-signature")
    if sig_header is not None:
        prefix = "webhook-" if "webhook-signature" in headers else "svix-"
        msg_id, ts = headers.get(prefix + "id"), headers.get(prefix + "timestamp")
        if not msg_id or not ts:
            return result(STANDARD, False, f"{prefix}signature without {prefix}id and {prefix}timestamp", received=sig_header)
        expected = base64.b64encode(hmac.new(standard_key(secret), f"{msg_id}.{ts}.".encode() + body, hashlib.sha256).digest()).decode()
        candidates = [part.split(",", 1)[1] for part in sig_header.split() if part.startswith("v1,")]
        skew, stale = skew_of(ts)
        details = {"id": msg_id, "timestamp": ts, "signatures_sent": len(sig_header.split())}
        if not candidates:
            return result(STANDARD, False, "no v1 signature in the header (expected 'v1,<base64>')", expected=f"v1,{expected}", received=sig_header, details=details)
        matched = any(_equal(c, expected) for c in candidates)
        if not matched:
            return result(STANDARD, False, "signature does not match the body with this secret", expected=f"v1,{expected}", received=sig_header, timestamp_skew_s=skew, details=details)
        if stale:
            return result(STANDARD, False, stale, expected=f"v1,{expected}", received=sig_header, timestamp_skew_s=skew, details=details)
        return result(STANDARD, True, expected=f"v1,{expected}", received=sig_header, timestamp_skew_s=skew, details=details)

    stripe_header = headers.get("stripe-signature")
    if stripe_header is not None:
        fields: dict[str, list[str]] = {}
        for part in stripe_header.split(","):
            name, sep, value = part.strip().partition("=")
            if sep:
                fields.setdefault(name, []).append(value)
        ts = (fields.get("t") or [None])[0]
        if ts is None or not fields.get("v1"):
            return result(STRIPE, False, "malformed Stripe-Signature: expected 't=<timestamp>,v1=<hex>'", received=stripe_header)
        expected = _hmac_hex(secret.encode(), ts.encode() + b"." + body)
        skew, stale = skew_of(ts)
        if not any(_equal(v, expected) for v in fields["v1"]):
            return result(STRIPE, False, "signature does not match the body with this secret", expected=f"t={ts},v1={expected}", received=stripe_header, timestamp_skew_s=skew)
        if stale:
            return result(STRIPE, False, stale, expected=f"t={ts},v1={expected}", received=stripe_header, timestamp_skew_s=skew)
        return result(STRIPE, True, expected=f"t={ts},v1={expected}", received=stripe_header, timestamp_skew_s=skew)

    github_header = headers.get("x-hub-signature-256")
    if github_header is not None:
        expected = "sha256=" + _hmac_hex(secret.encode(), body)
        if not github_header.startswith("sha256="):
            return result(GITHUB, False, "malformed X-Hub-Signature-256: expected 'sha256=<hex>'", expected=expected, received=github_header)
        ok = _equal(github_header.lower(), expected)
        return result(GITHUB, ok, "signature does not match the body with this secret", expected=expected, received=github_header)

    seed_header = headers.get("x-webhook-signature")
    if seed_header is not None:
        expected = _hmac_hex(secret.encode(), body)
        given = seed_header.strip()
        given = given[7:] if given.lower().startswith("sha256=") else given
        if not given or any(c not in "0123456789abcdefABCDEF" for c in given):
            return result(SEED, False, "malformed X-Webhook-Signature: expected the hex HMAC-SHA256 of the body", expected=expected, received=seed_header)
        ok = _equal(given.lower(), expected)
        return result(SEED, ok, "signature does not match the body with this secret", expected=expected, received=seed_header)

    return SignatureCheck(None, "unsigned", "no signature header (X-Webhook-Signature, X-Hub-Signature-256, Stripe-Signature, webhook-signature)")


def sign(scheme: str | None, body: bytes, secret: str, headers: Mapping[str, str], now: float | None = None) -> dict[str, str]:
    """Headers that sign `body` with `secret` in `scheme` (for replays); unsigned originals get the seed's header."""
    now = int(time.time() if now is None else now)
    if scheme == STANDARD:
        prefix = "svix-" if "svix-signature" in headers else "webhook-"
        msg_id = headers.get(prefix + "id") or f"msg_{hashlib.sha256(body).hexdigest()[:24]}"
        signature = base64.b64encode(hmac.new(standard_key(secret), f"{msg_id}.{now}.".encode() + body, hashlib.sha256).digest()).decode()
        return {prefix + "id": msg_id, prefix + "timestamp": str(now), prefix + "signature": f"v1,{signature}"}
    if scheme == STRIPE:
        return {"stripe-signature": f"t={now},v1={_hmac_hex(secret.encode(), str(now).encode() + b'.' + body)}"}
    if scheme == GITHUB:
        return {"x-hub-signature-256": "sha256=" + _hmac_hex(secret.encode(), body)}
    return {"x-webhook-signature": _hmac_hex(secret.encode(), body)}
