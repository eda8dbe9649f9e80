"""What every pane shares: it reads the Hub, applies batches of bus events, and refreshes when shown."""

from __future__ import annotations

from typing import Any

from textual.containers import Vertical

from ..hub import Hub
from ..journal import DomainEvent


class Pane(Vertical):
    """One tab of the panel. Subclasses set TITLE, KEY and SERVERS and override refresh_view.

    A pane changes nothing itself: it calls a server's facade (or the app), and redraws from the events that
    follow, whoever caused them."""

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

    def facade(self, name: str) -> Any:
        """A server's domain facade (Accounts, Storage, Receiver, ...), or None when that server does not run here."""
        return self.hub.facade(name)

    def apply(self, batch: list[Any]) -> None:
        """New bus items since the last flush (requests and domain events): redraw if any concern this pane."""
        if not self.SERVERS:
            if batch:
                self.refresh_view()
        elif any(isinstance(i, DomainEvent) and i.server in self.SERVERS and i.kind != "status" for i in batch):
            self.refresh_view()

    def refresh_view(self) -> None:
        """Redraw from the Hub's state."""
