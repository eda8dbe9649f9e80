"""Servers pane: every mock with its URL, status, counters, latency and active faults; stop, start, restart."""

from __future__ import annotations

from typing import Any, NamedTuple

from textual import on
from textual.binding import Binding
from textual.widgets import DataTable

from ..display import plain
from ..hubclient import panel_op
from ..wire import record
from .base import Pane, cursor_key, cut, restore_cursor
from .dialogs import TextDialog

COLUMNS = ("server", "url", "status", "requests", "errors", "p50 ms", "p95 ms", "faults")


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


@record
class ServerView(NamedTuple):
    """One server as the pane shows it (computed on the servers' loop)."""

    name: str
    url: str | None
    status: str
    reason: str | None
    total: int
    errors: int
    p50: float | None
    p95: float | None
    faults: str


@panel_op
def server_views(hub: Any) -> list[ServerView]:
    views = []
    for name, runner in hub.runners.items():
        stats = runner.ctx.stats
        p50, p95 = stats.latency()
        views.append(ServerView(name, runner.url, runner.status, runner.reason, stats.total, stats.errors, p50, p95,
                                ", ".join(runner.ctx.faults.policy.describe())))
    return views


@panel_op
async def toggle_server(hub: Any, name: str) -> tuple[bool, str]:
    """Stop a running server, or start a stopped one: (ok, what happened)."""
    runner = hub[name]
    if runner.status == "running":
        await runner.stop()
        return True, f"{name} stopped"
    ok = await runner.start()
    return ok, f"{name} {'running at ' + (runner.url or '') if ok else 'failed: ' + (runner.reason or '')}"


class ServersPane(Pane):
    TITLE = "Servers"
    KEY = "servers"
    BINDINGS = [
        Binding("enter", "detail", "Detail", tooltip="The selected server: its status in full, counters, faults"),
        Binding("s", "toggle_server", "Stop/start", tooltip="Stop the selected server, or start it again"),
        Binding("r", "restart_server", "Restart", tooltip="Restart the selected server (state is kept)"),
    ]

    def compose(self):
        table = DataTable(id="servers-table", cursor_type="row", zebra_stripes=True)
        table.add_columns(*COLUMNS)
        yield table

    def selected(self) -> str | None:
        return cursor_key(self.query_one(DataTable))

    def acts_on(self) -> str:
        return self.selected() or ""

    def refresh_view(self) -> None:
        table = self.query_one(DataTable)
        key, row = cursor_key(table), table.cursor_row
        rows = []
        for v in self.read(server_views):
            status = v.status if v.status != "failed" else f"failed: {v.reason}"
            rows.append((v.name, [v.name, v.url or "—", cut(status, 32), f"{v.total:,}", f"{v.errors:,}", _ms(v.p50), _ms(v.p95),
                                  cut(v.faults or "—", 40)]))
        # Widths follow what is shown now, not the widest text ever shown (DataTable's own widths only grow).
        widths = [max([len(label)] + [len(cells[i]) for _, cells in rows]) for i, label in enumerate(COLUMNS)]
        table.clear(columns=True)
        for label, width in zip(COLUMNS, widths):
            table.add_column(label, width=width)
        for name, cells in rows:
            table.add_row(*(plain(cell) for cell in cells), key=name)
        restore_cursor(table, key, row)

    @on(DataTable.RowSelected, "#servers-table")
    def row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_detail()

    def action_detail(self) -> None:
        name = self.selected()
        if name is None:
            return
        v = next(v for v in self.read(server_views) if v.name == name)
        lines = [f"url: {v.url or '—'}", f"status: {v.status}" + (f" — {v.reason}" if v.reason else ""),
                 f"requests: {v.total:,} · errors: {v.errors:,} · p50 {_ms(v.p50)} ms · p95 {_ms(v.p95)} ms",
                 "faults: " + (v.faults or "none"),
                 f"control API: {v.url or 'http://…'}/__mockpanel/docs"]
        self.app.push_screen(TextDialog(f"Server {name}", "\n".join(lines), "Esc closes"))

    async def action_toggle_server(self) -> None:
        name = self.selected()
        if name is None:
            return
        ok, said = await self.client.wait(toggle_server, name)
        self.notify(said, severity="information" if ok else "error")

    async def action_restart_server(self) -> None:
        name = self.selected()
        if name is not None:
            await self.app.restart_server(name)
