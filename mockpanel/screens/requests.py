"""Requests pane: a live tail of the journal across servers, filtered, with the detail of one request."""

from __future__ import annotations

import time

from textual import on
from textual.binding import Binding
from textual.widgets import DataTable, Input

from .. import export
from ..journal import RequestEntry
from ..display import escape_controls, plain
from .base import Pane
from .dialogs import PromptDialog, TextDialog

MAX_ROWS = 500
FIRST_ROWS = 40  # drawn when the pane is shown (a screenful); the live tail then grows it to MAX_ROWS
LIVE_ROWS_PER_FLUSH = 40  # under a flood, a flush shows the newest few (DataTable rows are slow to add); the journal keeps all


def matches(entry: RequestEntry, query: str) -> bool:
    """`server:s3 method:GET status:5xx text`: every token must match; plain text is a path substring."""
    for token in query.split():
        name, sep, value = token.partition(":")
        if sep and name == "server":
            if entry.server != value:
                return False
        elif sep and name == "method":
            if entry.method != value.upper():
                return False
        elif sep and name == "status":
            status = str(entry.status)
            if value.endswith("xx") and len(value) == 3:
                if status[0] != value[0]:
                    return False
            elif status != value:
                return False
        elif token not in entry.path:
            return False
    return True


def describe(entry: RequestEntry) -> str:
    lines = [
        f"{entry.method} {entry.path}{'?' + entry.query if entry.query else ''}",
        f"server {entry.server} · status {entry.status or 'no response'} · {entry.duration_ms:.2f} ms · fault {entry.fault or 'none'}",
        f"at {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(entry.time))} from {entry.client or '?'} · "
        f"request {entry.request_size} bytes · response {entry.response_size} bytes",
        "",
        "Request headers:",
        *(f"  {k}: {v}" for k, v in entry.request_headers),
        "",
        "Request body (preview):",
        "  " + (entry.request_preview.decode("utf-8", "replace") or "(empty)"),
        "",
        "Response headers:",
        *(f"  {k}: {v}" for k, v in entry.response_headers),
        "",
        "Response body (preview):",
        "  " + (entry.response_preview.decode("utf-8", "replace") or "(empty)"),
    ]
    return escape_controls("\n".join(lines), lines=True)


class RequestsPane(Pane):
    TITLE = "Requests"
    KEY = "requests"
    BINDINGS = [
        Binding("f", "toggle_follow", "Follow", tooltip="Keep the newest request in view"),
        Binding("slash", "focus_filter", "Filter", tooltip="server:NAME method:GET status:5xx and path text"),
        Binding("enter", "detail", "Detail", show=False),
        Binding("c", "clear", "Clear", tooltip="Forget every journal entry"),
        Binding("x", "export", "Export…", tooltip="Write the journal (as filtered) to a .har or .jsonl file"),
    ]

    def __init__(self, hub) -> None:
        super().__init__(hub)
        self.follow = True
        self.query_text = ""
        self.shown: dict[str, RequestEntry] = {}  # row key -> entry, for the detail view
        self.shown_ids: set[int] = set()

    def compose(self):
        yield Input(placeholder="filter: server:s3 method:PUT status:5xx /path   (/ to focus)", id="requests-filter")
        table = DataTable(id="requests-table", cursor_type="row", zebra_stripes=True)
        table.add_columns("time", "server", "method", "path", "status", "ms", "fault")
        yield table

    def _row(self, entry: RequestEntry) -> tuple:
        stamp = time.strftime("%H:%M:%S", time.localtime(entry.time)) + f".{int(entry.time * 1000) % 1000:03d}"
        return (stamp, entry.server, plain(entry.method), plain(entry.path[:80]), str(entry.status or "—"), f"{entry.duration_ms:.1f}", plain(entry.fault or ""))

    def _add(self, entries: list[RequestEntry]) -> None:
        table = self.query_one(DataTable)
        new = [e for e in entries[-MAX_ROWS:] if e.id not in self.shown_ids]  # some were drawn from the journal already
        for entry, row_key in zip(new, table.add_rows(self._row(e) for e in new)):
            self.shown[str(row_key.value)] = entry
            self.shown_ids.add(entry.id)
        overflow = table.row_count - MAX_ROWS
        if overflow > 0:
            for row_key in list(table.rows)[:overflow]:
                table.remove_row(row_key)
                gone = self.shown.pop(str(row_key.value), None)
                if gone is not None:
                    self.shown_ids.discard(gone.id)
        if self.follow and table.row_count:
            table.move_cursor(row=table.row_count - 1)

    def refresh_view(self) -> None:
        self.query_one(DataTable).clear()
        self.shown.clear()
        self.shown_ids.clear()
        self._add(self.hub.journal.query(keep=lambda e: matches(e, self.query_text), limit=FIRST_ROWS))

    def apply(self, batch: list) -> None:
        fresh = [item for item in batch if isinstance(item, RequestEntry) and matches(item, self.query_text)]
        if fresh:
            self._add(fresh[-LIVE_ROWS_PER_FLUSH:])

    @on(Input.Changed, "#requests-filter")
    def filter_changed(self, event: Input.Changed) -> None:
        self.query_text = event.value.strip()
        self.refresh_view()

    def action_focus_filter(self) -> None:
        self.query_one(Input).focus()

    def action_toggle_follow(self) -> None:
        self.follow = not self.follow
        self.notify(f"follow {'on' if self.follow else 'off'}")

    def action_clear(self) -> None:
        self.hub.journal.clear()
        self.refresh_view()

    def action_export(self) -> None:
        query = self.query_text

        def write(answer: str | None) -> None:
            if answer:
                self.app.export_journal(answer.strip(), keep=lambda e: matches(e, query))

        default = export.default_filename("har")
        what = f"requests matching '{query}'" if query else "every request"
        self.app.push_screen(PromptDialog(f"Write {what} to (.har or .jsonl)", default), write)

    @on(DataTable.RowSelected, "#requests-table")
    def selected(self, event: DataTable.RowSelected) -> None:
        self.show_detail(str(event.row_key.value))

    def action_detail(self) -> None:
        table = self.query_one(DataTable)
        if table.row_count:
            self.show_detail(str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value))

    def show_detail(self, key: str) -> None:
        entry = self.shown.get(key)
        if entry is not None:
            self.app.push_screen(TextDialog(f"Request #{entry.id}", describe(entry), "Esc closes"))
