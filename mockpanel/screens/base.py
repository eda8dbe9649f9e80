"""What every pane shares: it reads the Hub, applies batches of bus events, and refreshes when shown."""

from __future__ import annotations

from typing import Any

from textual.containers import Vertical

from ..hub import Hub


class Pane(Vertical):
    """One tab of the panel. Subclasses set TITLE and KEY and override refresh_view / apply."""

    TITLE = ""
    KEY = ""

    def __init__(self, hub: Hub) -> None:
        super().__init__(id=f"pane-{self.KEY}")
        self.hub = hub

    def runner(self, name: str):
        return self.hub.runners.get(name)

    def apply(self, batch: list[Any]) -> None:
        """New bus items since the last flush (requests and domain events); default: redraw if any concern us."""
        if batch:
            self.refresh_view()

    def refresh_view(self) -> None:
        """Redraw from the Hub's state."""
