"""Servers pane: every mock with its URL, status, counters, latency and active faults; stop, start, restart."""

from __future__ import annotations

from textual import on
from textual.binding import Binding
from textual.widgets import DataTable

from ..display import plain
from .base import Pane, cursor_key, cut, restore_cursor
from .dialogs import TextDialog

COLUMNS = ("server", "url", "status", "requests", "errors", "p50 ms", "p95 ms", "faults")


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


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
        for name, runner in self.hub.runners.items():
            stats = runner.ctx.stats
            status = runner.status if runner.status != "failed" else f"failed: {runner.reason}"
            faults = ", ".join(runner.ctx.faults.policy.describe()) or "—"
            p50, p95 = stats.latency()
            rows.append((name, [name, runner.url or "—", cut(status, 32), f"{stats.total:,}", f"{stats.errors:,}", _ms(p50), _ms(p95),
                                cut(faults, 40)]))
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
        runner = self.hub[name]
        stats = runner.ctx.stats
        p50, p95 = stats.latency()
        lines = [f"url: {runner.url or '—'}", f"status: {runner.status}" + (f" — {runner.reason}" if runner.reason else ""),
                 f"requests: {stats.total:,} · errors: {stats.errors:,} · p50 {_ms(p50)} ms · p95 {_ms(p95)} ms",
                 "faults: " + (", ".join(runner.ctx.faults.policy.describe()) or "none"),
                 f"control API: {runner.url or 'http://…'}/__mockpanel/docs"]
        self.app.push_screen(TextDialog(f"Server {name}", "\n".join(lines), "Esc closes"))

    async def action_toggle_server(self) -> None:
        name = self.selected()
        if name is None:
            return
        runner = self.hub[name]
        if runner.status == "running":
            await runner.stop()
            self.notify(f"{name} stopped")
        else:
            ok = await runner.start()
            self.notify(f"{name} {'running at ' + (runner.url or '') if ok else 'failed: ' + (runner.reason or '')}", severity="information" if ok else "error")

    async def action_restart_server(self) -> None:
        name = self.selected()
        if name is not None:
            await self.app.restart_server(name)
