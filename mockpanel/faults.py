"""Fault policy: what a server does wrong on purpose (delays, errors, drops, hangs) and how that is decided per request."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Callable

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .wire import record

@record
class FaultPolicy(BaseModel):
    """The policy as the control API shows it: flat JSON, every field validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    delay_enabled: bool = False
    min_delay_ms: int = Field(50, ge=0, le=3_600_000)
    max_delay_ms: int = Field(200, ge=0, le=3_600_000)
    error_rate: float = Field(0.0, ge=0.0, le=1.0)
    error_codes: list[int] = Field(default_factory=lambda: [500], min_length=1)
    fail_next: int = Field(0, ge=0)
    fail_next_code: int = Field(500, ge=400, le=599)
    drop_rate: float = Field(0.0, ge=0.0, le=1.0)
    hang_rate: float = Field(0.0, ge=0.0, le=1.0)
    seed: int | None = None

    @model_validator(mode="after")
    def _check(self) -> "FaultPolicy":
        if self.min_delay_ms > self.max_delay_ms:
            raise ValueError("min_delay_ms must not exceed max_delay_ms")
        for code in self.error_codes:
            if not 400 <= code <= 599:
                raise ValueError(f"error_codes: {code} is not an HTTP error status (400-599)")
        return self

    @property
    def active(self) -> bool:
        return bool(self.delay_enabled or self.error_rate or self.fail_next or self.drop_rate or self.hang_rate)

    def describe(self) -> list[str]:
        """Short labels of what is switched on, for status lines."""
        parts = []
        if self.delay_enabled:
            parts.append(f"delay {self.min_delay_ms}-{self.max_delay_ms}ms")
        if self.error_rate:
            parts.append(f"errors {self.error_rate:.0%} {','.join(map(str, self.error_codes))}")
        if self.fail_next:
            parts.append(f"fail next {self.fail_next} ({self.fail_next_code})")
        if self.drop_rate:
            parts.append(f"drop {self.drop_rate:.0%}")
        if self.hang_rate:
            parts.append(f"hang {self.hang_rate:.0%}")
        return parts


@dataclass(slots=True)
class FaultDecision:
    """What to do to one request. `status` set means answer with an error instead of the server."""

    label: str
    delay_s: float = 0.0
    status: int | None = None
    drop: bool = False
    hang: bool = False


class FaultInjector:
    """Holds one server's live policy and its RNG; a change takes effect on the next request."""

    def __init__(self, policy: FaultPolicy | None = None) -> None:
        self._policy = policy or FaultPolicy()
        self.active = self._policy.active  # read on every request: kept as a plain attribute
        self._rng = random.Random(self._policy.seed)
        self.source: str | None = None  # who set the policy, when not a person (a scenario step); journaled with each fault
        self.on_change: Callable[[FaultPolicy], None] | None = None  # told of every change (the server sends an event)

    @property
    def policy(self) -> FaultPolicy:
        return self._policy

    def replace(self, policy: FaultPolicy) -> FaultPolicy:
        """Set the policy (a scenario names itself in .source afterwards; any other change is a person's)."""
        self._policy = policy
        self.active = policy.active
        self._rng = random.Random(policy.seed)
        self.source = None
        self._changed()
        return policy

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change(self._policy)

    def update(self, **changes: Any) -> FaultPolicy:
        """Change some fields (validated as a whole); raises pydantic.ValidationError on bad values."""
        merged = self._policy.model_dump() | changes
        return self.replace(FaultPolicy.model_validate(merged))

    def clear(self) -> FaultPolicy:
        """All chaos off; keeps the delay bounds and codes so switching back on is one toggle."""
        p = self._policy
        return self.replace(
            FaultPolicy(min_delay_ms=p.min_delay_ms, max_delay_ms=p.max_delay_ms, error_codes=p.error_codes, fail_next_code=p.fail_next_code, seed=p.seed)
        )

    def decide(self, simulate_error: int | None = None) -> FaultDecision | None:
        """Decide the fault for one request. Order: fail-next, simulate_error, drop, hang, error rate; a delay goes with any."""
        if simulate_error is None and not self.active:
            return None
        decision = self._decide(simulate_error)
        if decision is not None and self.source is not None and not decision.label.startswith("simulate_error"):
            decision.label = f"{decision.label} ({self.source})"
        return decision

    def _decide(self, simulate_error: int | None) -> FaultDecision | None:
        p = self._policy
        rng = self._rng
        delay = rng.uniform(p.min_delay_ms, p.max_delay_ms) / 1000 if p.delay_enabled else 0.0
        if p.fail_next:
            # The count lives in the policy so GET /__mockpanel/faults shows what is left.
            self._policy = p.model_copy(update={"fail_next": p.fail_next - 1})
            self.active = self._policy.active
            self._changed()
            return FaultDecision(f"fail_next:{p.fail_next_code}", delay, status=p.fail_next_code)
        if simulate_error is not None:
            return FaultDecision(f"simulate_error:{simulate_error}", delay, status=simulate_error)
        if p.drop_rate and rng.random() < p.drop_rate:
            return FaultDecision("drop", delay, drop=True)
        if p.hang_rate and rng.random() < p.hang_rate:
            return FaultDecision("hang", delay, hang=True)
        if p.error_rate and rng.random() < p.error_rate:
            code = p.error_codes[0] if len(p.error_codes) == 1 else rng.choice(p.error_codes)
            return FaultDecision(f"error_rate:{code}", delay, status=code)
        if delay:
            return FaultDecision(f"delay:{delay * 1000:.0f}ms", delay)
        return None


def policy_from_settings(values: dict[str, Any]) -> FaultPolicy:
    """The starting policy of a server from its settings (seed 000's SIMULATE_DELAYS, ERROR_RATE, ...)."""
    return FaultPolicy(
        delay_enabled=values["simulate_delays"],
        min_delay_ms=values["min_delay_ms"],
        max_delay_ms=values["max_delay_ms"],
        error_rate=values["error_rate"],
        error_codes=list(values["error_codes"]),
        seed=values["fault_seed"],
    )
