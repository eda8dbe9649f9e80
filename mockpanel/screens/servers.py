"""Servers pane: every mock with its URL, status, counters, latency and active faults; stop, start, restart."""

from __future__ import annotations

from textual.binding import Binding
from textual.widgets import DataTable

from ..display import plain
from .base import Pane


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


class ServersPane(Pane):
    TITLE = "Servers"
    KEY = "servers"
    BINDINGS = [
        Binding("s", "toggle_server", "Stop/start", tooltip="Stop the selected server, or start it again"),
        Binding("r", "restart_server", "Restart", tooltip="Restart the selected server (state is kept)"),
    ]

    def compose(self):
        table = DataTable(id="servers-table", cursor_type="row", zebra_stripes=True)
        table.add_columns("server", "url", "status", "requests", "errors", "p50 ms", "p95 ms", "faults")
        yield table

    def selected(self) -> str | None:
        table = self.query_one(DataTable)
        if not table.row_count:
            return None
        return str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)

    def refresh_view(self) -> None:
        table = self.query_one(DataTable)
        cursor = table.cursor_row
        table.clear()
        for name, runner in self.hub.runners.items():
            stats = runner.ctx.stats
            status = runner.status if runner.status != "failed" else f"failed: {runner.reason}"
            faults = ", ".join(runner.ctx.faults.policy.describe()) or "—"
            p50, p95 = stats.latency()
            table.add_row(name, runner.url or "—", plain(status), str(stats.total), str(stats.errors), _ms(p50), _ms(p95), faults, key=name)
        if table.row_count:
            table.move_cursor(row=min(cursor, table.row_count - 1))

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
