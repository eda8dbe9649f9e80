"""The Hub: runs the servers it is handed (their specs) in the current event loop; the panel, headless mode, the
pytest plugin and tests share it."""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections import deque
from typing import Any, Callable, Mapping

from .clock import MockClock
from .control import clock_routes, state_routes
from .export import JournalWriter
from .faults import FaultInjector, policy_from_settings
from .journal import EventBus, Journal
from .runner import UvicornRunner
from .service import ServerContext
from .settings import Settings, SettingsError
from .spec import DomainError, Runner, ServerSpec
from .watchdog import Stall, Watchdog

UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.asgi")


class _LogRouter(logging.Handler):
    """uvicorn logs to process-wide loggers; each record goes to the Hub whose loop it was logged in (never to the
    terminal, never to another Hub in the same process)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.hubs: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Hub]" = weakref.WeakKeyDictionary()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            hub = self.hubs.get(asyncio.get_running_loop())
        except RuntimeError:  # logged outside any loop: no Hub's
            return
        if hub is None:
            return
        try:
            message = record.getMessage()
            if record.exc_info and record.exc_info[1] is not None:
                message += f": {type(record.exc_info[1]).__name__}: {record.exc_info[1]}"
            hub.log.append(message)
            hub.bus.event("mockpanel", "log", level=record.levelname.lower(), message=message)
        except Exception:  # pragma: no cover - logging must never raise
            pass


_log_router = _LogRouter()


def _route_uvicorn_logs() -> None:
    # python-multipart warns of every malformed form a client sends ("Expected boundary character…"); the client
    # already gets a 400 saying so, and the warnings went to stderr, over the panel.
    logging.getLogger("python_multipart").setLevel(logging.ERROR)
    for name in (*UVICORN_LOGGERS, "python_multipart"):
        logger = logging.getLogger(name)
        logger.propagate = False
        if _log_router not in logger.handlers:
            logger.addHandler(_log_router)


class Hub:
    """Runs every enabled server of `specs` in the current event loop."""

    def __init__(self, settings: Settings, specs: Mapping[str, ServerSpec], clock: Callable[[], float] = time.time,
                 loop_name: str = "event") -> None:
        self.settings = settings
        specs = {**specs, **settings.stub_specs}  # the stub servers of the configuration file
        self.specs = specs
        self.bus = EventBus()
        self.journal = Journal(self.bus, maxlen=settings.journal_size, max_bytes=settings.journal_mib * 1024 * 1024)
        self.log: deque[str] = deque(maxlen=200)
        self.watchdog = Watchdog(self._stalled, loop_name=loop_name)  # "servers'" under the panel: its loop is theirs alone
        self.runners: dict[str, Runner] = {}
        self.clock = MockClock(clock)  # every server's "now"; `clock` is the wall clock it moves from (tests inject one)
        self.clock.on_change = lambda state: self.bus.event("mockpanel", "clock", **state)
        self.closing = False  # set as stop begins: attached panels' event streams end
        from .panel_api import panel_routes
        from .network import Network, toxiproxy_router

        self.network = Network(self)  # TCP proxies to the user's services and every mock's network toxics
        attach = panel_routes(self)  # every server answers `mockpanel attach` (any server's URL attaches)
        toxiproxy = toxiproxy_router(self.network, "/__mockpanel/toxiproxy")  # and Toxiproxy's API, under its control API
        clock_api = clock_routes(self.clock)  # and the one clock's
        state_api = state_routes(self)  # and every mock's state, saved and loaded as one snapshot (state.py)
        for srv in settings.enabled():
            spec = specs[srv.name]
            preview = settings.body_preview_bytes
            ctx = ServerContext(
                name=spec.name,
                settings=srv,
                journal=self.journal.of(spec.name),
                faults=FaultInjector(policy_from_settings(srv.values)),
                render_error=spec.render_error,
                max_body_bytes=spec.max_body_bytes,
                preview_bytes=min(preview, spec.preview_bytes_limit) if spec.preview_bytes_limit is not None else preview,
                peers=self.urls,
                admin_token=settings.admin_token,
                admin_scope=settings.admin_token_scope,
                allowed_hosts=tuple(settings.allowed_hosts),
                trusted_proxies=tuple(settings.trusted_proxies),
                clock=self.clock,
                notices=settings.notices,
                watch=self.watchdog.current,
                loop_health=self.watchdog.summary,
                smtp_peer=self._smtp_peer,
            )
            ctx.control_routers.extend((attach, toxiproxy, clock_api, state_api))
            self.runners[srv.name] = (spec.runner or UvicornRunner)(spec, ctx)
        for name, proxy in settings.proxies.items():
            try:
                self.network.add_proxy(name, proxy["listen"], proxy["upstream"], proxy["enabled"], from_api=False)
            except DomainError as exc:
                raise SettingsError(f"[proxies.{name}]: {exc.message}") from None
        self._toxiproxy: Any = None  # Toxiproxy's API server, when toxiproxy_port is set
        self.scenario_run: Any = None  # the ScenarioRun in progress or last run
        self._writers: list[JournalWriter] = []

    def __getitem__(self, name: str) -> Runner:
        return self.runners[name]

    def __contains__(self, name: str) -> bool:
        return name in self.runners

    def facade(self, name: str) -> Any:
        """A running server's domain facade (users, storage, receiver, jobs), or None when it is not enabled."""
        runner = self.runners.get(name)
        return runner.facade if runner is not None else None

    def _smtp_peer(self) -> tuple[str, int] | None:
        """Where the mail server of this Hub takes SMTP, when one runs (the auth mock mails through it)."""
        for runner in self.runners.values():
            port = getattr(runner, "smtp_port", None)
            if port and runner.status == "running":
                host = runner.ctx.settings.host
                return ("127.0.0.1" if host in ("", "0.0.0.0", "::") else host, port)
        return None

    def urls(self) -> dict[str, str]:
        return {name: r.url for name, r in self.runners.items() if r.status == "running" and r.url}

    def failed(self) -> dict[str, str]:
        """What failed to start: servers, proxies (named "proxy NAME") and Toxiproxy's API."""
        found = {name: r.reason or "failed" for name, r in self.runners.items() if r.status == "failed"}
        found.update(self.network.failed())
        if self._toxiproxy is not None and self._toxiproxy.status == "failed":
            found["toxiproxy API"] = self._toxiproxy.reason or "failed"
        return found

    async def start(self) -> dict[str, str]:
        """Start every enabled server; returns {name: url} of those running (failures are in .failed())."""
        _route_uvicorn_logs()
        _log_router.hubs[asyncio.get_running_loop()] = self
        self.watchdog.start()
        await self._decide_auto_starts()
        await asyncio.gather(*(r.start() for r in self.runners.values()))
        await self.network.start()
        if self.settings.toxiproxy_port is not None:
            from .network import ToxiproxyServer

            self._toxiproxy = ToxiproxyServer(self.network, self.settings.host, self.settings.toxiproxy_port, tuple(self.settings.allowed_hosts),
                                              self.settings.admin_token)
            await self._toxiproxy.start()
        if self.settings.state:
            await self._load_state(self.settings.state)
        return self.urls()

    async def _load_state(self, path: str) -> None:
        """The snapshot --state names, loaded before anyone is told the servers are ready; one that cannot be
        loaded stops them all, and says why."""
        from pathlib import Path

        from .state import StateError, load

        try:
            await load(self, Path(path))
        except StateError as exc:
            await self.stop()
            raise SettingsError(f"state {path}: {exc.message}") from None

    @property
    def toxiproxy_url(self) -> str | None:
        return self._toxiproxy.url if self._toxiproxy is not None and self._toxiproxy.status == "running" else None

    async def _decide_auto_starts(self) -> None:
        """Servers nobody enabled or disabled start when their spec says so (the reference image API: when nothing
        else answers where the client app looks); the others stay off, with the reason among the notices."""
        for name in [n for n, r in self.runners.items() if r.ctx.settings.auto and self.specs[n].auto_start is not None]:
            reason = await self.specs[name].auto_start(self.settings)  # type: ignore[misc]
            if reason is not None:
                del self.runners[name]
                self.settings.servers[name].enabled = False
                if reason:
                    self.settings.notices.append(reason)

    def _stalled(self, stall: Stall) -> None:
        message = stall.describe()
        self.log.append(message)
        self.bus.event("mockpanel", "stall", message=message, stall_ms=round(stall.duration_ms), during_server=stall.server,
                       during_request=stall.request)

    async def stop(self) -> None:
        self.closing = True
        await self.watchdog.stop()
        await self.stop_scenario()
        await asyncio.gather(*(r.stop() for r in self.runners.values()))
        await self.network.stop()
        if self._toxiproxy is not None:
            await self._toxiproxy.stop()
        loop = asyncio.get_running_loop()
        if _log_router.hubs.get(loop) is self:
            del _log_router.hubs[loop]
        for writer in self._writers:
            writer.close()
        self._writers.clear()

    def write_journal(self, path: Any, redact: bool = False) -> JournalWriter:
        """Append every request from now on to `path` as JSON lines (closed when the Hub stops); `redact` masks
        credentials."""
        writer = JournalWriter(path, redact)
        self.bus.subscribe(writer)
        self._writers.append(writer)
        return writer

    async def start_scenario(self, scenario: Any) -> Any:
        """Run a Scenario from now (a running one is stopped first and its active steps reverted)."""
        await self.stop_scenario()
        self.scenario_run = scenario.start(self)
        return self.scenario_run

    async def stop_scenario(self) -> None:
        if self.scenario_run is not None:
            await self.scenario_run.stop()

    async def reset(self) -> None:
        """Every server back to its seed data, and the clock back to the wall clock."""
        if self.clock.virtual:
            self.clock.reset()
        for runner in self.runners.values():
            await runner.ctx.reset()
