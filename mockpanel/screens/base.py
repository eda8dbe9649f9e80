"""What every pane shares: it reads the Hub through the HubClient, applies batches of bus events, and refreshes when
shown."""

from __future__ import annotations

from typing import Any

from rich.text import Text

from textual import events
from textual.containers import Vertical
from textual.widgets import DataTable, Input

from ..hubclient import HubClient, server_names
from ..journal import DomainEvent


class LiveTable(DataTable):
    """A DataTable for a list that changes several times a second (the Requests tail).

    DataTable keys its render caches by a counter each added row bumps, so under traffic they fill with renders
    that are never read again: up to 10,000 cells and 1,000 lines and rows, ~100,000 objects that every full
    garbage collection walks (70-110 ms pauses of the loop the servers and keys share). Kept to a few screenfuls,
    the old renders are evicted, and freed at once, as new ones come. The caches are DataTable's own attributes:
    a Textual without them leaves the defaults."""

    CACHE_SIZES = {"_cell_render_cache": 1500, "_row_renderable_cache": 150, "_row_render_cache": 150, "_line_cache": 150}

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        for name, size in self.CACHE_SIZES.items():
            cache = getattr(self, name, None)
            if cache is not None and hasattr(cache, "maxsize"):
                cache.maxsize = size


class OrderedInput(Input):
    """An Input whose keys apply in the order they were typed.

    Textual inserts a typed character at once, but runs a bound key (ctrl+u, backspace, the arrows, home, Enter)
    only once the key has bubbled through every parent's message queue up to the app (textual#6605), and it sends
    each key to what had focus when the app took it from the terminal. With keys in a burst (typed fast, or the
    loop busy serving requests) a character typed right behind ctrl+u was inserted first and then wiped with the
    rest, and a key typed behind the Enter that leaves the input still landed in it. Here the Input's own bindings
    run as their key arrives (what the app would run a moment later; priority bindings were checked before the key
    reached the Input), and a key that arrives once focus has moved on goes where focus is now."""

    async def _on_key(self, event: events.Key) -> None:  # Textual calls each class's handler: this one first
        if self.app.focused is not self:
            event.stop()
            event.prevent_default()
            (self.app.focused or self.app.screen)._forward_event(events.Key(event.key, event.character))
            return
        if event.is_printable:
            return  # Input's own handler inserts it
        for binding in self._bindings.key_to_bindings.get(event.key, ()):
            if not binding.priority and await self.app.run_action(binding.action, self):
                event.stop()
                event.prevent_default()
                return


class Pane(Vertical):
    """One tab of the panel. Subclasses set TITLE, KEY and SERVERS and override refresh_view.

    A pane changes nothing itself: it asks the Hub through its client (a function of the Hub run on the servers'
    loop, or the app), and redraws from the events that follow, whoever caused them. Nothing here holds a facade."""

    TITLE = ""
    KEY = ""
    SERVERS: tuple[str, ...] = ()  # whose domain events redraw this pane; none: any bus item does

    def __init__(self, client: HubClient) -> None:
        super().__init__(id=f"pane-{self.KEY}")
        self.client = client
        self.running = frozenset(client.read(server_names))  # the servers this panel runs (fixed)

    def on_mount(self) -> None:
        self.refresh_view()

    @property
    def drawable(self) -> bool:
        """Whether this pane's widgets may be drawn on: not while Textual removes it or shuts the app down (a timer
        may still tick then, with the pane's tables already gone)."""
        return self.is_attached and self.display and self.app.is_running

    def serves(self, name: str) -> bool:
        """Whether the server `name` runs in this panel (is enabled)."""
        return name in self.running

    def read(self, fn: Any, *args: Any) -> Any:
        """`fn(hub, *args)` on the servers' loop; what it returns (see HubClient.read)."""
        return self.client.read(fn, *args)

    def apply(self, batch: list[Any]) -> None:
        """New bus items since the last flush (requests and domain events): redraw if any concern this pane."""
        if not self.SERVERS:
            if batch:
                self.refresh_view()
        elif any(isinstance(i, DomainEvent) and i.server in self.SERVERS and i.kind != "status" for i in batch):
            self.refresh_view()

    def refresh_view(self) -> None:
        """Redraw from the Hub's state."""

    def acts_on(self) -> str:
        """What this pane's keys act on now (the selected row), for the palette's names; "" when nothing."""
        return ""


def cut(text: str, width: int) -> str:
    """`text` in at most `width` cells: longer text ends with an ellipsis (so a column never pushes others away)."""
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


def cursor_key(table: Any) -> str | None:
    """The key of the highlighted row, or None."""
    if not table.row_count:
        return None
    return str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)


def restore_cursor(table: Any, key: str | None, row: int) -> None:
    """After a redraw: the cursor on the row of `key` (selection follows the item, not its position); when that
    item is gone, on the row it was at."""
    if not table.row_count:
        return
    if key is not None:
        try:
            table.move_cursor(row=table.get_row_index(key))
            return
        except Exception:  # RowDoesNotExist: the item is gone
            pass
    table.move_cursor(row=min(max(row, 0), table.row_count - 1))


STATUS_STYLES = {"2": "green", "3": "cyan", "4": "yellow", "5": "bold red"}


def status_cell(status: int | None, none: str = "—") -> Text:
    """An HTTP status coloured by its class (2xx green, 4xx yellow, 5xx red); `none` when there was no answer."""
    return Text(str(status), style=STATUS_STYLES.get(str(status)[0], "")) if status else Text(none, style="bold red")


def size_text(size: int) -> str:
    """A byte count for reading: 512 B, 47.1 KiB, 3.2 MiB, 1.50 GiB."""
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} KiB"
    if size < 1024 ** 3:
        return f"{size / 1024 / 1024:.1f} MiB"
    return f"{size / 1024 ** 3:.2f} GiB"
