"""The loop-stall watchdog: every server and the panel share one event loop, so anything that holds it holds them
all. A heartbeat task measures how late it wakes; a stall past the threshold is recorded, logged and sent on the bus
with the request that was in progress (the one the middleware last started), so a stall has a name."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable

BEAT_S = 0.1
STALL_S = 0.25


@dataclass(frozen=True)
class Stall:
    at: float  # wall clock, when it was noticed
    duration_ms: float
    server: str | None  # the request in progress, if any (or "panel", for the panel's own loop)
    request: str | None  # "GET /path", or what the panel was doing ("drawing the Traces pane")
    loop: str = "event"  # which loop: "event" (serve's one loop), "servers'" or "panel's" (the panel's two)

    def describe(self) -> str:
        if self.server == "panel":
            during = f" {self.request}" if self.request else ""
        else:
            during = f" during {self.server} {self.request}" if self.server else ""
        return f"the {self.loop} loop stalled {self.duration_ms:.0f} ms{during}"


class Watchdog:
    def __init__(self, report: Callable[[Stall], None], threshold_s: float = STALL_S, loop_name: str = "event") -> None:
        self.report = report
        self.loop_name = loop_name
        self.threshold_s = threshold_s
        self.stalls: deque[Stall] = deque(maxlen=100)
        self.count = 0  # stalls seen since start (the deque keeps the last 100)
        # [server name, ASGI scope] of the request the middleware last started: two stores a request, read only here
        self.current: list[Any] = [None, None]
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._beat(), name="mockpanel-watchdog")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def worst_ms(self) -> float:
        return max((s.duration_ms for s in self.stalls), default=0.0)

    def summary(self) -> dict[str, Any]:
        """What the control API's stats say of the shared loop."""
        return {"stalls": self.count, "worst_stall_ms": round(self.worst_ms(), 1),
                "last_stall": self.stalls[-1].describe() if self.stalls else None}

    async def _beat(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(BEAT_S)
            late = loop.time() - before - BEAT_S
            if late > self.threshold_s:
                server, scope = self.current
                request = scope if isinstance(scope, str) or scope is None else f"{scope['method']} {scope['path']}"
                stall = Stall(time.time(), late * 1000, server, request, self.loop_name)
                self.stalls.append(stall)
                self.count += 1
                self.report(stall)
