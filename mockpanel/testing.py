"""Run a Hub on free ports in a background thread, for test suites (ours, and users' through the pytest plugin)."""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping

from .clock import change_from
from .faults import FaultPolicy, policy_from_settings
from .hub import Hub
from .hubclient import HubThread, as_source
from .journal import RequestEntry, change_source
from .settings import Settings, load_settings

SOURCE = "the pytest plugin"  # what serve's log and the panel say made the changes a test makes through these


def settings_for(
    only: Iterable[str],
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    config: Path | None = None,
    stubs: Mapping[str, Mapping[str, Any]] | None = None,
) -> Settings:
    """Settings for the named servers on free ports, ignoring the caller's environment unless `environ` is given.

    overrides: {"auth": {"jwt_secret": "x"}, "mockpanel": {"journal_size": 100}} with values as on the command line.
    config: a mockpanel.toml to read (its [stubs.NAME] servers among those `only` may name).
    stubs: stub servers declared here, {"payments": {"mappings": "/path/to/mappings"}} (relative paths: to `cwd`).
    """
    from .servers import SERVERS

    only = list(only)
    cli: dict[tuple[str, str], Any] = {(name, "port"): 0 for name in only}
    for section, values in (overrides or {}).items():
        for key, value in values.items():
            cli[(section, key)] = value
    return load_settings(SERVERS, cli=cli, only=only, environ=environ or {}, cwd=cwd or Path("/nonexistent-mockpanel-cwd"),
                         config_path=config, stubs=stubs)


class RunningHub:
    """A started Hub in its own event loop thread. Use as a context manager; `.urls[name]` is each server's base URL."""

    def __init__(self, settings: Settings, clock: Callable[[], float] | None = None) -> None:
        self.settings = settings
        self.wall_clock = clock  # the wall clock the mocks' clock moves from (tests inject one); time.time by default
        self._thread = HubThread("mockpanel-hub")
        self.loop = self._thread.loop
        self.hub: Hub | None = None
        self.urls: dict[str, str] = {}

    def call(self, coro: Any, timeout: float = 30) -> Any:
        """Run a coroutine in the Hub's loop and return its result (its changes are the pytest plugin's)."""
        async def sourced() -> Any:
            change_source.set(SOURCE)  # the task's own context
            return await coro

        return self._thread.submit(sourced()).result(timeout)

    def run(self, fn: Any, *args: Any, timeout: float = 30) -> Any:
        """Call a plain function in the Hub's loop (state must only be touched there); its changes are the pytest
        plugin's."""
        return self._thread.run(as_source, SOURCE, fn, *args, timeout=timeout)

    def start(self) -> "RunningHub":
        from .servers import SERVERS

        self._thread.start()

        async def start() -> Hub:
            hub = Hub(self.settings, SERVERS, **({"clock": self.wall_clock} if self.wall_clock else {}))
            self.hub = hub
            await hub.start()
            return hub

        try:
            self.call(start())
        except BaseException:
            self.stop()  # a bad setting or a failed build leaves no thread and no open socket behind
            raise
        self.urls = self.hub.urls()
        return self

    def stop(self) -> None:
        if self._thread.running and self.hub is not None:
            self.call(self.hub.stop())
        self._thread.stop()
        self.hub = None

    def __enter__(self) -> "RunningHub":
        return self if self.hub is not None else self.start()  # start_mocks(...) hands it over started

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def __getitem__(self, name: str):
        assert self.hub is not None
        return self.hub[name]


