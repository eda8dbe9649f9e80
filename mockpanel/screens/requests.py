"""Requests pane: a live tail of the journal across servers, filtered, ordered by when each request arrived; the
detail of the highlighted one beside the list on wide terminals (a dialog on narrow ones); copy as curl."""

from __future__ import annotations

import functools
import json
import time
from typing import Any

from rich.text import Text
from textual import on
from textual.actions import SkipAction
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import DataTable, Input, Static

from .. import export
from ..display import escape_controls, plain
from ..filters import FilterError, compile_filter
from ..journal import RequestEntry
from ..hubclient import panel_op, server_urls
from .base import LiveTable, OrderedInput, Pane, cursor_key, cut, restore_cursor, size_text, status_cell
from .dialogs import ConfirmDialog, PromptDialog, TextDialog

MAX_ROWS = 500
# The oldest rows go in one rebuild once this many more have come: DataTable.remove_row renumbers every row and asks
# for a layout pass, so trimming a row at a time cost a flood's flushes 25 ms each, four times a second.
TRIM_SLACK = 500
FIRST_ROWS = 40  # drawn when the pane is shown (a screenful); the live tail then grows it to MAX_ROWS (+ TRIM_SLACK)
LIVE_ROWS_PER_FLUSH = 40  # under a flood, a flush shows the newest few (DataTable rows are slow to add); the journal keeps all
# From this many requests in one batch the tail moves once a second (k9s redraws every two): each move redraws every
# row on screen, tens of milliseconds of the loop the servers and the keys share, and nobody reads 400 rows a second.
FLOOD_ROWS = 100
FLOOD_REDRAW_SECONDS = 1.0
SPLIT_WIDTH = 160  # from this many columns the detail shows beside the list
# Fixed columns (time, server, method, status, ms, fault) always show; the path takes what is left.
COLUMNS = (("time", 12), ("server", 8), ("method", 6), ("path", 0), ("status", 6), ("ms", 7), ("fault", 10))
HEX_PREVIEW = 256


class Stamp(str):
    """The time cell: shown as HH:MM:SS.mmm, ordered by (arrival, id)."""

    order: tuple[float, int]


def body_text(preview: bytes, size: int, headers: list[tuple[str, str]]) -> str:
    """A body for reading: JSON pretty-printed, other text as it is, binary as its size and a hex preview."""
    if not preview:
        return f"{size:,} bytes, not kept (--body-preview-bytes)" if size else "(empty)"
    cut_note = f"\n… {size - len(preview):,} more bytes not kept (--body-preview-bytes)" if size > len(preview) else ""
    content_type = next((v for k, v in headers if k.lower() == "content-type"), "")
    try:
        text = preview.decode("utf-8")
    except UnicodeDecodeError:
        shown = preview[:HEX_PREVIEW]
        rows = [f"{i:06x}  {shown[i:i + 16].hex(' ')}" for i in range(0, len(shown), 16)]
        return f"binary, {size:,} bytes{' (' + content_type + ')' if content_type else ''}:\n" + "\n".join(rows) + cut_note
    if "json" in content_type or text[:1] in "{[":
        try:
            return json.dumps(json.loads(text), indent=2, ensure_ascii=False) + cut_note
        except ValueError:
            pass
    return text + cut_note


def describe(entry: RequestEntry) -> str:
    request_headers, response_headers = entry.request_headers, entry.response_headers
    lines = [
        f"{entry.method} {entry.path}{'?' + entry.query if entry.query else ''}",
        f"server {entry.server} · status {entry.status or 'no response'} · {entry.duration_ms:.2f} ms · fault {entry.fault or 'none'}",
        f"at {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(entry.time))} from {entry.client or '?'} · "
        f"request {size_text(entry.request_size)} · response {size_text(entry.response_size)}",
        *([f"the mocks' clock read {time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(entry.mock_time))}Z (moved from the wall clock)"]
          if entry.mock_time is not None else []),
        "",
        "Request headers:",
        *(f"  {k}: {v}" for k, v in request_headers),
        "",
        "Request body:",
        body_text(entry.request_preview, entry.request_size, request_headers),
        "",
        "Response headers:",
        *(f"  {k}: {v}" for k, v in response_headers),
        "",
        "Response body:",
        body_text(entry.response_preview, entry.response_size, response_headers),
    ]
    return escape_controls("\n".join(lines), lines=True)


