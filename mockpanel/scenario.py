"""Scenarios: timed, seeded fault schedules from a TOML file, run by the Hub in its loop.

    name = "flaky storage"
    seed = 7                       # optional: step N gets seed 7 + N unless it sets its own

    [[step]]
    at = "5s"                      # from the moment the servers are ready (number = seconds; "500ms", "2m")
    server = "s3"
    for = "10s"                    # optional: afterwards the server's policy is what it was before the step
    faults = { error_rate = 0.3, error_codes = [503] }

    [[step]]
    at = 0
    server = "webhooks"
    faults = { fail_next = 3 }     # the first 3 deliveries get 500

    [[step]]
    at = "30s"
    server = "auth"
    for = "1m"
    token_faults = { expired = true }   # the OIDC issuer's token faults (issuer = "tenant-a" for a named one)

    [[step]]
    at = "1m"
    clock = { advance_s = 3600 }   # the mocks' one clock, every server's (now, advance_s, frozen: as PUT /__mockpanel/clock)

A step changes the named fields of the server's fault policy (the others stay), or of the auth server's OIDC token
faults. Every fault a step caused is
journaled with the step: `error_rate:503 (scenario flaky storage, step 1)`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from pydantic import ValidationError

from .faults import FaultPolicy
from .journal import change_source
from .spec import ScenarioError

if TYPE_CHECKING:  # pragma: no cover
    from .faults import FaultInjector
    from .hub import Hub

try:
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    import tomli as tomllib


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m)?\s*$")


def parse_duration(raw: Any) -> float:
    """Seconds from 5, 2.5, "500ms", "5s" or "2m"."""
    if isinstance(raw, bool):
        raise ValueError("expected a duration like 5, \"500ms\", \"5s\" or \"2m\"")
    if isinstance(raw, (int, float)):
        if raw < 0:
            raise ValueError("a duration cannot be negative")
        return float(raw)
    match = _DURATION.match(str(raw))
    if not match:
        raise ValueError(f"{raw!r} is not a duration like 5, \"500ms\", \"5s\" or \"2m\"")
    value, unit = float(match.group(1)), match.group(2) or "s"
    return value / 1000 if unit == "ms" else value * 60 if unit == "m" else value


@dataclass(frozen=True)
class Step:
    number: int  # 1-based, in file order
    at_s: float
    server: str
    faults: dict[str, Any]
    for_s: float | None
    source: str  # how the journal names it
    token_faults: dict[str, Any] | None = None  # the auth server's OIDC token faults
    issuer: str = ""  # which OIDC issuer's ("" the default one)
    toxics: tuple[dict[str, Any], ...] = ()  # network toxics on the server's connections (Toxiproxy's JSON shape)
    clock: dict[str, Any] | None = None  # a change of the mocks' one clock (clock.py): now, advance_s, frozen

    def describe(self) -> str:
        if self.clock is not None:
            return f"step {self.number} at {self.at_s:g}s: the clock " + ", ".join(f"{k}={v}" for k, v in self.clock.items())
        fields = ", ".join([f"{k}={v}" for k, v in {**self.faults, **(self.token_faults or {})}.items()]
                           + [f"toxic {t['type']}" for t in self.toxics])
        span = f" for {self.for_s:g}s" if self.for_s is not None else ""
        return f"step {self.number} at {self.at_s:g}s: {self.server} {fields}{span}"


@dataclass(frozen=True)
class Scenario:
    name: str
    steps: tuple[Step, ...]
    path: Path | None = None
    source: str = ""  # the TOML text it was read from

    def start(self, hub: "Hub") -> "ScenarioRun":
        """Run it in the Hub's loop, timed from now (Hub.start_scenario stops a previous run first)."""
        return ScenarioRun(hub, self).start()

    def timeline(self) -> list[tuple[float, str, Step]]:
        """(seconds from the start, "apply" or "revert", step), in the order they happen."""
        events = [(s.at_s, "apply", s) for s in self.steps] + [(s.at_s + s.for_s, "revert", s) for s in self.steps if s.for_s is not None]
        # at equal times a revert goes first, so a step that follows another on the same server is not undone by it
        events.sort(key=lambda item: (item[0], item[1] != "revert", item[2].number))
        return events