class MocksClock:
    """`mocks.clock`: the mocks' one clock (every server's "now": tokens, presigned URLs, lifecycle, webhook signatures,
    stub templates), moved from a test instead of waiting. Times are UTC; a naive datetime is taken as UTC.

        mocks.clock.advance(hours=1)          # every mock is an hour later (S3's lifecycle rules act)
        mocks.clock.set("2030-01-01T00:00:00Z", frozen=True)
        mocks.clock.freeze(); mocks.clock.resume(); mocks.clock.wall()   # back to the wall clock
    """

    def __init__(self, mocks: "RunningHub") -> None:
        self._mocks = mocks

    def _change(self, **change: Any) -> datetime:
        hub = self._mocks.hub
        assert hub is not None, "the mocks are not running"
        state = self._mocks.run(lambda: hub.clock.change(**change) if change else hub.clock.reset())
        return datetime.fromtimestamp(state["now"], timezone.utc)

    def now(self) -> datetime:
        """The mocks' time."""
        hub = self._mocks.hub
        assert hub is not None, "the mocks are not running"
        return datetime.fromtimestamp(self._mocks.run(hub.clock.now), timezone.utc)

    def state(self) -> dict[str, Any]:
        """As GET /__mockpanel/clock answers: now, wall, offset_s, frozen, virtual."""
        hub = self._mocks.hub
        assert hub is not None, "the mocks are not running"
        return self._mocks.run(hub.clock.state)

    def advance(self, delta: "timedelta | float" = 0, *, seconds: float = 0, minutes: float = 0, hours: float = 0, days: float = 0,
                weeks: float = 0) -> datetime:
        """Move the mocks' time by `delta` (a timedelta or seconds) plus the named units; negative goes back. The new now."""
        total = (delta.total_seconds() if isinstance(delta, timedelta) else float(delta)) + seconds + minutes * 60 + hours * 3600 \
            + days * 86_400 + weeks * 604_800
        return self._change(advance_s=total)

    def set(self, when: "datetime | float | str", *, frozen: bool | None = None) -> datetime:
        """Set the mocks' time (a datetime, epoch seconds or ISO 8601); `frozen` freezes it there (or lets it run)."""
        if isinstance(when, datetime):
            when = (when if when.tzinfo else when.replace(tzinfo=timezone.utc)).timestamp()
        return self._change(**change_from({"now": when, "frozen": frozen}))

    def freeze(self, at: "datetime | float | str | None" = None) -> datetime:
        """Stop the mocks' time (at `at`, or where it is)."""
        return self.set(at, frozen=True) if at is not None else self._change(frozen=True)

    def resume(self) -> datetime:
        """Let the mocks' time run on from where it was frozen."""
        return self._change(frozen=False)

    def wall(self) -> datetime:
        """Back to the wall clock."""
        return self._change()


class MocksMail:
    """`mocks.mail`: the mail the mocks caught (the `mail` server), from a test.

        message = mocks.mail.wait_for(to="ada@example.com", subject="Verify")   # Mailpit's message JSON
        link = mocks.mail.links(message)[0]
    """

    def __init__(self, mocks: "RunningHub") -> None:
        self._mocks = mocks

    def _mailbox(self) -> Any:
        hub = self._mocks.hub
        assert hub is not None and hub.facade("mail") is not None, "the mail server is not running here"
        return hub.facade("mail").mailbox

    def messages(self, query: str = "") -> list[dict[str, Any]]:
        """Summaries of the messages caught (newest first), or of those matching a Mailpit search."""
        box = self._mailbox()
        return self._mocks.run(lambda: [m.summary() for m in (box.search(query) if query else box.newest_first())])

    def wait_for(self, *, to: str | None = None, subject: str | None = None, query: str = "", timeout: float = 10) -> dict[str, Any]:
        """The newest message to `to` whose subject has `subject` (and matching `query`), waiting for it to arrive
        (woken by its arrival, not by polling); TimeoutError after `timeout` seconds. Mailpit's message JSON."""
        import threading
        import time as _time

        words = [query] if query else []
        if to:
            words.append(f"to:{to}")
        if subject:
            words.append(f'subject:"{subject}"')
        search = " ".join(words)
        box = self._mailbox()
        arrived = threading.Event()

        def listener(kind: str, data: Any) -> None:
            if kind == "new":
                arrived.set()

        self._mocks.run(box.listeners.append, listener)
        try:
            deadline = _time.monotonic() + timeout
            while True:
                arrived.clear()
                found = self._mocks.run(lambda: [m.full() for m in box.search(search)[:1]])
                if found:
                    return found[0]
                left = deadline - _time.monotonic()
                if left <= 0 or not arrived.wait(left):
                    raise TimeoutError(f"no message matching {search!r} within {timeout:g} s")
        finally:
            self._mocks.run(lambda: listener in box.listeners and box.listeners.remove(listener))

    def links(self, message: dict[str, Any]) -> list[str]:
        """The links in a message (its text and HTML), in order, each once."""
        box = self._mailbox()
        return self._mocks.run(lambda: box.get(message["ID"]).links())


