"""The webhook receiver's records: response plans, client configuration, and the events it stores."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ...timefmt import iso
from .signatures import SignatureCheck


MAX_PLANNED_ATTEMPTS = 1000  # statuses a plan lists: enough for any retry policy, small enough to hold


class ResponsePlan(BaseModel):
    """How the receiver answers one client: `statuses` for the first attempts of each delivery, then `then`."""

    model_config = ConfigDict(extra="forbid")

    statuses: list[Annotated[int, Field(ge=200, le=599)]] = Field(
        default_factory=list, max_length=MAX_PLANNED_ATTEMPTS, description="status for attempt 1, 2, ... of a delivery (200-599)")
    then: int = Field(200, ge=200, le=599, description="status once the list is used up")
    delay_ms: int = Field(0, ge=0, le=600_000, description="wait this long before answering")
    timeout: bool = Field(False, description="never answer: hold the request until the sender gives up")

    def status_for(self, attempt: int) -> int:
        return self.statuses[attempt - 1] if attempt <= len(self.statuses) else self.then

    def describe(self) -> str:
        """The plan in the form `parse` reads: 500x3+200, delay=2000, timeout."""
        parts: list[str] = []
        run: list[int] = []
        for status in [*self.statuses, None]:
            if run and status != run[0]:
                parts.append(f"{run[0]}x{len(run)}" if len(run) > 1 else str(run[0]))
                run = []
            if status is not None:
                run.append(status)
        if self.delay_ms:
            parts.append(f"delay={self.delay_ms}")
        if self.timeout:
            parts.append("timeout")
        else:
            parts.append(str(self.then))
        return "+".join(parts)

    @classmethod
    def parse(cls, spec: str) -> "ResponsePlan":
        """'500x3+200', 'delay=2000', 'timeout', '503+429+200'. Raises ValueError, in words, on anything else."""
        statuses: list[int] = []
        then, delay, timeout = 200, 0, False
        tokens = [t for t in spec.replace(" ", "").split("+") if t]
        if len(spec) > 200 or not tokens:
            raise ValueError(f"{spec[:40]!r} is not a plan like 500x3+200, delay=2000 or timeout")
        for i, token in enumerate(tokens):
            if token == "timeout":
                timeout = True
            elif token.startswith("delay="):
                delay = _number(token[6:], spec)
            elif "x" in token:
                code, count = token.split("x", 1)
                times = _number(count, spec)
                if times > MAX_PLANNED_ATTEMPTS or len(statuses) + times > MAX_PLANNED_ATTEMPTS:
                    raise ValueError(f"a plan lists at most {MAX_PLANNED_ATTEMPTS} attempts")
                statuses += [_number(code, spec)] * times
            elif i == len(tokens) - 1:
                then = _number(token, spec)
            else:
                statuses.append(_number(token, spec))
        try:
            return cls(statuses=statuses, then=then, delay_ms=delay, timeout=timeout)
        except ValidationError as exc:
            raise ValueError(f"{spec!r}: {exc.errors()[0]['msg'].lower()} (statuses 200-599, delay up to 600000 ms)") from None


def _number(text: str, spec: str) -> int:
    if not (text.isascii() and text.isdigit() and len(text) <= 6):  # digits bounded before conversion
        raise ValueError(f"{spec[:40]!r} is not a plan like 500x3+200, delay=2000 or timeout")
    return int(text)


class ClientConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    secret: str | None = Field(None, min_length=1, max_length=1024, description="this client's secret (else the global WEBHOOK_SECRET)")
    require_signature: bool | None = Field(None, description="override of REQUIRE_SIGNATURE for this client")
    plan: ResponsePlan | None = None


@dataclass
class WebhookEvent:
    id: str
    client_id: str
    received_at: float
    method: str
    query: str
    headers: list[tuple[str, str]]
    body: bytes
    source: str | None
    event_type: str | None
    signature: SignatureCheck
    delivery_key: str
    attempt: int
    gap_s: float | None
    response_status: int | None = None  # None: held until the sender gave up
    replays: list[dict[str, Any]] = field(default_factory=list)

    @property
    def content_type(self) -> str | None:
        return next((v for k, v in self.headers if k == "content-type"), None)

    def body_text(self) -> str | None:
        try:
            return self.body.decode("utf-8")
        except UnicodeDecodeError:
            return None

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "client_id": self.client_id,
            "received_at": iso(self.received_at),
            "event_type": self.event_type,
            "size": len(self.body),
            "content_type": self.content_type,
            "source": self.source,
            "signature": {"scheme": self.signature.scheme, "verdict": self.signature.verdict, "reason": self.signature.reason},
            "delivery": {"key": self.delivery_key, "attempt": self.attempt, "gap_s": self.gap_s},
            "response_status": self.response_status,
        }

    def preview(self, limit: int = 16 * 1024) -> tuple[str, int]:
        """The body as a person reads it, in bounded time whatever its size: pretty JSON when the body is small
        enough to format at once, else its first `limit` bytes as text. Returns (text, bytes left out)."""
        if len(self.body) <= limit:
            text = self.body_text()
            if text is None:
                return self.body.hex(" "), 0
            if text.lstrip()[:1] in ("{", "["):
                try:
                    return json.dumps(json.loads(text), indent=2, ensure_ascii=False)[: 4 * limit], 0
                except ValueError:
                    pass
            return text, 0
        head = self.body[:limit]
        return head.decode("utf-8", "replace"), len(self.body) - limit

    def full(self) -> dict[str, Any]:
        text = self.body_text()
        parsed = None
        if text is not None:
            try:
                parsed = json.loads(text)
            except ValueError:
                parsed = None
        return {
            **self.summary(),
            "method": self.method,
            "query": self.query,
            "headers": [[k, v] for k, v in self.headers],
            "body": text if text is not None else base64.b64encode(self.body).decode(),
            "body_encoding": "utf-8" if text is not None else "base64",
            "json": parsed,
            "signature": self.signature.as_dict(),
            "replays": self.replays,
        }


def event_type_of(body: bytes, headers: dict[str, str]) -> str | None:
    if "x-github-event" in headers:
        return headers["x-github-event"]
    stripped = body.lstrip()
    if stripped[:1] == b"{":
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return None
        for name in ("event_type", "type", "event"):
            value = data.get(name) if isinstance(data, dict) else None
            if isinstance(value, str):
                return value
    return None


