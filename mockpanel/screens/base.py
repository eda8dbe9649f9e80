"""What every pane shares: it reads the Hub, applies batches of bus events, and refreshes when shown."""

from __future__ import annotations

from typing import Any

from textual.containers import Vertical

from ..hub import Hub
from ..journal import DomainEvent


class Pane(Vertical):
    """One tab of the panel. Subclasses set TITLE, KEY and SERVERS and override refresh_view."""

    TITLE = ""
    KEY = ""
    SERVERS: tuple[str, ...] = ()  # whose domain events redraw this pane; none: any bus item does

    def __init__(self, hub: Hub) -> None:
        super().__init__(id=f"pane-{self.KEY}")
        self.hub = hub

    def on_mount(self) -> None:
        self.refresh_view()

    def runner(self, name: str):
        return self.hub.runners.get(name)

    def state_of(self, name: str) -> Any:
        """A server's domain state (users, store, events), or None when that server does not run."""
        runner = self.runner(name)
        return runner.state if runner is not None else None

    def apply(self, batch: list[Any]) -> None:
        """New bus items since the last flush (requests and domain events): redraw if any concern this pane."""
        if not self.SERVERS:
            if batch:
                self.refresh_view()
        elif any(isinstance(i, DomainEvent) and i.server in self.SERVERS and i.kind != "status" for i in batch):
            self.refresh_view()

    def refresh_view(self) -> None:
        """Redraw from the Hub's state."""