class FilterInput(OrderedInput):
    """The filter: Enter (the filter stays) and Esc give the keys back to the list at once."""

    BINDINGS = [Binding("escape", "to_list", show=False)]

    async def action_submit(self) -> None:
        await super().action_submit()
        self.action_to_list()

    def action_to_list(self) -> None:
        self.query_ancestor(RequestsPane).to_list()


@functools.lru_cache(maxsize=16)
def _compiled(query: str, servers: tuple[str, ...]) -> Any:
    return compile_filter(query, servers)


@panel_op
def journal_shape(hub: Any) -> tuple[list[str], int]:
    """Every server the journal may name (the proxies' connections are journaled under their names), and each
    one's ring capacity."""
    return [*hub.specs, *hub.network.proxies], hub.journal.maxlen


@panel_op
def clear_journal(hub: Any) -> None:
    hub.journal.clear()


@panel_op
def journal_page(hub: Any, query: str) -> tuple[list[RequestEntry], int, dict[str, int]]:
    """The newest FIRST_ROWS entries the filter `query` keeps, how many it keeps in all, and each server's row count
    (read on the servers' loop; entries are immutable named tuples). The filter crosses as its text, compiled here."""
    journal = hub.journal
    keep = _compiled(query, (*hub.specs, *hub.network.proxies))
    entries = journal.query(keep=keep, limit=FIRST_ROWS)
    matching = sum(1 for e in journal.entries() if keep(e)) if query else len(journal)
    return entries, matching, {name: len(ring) for name, ring in journal.servers.items()}