class Mocks(RunningHub):
    """What the pytest plugin hands a test: running mocks, their URLs and settings, faults, the journal.

    Every method may be called from the test's thread; server state is only touched in the Hub's loop.
    """

    @property
    def clock(self) -> MocksClock:
        """The mocks' one clock: .advance(hours=1), .set(...), .freeze(), .resume(), .wall(), .now() (MocksClock)."""
        return MocksClock(self)

    @property
    def mail(self) -> MocksMail:
        """The mail the `mail` server caught: .wait_for(to=..., subject=...), .links(message), .messages(query)."""
        return MocksMail(self)

    def save_state(self, path: "str | Path") -> dict[str, Any]:
        """Save everything the mocks hold (users, keys, buckets and objects, webhooks, stub mappings, faults, toxics,
        the clock) to `path`: a directory, or one archive when it ends in .tar. What was written: counts."""
        from .state import save

        assert self.hub is not None
        return self.call(save(self.hub, Path(path)), timeout=3600)

    def load_state(self, path: "str | Path") -> dict[str, Any]:
        """Load a snapshot (a directory or a .tar archive) into the running mocks, all or nothing; raises
        mockpanel.state.StateError (one line: which file, why) and changes nothing when it cannot."""
        from .state import load

        assert self.hub is not None
        return self.call(load(self.hub, Path(path)), timeout=3600)

    def url(self, server: str) -> str:
        """Base URL of a running server, e.g. http://127.0.0.1:41234."""
        try:
            return self.urls[server]
        except KeyError:
            raise KeyError(f"{server!r} is not running here; running: {', '.join(self.urls) or 'none'}") from None

    def setting(self, server: str, key: str) -> Any:
        """A server's effective setting, e.g. mocks.setting("auth", "jwt_secret")."""
        return self.settings.servers[server][key]

    def reset(self) -> None:
        """Seed data back, faults back to the starting settings, journal emptied: a clean slate for the next test."""
        assert self.hub is not None
        self.call(self.hub.stop_scenario())
        self.call(self.hub.reset())

        def restore() -> None:
            for runner in self.hub.runners.values():
                runner.ctx.faults.replace(policy_from_settings(runner.ctx.settings.values))
            self.hub.network.clear_toxics()
            self.hub.journal.clear()

        self.run(restore)

    @contextlib.contextmanager
    def faults(self, server: str, **policy: Any) -> Iterator[FaultPolicy]:
        """Switch faults on for the `with` block (fields as in FaultPolicy, e.g. fail_next=2, fail_next_code=503),
        then put the previous policy back. Raises pydantic.ValidationError on bad values, before anything changes."""
        injector = self[server].ctx.faults
        before = self.run(lambda: injector.policy)
        applied = self.run(lambda: injector.update(**policy))
        try:
            yield applied
        finally:
            self.run(injector.replace, before)

    @contextlib.contextmanager
    def toxic(self, target: str, type: str, *, stream: str = "downstream", toxicity: float = 1.0, seed: int | None = None,
              **attributes: int) -> Iterator[Any]:
        """A network toxic on a mock's connections (or a proxy's) for the `with` block: mocks.toxic("s3", "latency",
        latency=300), mocks.toxic("auth", "reset_peer", timeout=0), mocks.toxic("s3", "bandwidth", stream="upstream",
        rate=50). Raises mockpanel.spec.DomainError on a toxic it cannot make, before anything changes."""
        assert self.hub is not None
        network = self.hub.network
        data = {"type": type, "stream": stream, "toxicity": toxicity, "attributes": attributes, "seed": seed}
        made = self.run(network.add_toxic, target, data)
        try:
            yield made
        finally:
            self.run(lambda: made.name in network.toxics(target).toxics and network.remove_toxic(target, made.name))

    @contextlib.contextmanager
    def scenario(self, source: "str | Path") -> Iterator[Any]:
        """Run a scenario for the `with` block, timed from now: a TOML file's path, or TOML text. Its active steps
        are undone when the block ends. Raises mockpanel.scenario.ScenarioError (one line) when it does not fit."""
        from .scenario import load_scenario, parse_scenario, tomllib

        assert self.hub is not None
        running = list(self.hub.runners)
        if isinstance(source, str) and ("\n" in source or "[[step]]" in source):
            loaded = parse_scenario(tomllib.loads(source), running, default_name="inline")
        else:
            loaded = load_scenario(Path(source), running)
        run = self.call(self.hub.start_scenario(loaded))
        try:
            yield run
        finally:
            self.call(self.hub.stop_scenario())

    def requests(self, server: str | None = None, *, method: str | None = None, path: str | None = None,
                 status: int | None = None) -> list[RequestEntry]:
        """Journal entries (oldest first) since the last reset, filtered; `path` is a substring."""
        assert self.hub is not None
        return self.run(lambda: self.hub.journal.query(server=server, method=method, path=path, status=status))

    def trace(self, key: str) -> list[RequestEntry]:
        """The journaled hops of one trace across every server, in the order they started: `key` is a trace id or an
        X-Request-ID that one of its requests carried. Each hop has .server, .method, .path, .status, .fault,
        .trace_id, .span_id and .parent_id (the caller's span). Empty when nothing matches."""
        assert self.hub is not None
        journal = self.hub.journal
        return self.run(lambda: journal.trace(journal.find_trace(key) or ""))

    def webhook_plan(self, client_id: str, plan: str | None) -> None:
        """How the webhook receiver answers `client_id`: "500+200", "503x3+200", "delay=2000", "timeout"; None clears it.
        Raises mockpanel.spec.Invalid on a plan it cannot read."""
        receiver = self.facade("webhooks")
        self.run(receiver.set_plan, client_id, plan)

    def oidc_tokens(self, user: str | None = None, client_id: str = "test-client", *, issuer: str = "",
                    scope: str = "openid profile email", audience: str | None = None) -> dict[str, Any]:
        """Tokens from the auth mock's OIDC issuer without a flow: a user's (id or e-mail: access, ID and refresh
        token in a new session), or without a user the client's own (client credentials). As the token endpoint
        answers: {"access_token", "id_token", "refresh_token", "expires_in", ...}."""
        provider = self.facade("auth").oidc
        found = self.run(provider.named, issuer)
        return self.run(lambda: provider.token_for(found, provider.url(self.url("auth"), found.name), user, client_id, scope, audience))

    @contextlib.contextmanager
    def token_faults(self, issuer: str = "", **faults: Any) -> Iterator[dict[str, Any]]:
        """OIDC token faults for the `with` block (expired=True, audience="x", clock_skew_s=-300, unknown_kid=True, …),
        then the issuer's faults as they were. Raises mockpanel.spec.Invalid on an unknown fault, before anything changes."""
        provider = self.facade("auth").oidc
        found = self.run(provider.named, issuer)
        before = self.run(lambda: dict(found.faults))
        applied = self.run(provider.set_faults, found, faults)
        try:
            yield applied
        finally:
            self.run(provider.set_faults, found, before, True)

    def facade(self, server: str) -> Any:
        """A running server's domain facade (Accounts, Storage, Receiver, UploadHistory, ImageJobs): call its
        methods through .run(...), in the Hub's loop."""
        self.url(server)  # a clear error when it is not running
        assert self.hub is not None
        return self.hub.facade(server)


def start_mocks(only: Iterable[str], overrides: Mapping[str, Mapping[str, Any]] | None = None, config: Path | None = None,
                stubs: Mapping[str, Mapping[str, Any]] | None = None) -> Mocks:
    """Start the named servers on free ports in a background thread; call .stop() (or use `with`) when done.
    `config`: a mockpanel.toml whose [stubs.NAME] servers `only` may name; `stubs`: stub servers declared here
    ({"payments": {"openapi": "/abs/payments.yaml"}}; relative paths are taken from the working directory)."""
    return Mocks(settings_for(only, overrides, config=config, stubs=stubs, cwd=Path.cwd() if stubs else None)).start()