STEP_KEYS = {"at", "server", "for", "faults", "token_faults", "issuer", "toxics", "clock"}


def parse_scenario(data: dict[str, Any], servers: Iterable[str], *, default_name: str = "scenario", path: Path | None = None) -> Scenario:
    where = str(path) if path else "scenario"
    unknown = set(data) - {"name", "seed", "step"}
    if unknown:
        raise ScenarioError(f"{where}: unknown key(s) {', '.join(sorted(unknown))} (expected name, seed and [[step]] tables)")
    name = str(data.get("name") or default_name)
    seed = data.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise ScenarioError(f"{where}: seed must be a whole number")
    raw_steps = data.get("step")
    if not isinstance(raw_steps, list) or not raw_steps:
        raise ScenarioError(f"{where}: no steps (add [[step]] tables with at, server and faults)")
    servers = list(servers)
    steps = []
    for number, raw in enumerate(raw_steps, 1):
        here = f"{where}: step {number}"
        if not isinstance(raw, dict):
            raise ScenarioError(f"{here}: expected a table")
        unknown = set(raw) - STEP_KEYS
        if unknown:
            raise ScenarioError(f"{here}: unknown key(s) {', '.join(sorted(unknown))} (expected {', '.join(sorted(STEP_KEYS))})")
        if "clock" in raw:
            steps.append(_clock_step(raw, number, name, here))
            continue
        server = raw.get("server")
        if server not in servers:
            raise ScenarioError(f"{here}: server {server!r} is not running (running: {', '.join(servers) or 'none'})")
        try:
            at_s = parse_duration(raw.get("at", 0))
            for_s = parse_duration(raw["for"]) if "for" in raw else None
        except ValueError as exc:
            raise ScenarioError(f"{here}: {exc}") from None
        token_faults, issuer = _token_faults(raw, server, here)
        toxics = _toxics(raw, number, here)
        faults = raw.get("faults", {} if token_faults or toxics else None)
        if not isinstance(faults, dict) or not (faults or token_faults or toxics):
            raise ScenarioError(f"{here}: faults must be a table of fault policy fields, e.g. {{ error_rate = 0.3 }}")
        faults = dict(faults)
        if faults and seed is not None and "seed" not in faults:
            faults["seed"] = seed + number
        try:
            FaultPolicy.model_validate(faults)
        except ValidationError as exc:
            first = exc.errors()[0]
            loc = ".".join(str(part) for part in first["loc"]) or "faults"
            raise ScenarioError(f"{here}: faults.{loc}: {first['msg']}") from None
        steps.append(Step(number, at_s, server, faults, for_s, f"scenario {name}, step {number}", token_faults, issuer, toxics))
    return Scenario(name, tuple(steps), path)


def _clock_step(raw: dict[str, Any], number: int, name: str, here: str) -> Step:
    """A step that moves the mocks' one clock: `clock = { advance_s = 3600 }` (or now, frozen); every server's, so no
    server, and no `for` (the clock is not put back: a reset or DELETE /__mockpanel/clock does that)."""
    from .clock import change_from
    from .spec import DomainError

    extra = sorted(set(raw) - {"at", "clock"})
    if extra:
        raise ScenarioError(f"{here}: a clock step has only at and clock (the clock is every server's): "
                            f"{', '.join(extra)} go in a step of their own")
    try:
        at_s = parse_duration(raw.get("at", 0))
        change = change_from(raw["clock"])
    except (ValueError, DomainError) as exc:
        raise ScenarioError(f"{here}: clock: {exc}") from None
    return Step(number, at_s, "", {}, None, f"scenario {name}, step {number}", clock=change)


