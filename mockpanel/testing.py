"""Run a Hub on free ports in a background thread, for test suites (ours, and users' through the pytest plugin)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from pathlib import Path
from typing import Any, Iterable, Mapping

from .hub import Hub
from .settings import Settings, load_settings


def settings_for(
    only: Iterable[str],
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Settings:
    """Settings for the named servers on free ports, ignoring the caller's environment unless `environ` is given.

    overrides: {"auth": {"jwt_secret": "x"}, "mockpanel": {"journal_size": 100}} with values as on the command line.
    """
    from .servers import SERVERS

    only = list(only)
    cli: dict[tuple[str, str], Any] = {(name, "port"): 0 for name in only}
    for section, values in (overrides or {}).items():
        for key, value in values.items():
            cli[(section, key)] = value
    return load_settings(SERVERS, cli=cli, only=only, environ=environ or {}, cwd=cwd or Path("/nonexistent-mockpanel-cwd"))


class RunningHub:
    """A started Hub in its own event loop thread. Use as a context manager; `.urls[name]` is each server's base URL."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="mockpanel-hub", daemon=True)
        self.hub: Hub | None = None
        self.urls: dict[str, str] = {}

    def call(self, coro: Any, timeout: float = 30) -> Any:
        """Run a coroutine in the Hub's loop and return its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def run(self, fn: Any, *args: Any, timeout: float = 30) -> Any:
        """Call a plain function in the Hub's loop (state must only be touched there)."""
        future: concurrent.futures.Future = concurrent.futures.Future()

        def call() -> None:
            try:
                future.set_result(fn(*args))
            except BaseException as exc:  # pragma: no cover - surfaced to the caller
                future.set_exception(exc)

        self.loop.call_soon_threadsafe(call)
        return future.result(timeout)

    def start(self) -> "RunningHub":
        self._thread.start()

        async def start() -> Hub:
            hub = Hub(self.settings)
            await hub.start()
            return hub

        self.hub = self.call(start())
        self.urls = self.hub.urls()
        return self

    def stop(self) -> None:
        if self.hub is not None:
            self.call(self.hub.stop())
            self.hub = None
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()

    def __enter__(self) -> "RunningHub":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def __getitem__(self, name: str):
        assert self.hub is not None
        return self.hub[name]