class RequestsPane(Pane):
    TITLE = "Requests"
    KEY = "requests"
    BINDINGS = [
        Binding("enter", "detail", "Detail", tooltip="The highlighted request: headers and bodies"),
        # Priority: run as the key arrives, so the text typed right behind the slash lands in the filter, not on the
        # list's keys (a key's own binding runs only after it bubbles up; the keys behind it go where focus is).
        Binding("slash", "focus_filter", "Filter", priority=True, tooltip="server:s3 method:PUT|POST status:5xx !status:404 ms>100 /path"),
        Binding("f", "toggle_follow", "Follow", tooltip="Keep the newest request in view (while the last row is highlighted)"),
        Binding("c", "copy_curl", "Copy as curl", tooltip="A curl command that sends the highlighted request again"),
        Binding("b", "copy_body", "Copy body", show=False, tooltip="The highlighted request's body (as the journal kept it)"),
        Binding("h", "copy_headers", "Copy headers", show=False, tooltip="The highlighted request's headers"),
        Binding("w", "export", "Write…", tooltip="Write the journal (as filtered) to a .har, .jsonl or .py file, or the highlighted request as a WireMock mapping (.json, or stub:NAME)"),
        Binding("x", "clear", "Clear…", tooltip="Forget every journal entry (asks first)"),
    ]

    def __init__(self, client) -> None:
        super().__init__(client)
        self.server_names, self.capacity = self.read(journal_shape)
        self.counts: dict[str, int] = {}  # rows each server's ring holds (its journal_size at most)
        self.follow = True
        self.query_text = ""
        self.keep = compile_filter("")
        self.error: str | None = None
        self.shown: dict[str, RequestEntry] = {}  # row key (the entry's id) -> entry
        self.matching = 0  # journal entries the filter accepts (shown: up to MAX_ROWS of them)
        self.newest_shown: float | None = None  # arrival time of the latest-arriving row listed
        self._path_width = 0
        self._held: list[RequestEntry] = []  # arrived under a flood, to be listed at the next move of the tail
        self._added_at = 0.0
        self._add_pending = False

    def compose(self):
        yield FilterInput(placeholder="filter: server:s3 method:PUT|POST status:5xx !status:404 ms>100 /path   (/ to focus, Enter back)",
                          id="requests-filter")
        yield Static("", id="requests-status")
        with Horizontal(id="requests-body"):
            yield LiveTable(id="requests-table", cursor_type="row", zebra_stripes=True)
            with VerticalScroll(id="requests-detail-scroll"):
                yield Static("", id="requests-detail")

    # --- layout ---

    def _layout(self) -> bool:
        """Fit the columns to the terminal (the path takes what the fixed columns leave); True when that changed."""
        width = self.app.size.width
        split = width >= SPLIT_WIDTH
        self.query_one("#requests-detail-scroll").display = split
        table_width = (width * 3 // 5 if split else width) - 2  # the list takes 3/5 beside the detail; 2: scrollbar
        fixed = sum(w + 2 for _, w in COLUMNS if w)  # each cell has a space either side
        path_width = max(table_width - fixed - 2, 8)
        changed = path_width != self._path_width
        self._path_width = path_width
        return changed

    def on_resize(self) -> None:
        if self._layout():
            self.refresh_view()

    def _columns(self, table: DataTable) -> None:
        """The columns, rebuilt only when the path's width changed (rebuilding costs every cell's measure)."""
        path_width = self._path_width or 30
        if table.columns and table.columns["path"].width == path_width:
            table.clear()
            return
        table.clear(columns=True)
        for name, width in COLUMNS:
            table.add_column(name, width=width or path_width, key=name)

    def _row(self, entry: RequestEntry) -> tuple:
        stamp = Stamp(time.strftime("%H:%M:%S", time.localtime(entry.time)) + f".{int(entry.time * 1000) % 1000:03d}")
        stamp.order = (entry.time, entry.id)
        target = entry.path + (f"?{entry.query}" if entry.query else "")
        return (stamp, entry.server, plain(entry.method), plain(cut(target, self._path_width or 30)), status_cell(entry.status),
                f"{entry.duration_ms:.1f}", plain(cut(entry.fault or "", 10)))

    # --- rows ---

    def _add(self, entries: list[RequestEntry]) -> None:
        table = self.query_one(DataTable)
        key, row = cursor_key(table), table.cursor_row
        at_bottom = row >= table.row_count - 1  # following: only while the newest row is the highlighted one
        new = [e for e in entries[-MAX_ROWS:] if str(e.id) not in self.shown]  # some were drawn from the journal already
        if not new:
            return
        new.sort(key=lambda e: (e.time, e.id))  # the journal has them by completion; the list shows them by arrival
        first = new[0].time
        late = self.newest_shown is not None and first < self.newest_shown
        for entry in new:
            table.add_row(*self._row(entry), key=str(entry.id))
            self.shown[str(entry.id)] = entry
        self.newest_shown = max(self.newest_shown or 0.0, new[-1].time)
        if late:  # one of them arrived before a row already listed (it ended late): put it in its place
            table.sort("time", key=lambda stamp: stamp.order)
        if table.row_count > MAX_ROWS + TRIM_SLACK:
            row -= self._trim(table)
        if self.follow and at_bottom:
            table.move_cursor(row=table.row_count - 1)
        else:
            restore_cursor(table, key, row)  # moved up to read one: it stays put as others arrive
        self._show_selected()

    def refresh_view(self) -> None:
        table = self.query_one(DataTable)
        key, row, was_at_bottom = cursor_key(table), table.cursor_row, table.cursor_row >= table.row_count - 1
        self._layout()
        self._columns(table)
        self.shown.clear()
        self.newest_shown = None
        self._held = []  # drawn from the journal below
        entries, self.matching, self.counts = self.read(journal_page, self.query_text)
        self._add(entries)
        if key is not None and not (self.follow and was_at_bottom):
            restore_cursor(table, key, row)
        self._status()

    def _trim(self, table: DataTable) -> int:
        """Keep the newest MAX_ROWS rows (by arrival, as listed); answer how many went."""
        listed = sorted(self.shown.values(), key=lambda e: (e.time, e.id))
        gone = len(listed) - MAX_ROWS
        table.clear()
        self.shown.clear()
        for entry in listed[gone:]:
            table.add_row(*self._row(entry), key=str(entry.id))
            self.shown[str(entry.id)] = entry
        return gone

    def apply(self, batch: list) -> None:
        arrived = [item for item in batch if isinstance(item, RequestEntry)]
        if not arrived:
            return
        for item in arrived:  # each server's ring holds journal_size rows: counted here, without asking the Hub
            self.counts[item.server] = min(self.counts.get(item.server, 0) + 1, self.capacity)
        fresh = [item for item in arrived if self.keep(item)]
        self.matching += len(fresh)
        self._held = (self._held + fresh)[-LIVE_ROWS_PER_FLUSH:]
        wait = FLOOD_REDRAW_SECONDS - (time.monotonic() - self._added_at) if len(arrived) >= FLOOD_ROWS else 0.0
        if wait <= 0:
            self._add_held()
        elif not self._add_pending:
            self._add_pending = True
            self.set_timer(wait, self._add_held)
        self._status()

    def _add_held(self) -> None:
        self._add_pending = False
        held, self._held = self._held, []
        if held and self.drawable:
            self._added_at = time.monotonic()
            self._add(held)

    def _status(self) -> None:
        status = self.query_one("#requests-status", Static)
        if self.error:
            status.update(Text(f"✗ {self.error}", style="bold red"), layout=False)
            return
        total = sum(self.counts.values())
        shown = self.query_one(DataTable).row_count
        if not total:
            status.update(Text(f"No requests yet. Try: {self.example()}   (c copies it)", style="dim"), layout=False)
            return
        matching = min(self.matching, total)  # counted as they arrive; the journal's rings drop the oldest
        noun = "request" if total == 1 else "requests"
        what = f"{matching:,} of {total:,} {noun} match" if self.query_text else f"{total:,} {noun}"
        listed = f" · the newest {shown:,} listed" if shown < matching else ""
        # One line (CSS): without a layout pass, the four updates a second under traffic repaint this line only.
        status.update(Text(f"{what}{listed} · follow {'on' if self.follow else 'off'}", style="dim"), layout=False)

    # --- filter ---

    @on(Input.Changed, "#requests-filter")
    def filter_changed(self, event: Input.Changed) -> None:
        text = event.value.strip()
        try:
            self.server_names = self.read(journal_shape)[0]  # proxies come and go
            keep = compile_filter(text, self.server_names)
        except FilterError as exc:
            self.error = str(exc)  # the last good filter stays applied
            self._status()
            return
        self.error = None
        self.query_text, self.keep = text, keep
        self.refresh_view()

    def to_list(self) -> None:
        """The keys go back to the list now (Widget.focus would wait for the next idle: the key typed next must
        reach the list)."""
        self.screen.set_focus(self.query_one(DataTable))

    def action_focus_filter(self) -> None:
        field = self.query_one(FilterInput)
        if field.has_focus:
            raise SkipAction()  # a slash typed in the filter is text
        self.screen.set_focus(field)

    def action_toggle_follow(self) -> None:
        self.follow = not self.follow
        if self.follow:
            table = self.query_one(DataTable)
            if table.row_count:
                table.move_cursor(row=table.row_count - 1)
        self._status()
        self.notify(f"follow {'on: the newest request stays in view' if self.follow else 'off'}")

    # --- the highlighted request ---

    def selected(self) -> RequestEntry | None:
        key = cursor_key(self.query_one(DataTable))
        return self.shown.get(key) if key is not None else None

    def acts_on(self) -> str:
        entry = self.selected()
        return f"#{entry.id} {entry.method} {cut(entry.path, 40)}" if entry is not None else ""

    @on(DataTable.RowHighlighted, "#requests-table")
    def highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_selected()

    def _show_selected(self) -> None:
        scroll = self.query_one("#requests-detail-scroll")
        if not scroll.display:
            return
        entry = self.selected()
        self.query_one("#requests-detail", Static).update(
            plain(describe(entry), lines=True) if entry is not None else "Nothing selected: requests appear here as they arrive.")

    @on(DataTable.RowSelected, "#requests-table")
    def row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_detail()

    def action_detail(self) -> None:
        entry = self.selected()
        if entry is None:
            return
        if self.query_one("#requests-detail-scroll").display:
            self._show_selected()  # already beside the list
            return
        self.app.push_screen(TextDialog(f"Request #{entry.id}", describe(entry), "Esc closes · c in the list copies it as curl"))

    def curl(self, entry: RequestEntry) -> str:
        return export.curl_command(entry, self.read(server_urls).get(entry.server, "http://127.0.0.1"))

    def example(self) -> str:
        """A first request for the empty pane, against a server that runs here (real port)."""
        urls = self.read(server_urls)
        for server, path in (("auth", "/health"), ("s3", "/"), ("webhooks", "/health"), ("client", "/health"),
                             ("imageapi", "/api/v1/health")):
            if server in urls:
                return f"curl {urls[server]}{path}"
        return "curl http://127.0.0.1:8000/health"

    def action_copy_curl(self) -> None:
        entry = self.selected()
        if entry is None and not sum(self.counts.values()):
            self.app.copy_and_show(self.example(), "A first request", "example copied: run it in a shell")
        if entry is not None:
            self.app.copy_and_show(self.curl(entry), f"curl for request #{entry.id}", f"curl for {entry.method} {entry.path} copied")

    def action_copy_body(self) -> None:
        entry = self.selected()
        if entry is not None:
            text = body_text(entry.request_preview, entry.request_size, entry.request_headers)
            self.app.copy_and_show(text, f"Body of request #{entry.id}", f"body of {entry.method} {entry.path} copied")

    def action_copy_headers(self) -> None:
        entry = self.selected()
        if entry is not None:
            text = "\n".join(f"{k}: {v}" for k, v in entry.request_headers)
            self.app.copy_and_show(text, f"Headers of request #{entry.id}", f"headers of {entry.method} {entry.path} copied")

    # --- the journal ---

    def action_clear(self) -> None:
        def clear(yes: bool | None) -> None:
            if yes:
                self.client.command(clear_journal)
                self.refresh_view()
                self.notify("the journal is empty")

        self.app.push_screen(ConfirmDialog(f"Forget all {sum(self.counts.values()):,} requests in the journal?"), clear)

    def action_export(self) -> None:
        query, keep = self.query_text, self.keep
        chosen = self.selected()

        async def write(answer: str | None) -> None:
            if not answer or not answer.strip():
                return
            target = answer.strip()
            if target.startswith("stub:") or target.endswith(".json"):
                if chosen is None:
                    self.app.notify("highlight a request first: the mapping is made from it", severity="error")
                    return
                await self.save_mapping(chosen, target)
                return
            self.app.export_journal(target, keep=keep)

        default = export.default_filename("har")
        what = f"requests matching '{query}'" if query else "every request"
        self.app.push_screen(PromptDialog(f"Write {what} to (.har, .jsonl, or .py: a pytest file replaying them) — or the highlighted "
                                          "request as a WireMock mapping: a .json file, or stub:NAME to add it to stub server NAME",
                                          default), write)

    async def save_mapping(self, entry: RequestEntry, target: str) -> None:
        """The exchange as a WireMock mapping: into stub server NAME (stub:NAME; written to its mappings directory), or a
        .json file here (credentials masked either way)."""
        from pathlib import Path

        from ..spec import DomainError
        from .stubs import entry_as_mapping, save_entry_to_stub

        try:
            if target.startswith("stub:"):
                where = self.client.command(save_entry_to_stub, entry.id, target[5:].strip())
                self.app.notify(f"mapping saved: {where}", title="WireMock mapping")
                return
            mapping = self.client.read(entry_as_mapping, entry.id)
        except DomainError as exc:
            self.app.notify(exc.message, severity="error")
            return
        path = Path(target).expanduser()
        try:
            path.write_text(json.dumps(mapping, indent=2) + "\n", encoding="utf-8")
        except OSError as exc:
            self.app.notify(f"cannot write {path}: {exc.strerror}", severity="error")
            return
        self.app.notify(f"{entry.method} {entry.path} written to {path.resolve()}", title="WireMock mapping")