def _toxics(raw: dict[str, Any], number: int, here: str) -> tuple[dict[str, Any], ...]:
    """A step's network toxics, checked as Toxiproxy's API checks them; unnamed ones are named after the step."""
    from .toxics import ToxicError, parse_toxic

    found = raw.get("toxics", [])
    if not isinstance(found, list) or len(found) > 32:
        raise ScenarioError(f"{here}: toxics is a list of tables, e.g. [{{ type = \"latency\", attributes = {{ latency = 300 }} }}]")
    checked = []
    for i, toxic in enumerate(found, 1):
        if isinstance(toxic, dict) and "name" not in toxic:
            toxic = {**toxic, "name": f"step{number}-{i}-{toxic.get('type')}"}
        try:
            checked.append(parse_toxic(toxic).as_json())
        except ToxicError as exc:
            raise ScenarioError(f"{here}: toxics[{i}]: {exc}") from None
    return tuple(checked)


def _token_faults(raw: dict[str, Any], server: str, here: str) -> tuple[dict[str, Any] | None, str]:
    """A step's OIDC token faults (auth only), checked as the control API checks them."""
    from .servers.oidc import check_faults, issuer_name
    from .spec import DomainError

    if "token_faults" not in raw:
        if "issuer" in raw:
            raise ScenarioError(f"{here}: issuer goes with token_faults")
        return None, ""
    if server != "auth":
        raise ScenarioError(f"{here}: token_faults are the auth server's (server = \"auth\")")
    token_faults, issuer = raw["token_faults"], raw.get("issuer", "")
    try:
        if not isinstance(token_faults, dict) or not token_faults:
            raise ScenarioError(f"{here}: token_faults must be a table, e.g. {{ expired = true }}")
        check_faults(token_faults)
        if issuer:
            issuer_name(str(issuer))
    except DomainError as exc:
        raise ScenarioError(f"{here}: {exc}") from None
    return dict(token_faults), str(issuer)


def read_scenario(text: str, servers: Iterable[str], path: Path | None = None) -> Scenario:
    """A scenario from its TOML text (read from `path`, which names it and its errors); it keeps the text, which is
    what an attached panel sends the mocks to run."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{path or 'scenario'}: not valid TOML: {exc}") from None
    scenario = parse_scenario(data, servers, default_name=path.stem if path else "scenario", path=path)
    return dataclasses.replace(scenario, source=text)


def load_scenario(path: Path, servers: Iterable[str]) -> Scenario:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ScenarioError(f"{path}: not valid TOML: {exc}") from None
    return read_scenario(text, servers, Path(path))


class ScenarioRun:
    """One run of a scenario in the Hub's loop: applies and reverts steps on time; stop() reverts what is active."""

    def __init__(self, hub: "Hub", scenario: Scenario) -> None:
        self.hub = hub
        self.scenario = scenario
        self.started_at: float | None = None
        self.done_steps: list[int] = []
        self.finished = False
        self.stopped = False
        self._saved: dict[int, tuple[FaultPolicy, str | None]] = {}
        self._saved_tokens: dict[int, dict[str, Any]] = {}  # token faults before a step, and as the step left them
        self._applied_tokens: dict[int, dict[str, Any]] = {}
        self._task: asyncio.Task | None = None

    def start(self) -> "ScenarioRun":
        loop = asyncio.get_running_loop()
        self.started_at = loop.time()
        self.hub.bus.event("mockpanel", "scenario", message=f"scenario {self.scenario.name}: started ({len(self.scenario.steps)} steps)")
        timeline = self.scenario.timeline()
        # Steps at 0 are in force when start() returns: a request sent right after starting meets them.
        now = 0
        token = change_source.set(f"scenario {self.scenario.name}")
        try:
            while now < len(timeline) and timeline[now][0] == 0 and timeline[now][1] == "apply":
                if timeline[now][2].clock is not None or timeline[now][2].server in self.hub.runners:
                    self._apply(timeline[now][2])
                now += 1
            # the task copies this context: every later step is the scenario's doing too
            self._task = loop.create_task(self._run(timeline[now:]), name=f"mockpanel-scenario-{self.scenario.name}")
        finally:
            change_source.reset(token)
        return self

    def elapsed(self) -> float:
        return asyncio.get_running_loop().time() - self.started_at if self.started_at is not None else 0.0

    def describe(self) -> str:
        done = f"{len(self.done_steps)}/{len(self.scenario.steps)} steps applied"
        state = "stopped" if self.stopped else "finished" if self.finished else f"{self.elapsed():.0f}s in"
        return f"scenario {self.scenario.name}: {done}, {state}"

    def _injector(self, step: Step) -> "FaultInjector":
        return self.hub[step.server].ctx.faults

    def _issuer(self, step: Step) -> Any:
        facade = self.hub.facade(step.server)
        return facade.oidc, facade.oidc.issuer(step.issuer, create=True)

    def _apply(self, step: Step) -> None:
        if step.clock is not None:
            self.hub.clock.change(**step.clock)
            self.done_steps.append(step.number)
            self.hub.bus.event("mockpanel", "scenario", message=f"scenario {self.scenario.name}: {step.describe()}", step=step.number)
            return
        injector = self._injector(step)
        self._saved[step.number] = (injector.policy, injector.source)
        if step.faults:
            injector.update(**step.faults)
            injector.source = step.source
        if step.toxics:
            from .toxics import parse_toxic

            toxics = self.hub[step.server].ctx.toxics
            for toxic in step.toxics:
                if toxic["name"] in toxics.toxics:
                    toxics.remove(toxic["name"])
                toxics.add(parse_toxic(toxic))
        if step.token_faults:
            provider, issuer = self._issuer(step)
            self._saved_tokens[step.number] = dict(issuer.faults)
            self._applied_tokens[step.number] = provider.set_faults(issuer, step.token_faults)
        self.done_steps.append(step.number)
        self.hub.bus.event("mockpanel", "scenario", message=f"scenario {self.scenario.name}: {step.describe()}", step=step.number)

    def _revert(self, step: Step) -> None:
        saved = self._saved.pop(step.number, None)
        saved_tokens, applied = self._saved_tokens.pop(step.number, None), self._applied_tokens.pop(step.number, None)
        if saved_tokens is not None:
            provider, issuer = self._issuer(step)
            if issuer.faults == applied:  # unchanged since the step: back to before it; otherwise theirs stays
                provider.set_faults(issuer, saved_tokens, replace=True)
        toxics = self.hub[step.server].ctx.toxics
        for toxic in step.toxics:  # the step's own toxics go; any other stays
            if toxic["name"] in toxics.toxics:
                toxics.remove(toxic["name"])
        injector = self._injector(step)
        if saved is None or not step.faults or injector.source != step.source:
            return  # someone changed the policy since (the panel, the control API, a later step): theirs stays
        injector.replace(saved[0])
        injector.source = saved[1]
        self.hub.bus.event("mockpanel", "scenario", message=f"scenario {self.scenario.name}: step {step.number} ended, {step.server} back to its policy", step=step.number)

    async def _run(self, timeline: list[tuple[float, str, Step]]) -> None:
        loop = asyncio.get_running_loop()
        for at_s, action, step in timeline:
            wait = self.started_at + at_s - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if step.clock is None and step.server not in self.hub.runners:
                continue
            if action == "apply":
                self._apply(step)
            else:
                self._revert(step)
        self.finished = True
        self.hub.bus.event("mockpanel", "scenario", message=f"scenario {self.scenario.name}: finished")

    async def stop(self) -> None:
        if self._task is not None and not self._task.done():
            self.stopped = True
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for number in sorted(self._saved, reverse=True):
            self._revert(self.scenario.steps[number - 1])
