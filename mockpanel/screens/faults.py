"""Faults pane: each server's fault policy, switched with single keys; one key turns all chaos off."""

from __future__ import annotations

from textual.binding import Binding
from textual.widgets import DataTable, Static

from ..display import plain
from .base import Pane

ERROR_RATES = (0.0, 0.1, 0.3, 0.5, 1.0)


class FaultsPane(Pane):
    TITLE = "Faults"
    KEY = "faults"
    BINDINGS = [
        Binding("d", "toggle('delay_enabled')", "Delays", tooltip="Delays on/off (min/max ms from the policy)"),
        Binding("e", "cycle_errors", "Error rate", tooltip="Cycle the error rate: 0, 10, 30, 50, 100 %"),
        Binding("n", "fail_next", "Fail next 3"),
        Binding("p", "toggle_rate('drop_rate')", "Drop", tooltip="Drop 10 % of connections with no response"),
        Binding("h", "toggle_rate('hang_rate')", "Hang", tooltip="Hold 10 % of requests until the client gives up"),
        Binding("m", "delay_bounds", "Delay ms…"),
        Binding("c", "error_codes", "Codes…", tooltip="Status codes injected errors use, e.g. 503,500"),
        Binding("o", "clear_one", "Off (this server)"),
        Binding("s", "scenario", "Scenario…", tooltip="Run a TOML fault schedule from now"),
    ]

    HINT = "Keys act on the selected server; the last row acts on every server. ! turns all chaos off."

    def compose(self):
        yield Static(self.HINT, classes="hint", id="faults-hint")
        table = DataTable(id="faults-table", cursor_type="row", zebra_stripes=True)
        table.add_columns("server", "delay", "min ms", "max ms", "error rate", "codes", "fail next", "drop", "hang")
        yield table

    def refresh_view(self) -> None:
        run = self.hub.scenario_run
        self.query_one("#faults-hint", Static).update(plain(self.HINT + (f"\n{run.describe()}" if run is not None else ""), lines=True))
        table = self.query_one(DataTable)
        cursor = table.cursor_row
        table.clear()
        for name, runner in self.hub.runners.items():
            p = runner.ctx.faults.policy
            table.add_row(name, "on" if p.delay_enabled else "off", str(p.min_delay_ms), str(p.max_delay_ms), f"{p.error_rate:.0%}",
                          ",".join(map(str, p.error_codes)), str(p.fail_next), f"{p.drop_rate:.0%}", f"{p.hang_rate:.0%}", key=name)
        table.add_row("(all servers)", "", "", "", "", "", "", "", "", key="*")
        if table.row_count:
            table.move_cursor(row=min(cursor, table.row_count - 1))

    def targets(self) -> list:
        table = self.query_one(DataTable)
        key = str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)
        return list(self.hub.runners.values()) if key == "*" else [self.hub[key]]

    def change(self, **fields) -> None:
        for runner in self.targets():
            runner.ctx.faults.update(**fields)
        names = ", ".join(r.name for r in self.targets())
        self.app.notify(f"{names}: " + ", ".join(f"{k}={v}" for k, v in fields.items()))

    def action_toggle(self, field: str) -> None:
        first = self.targets()[0].ctx.faults.policy
        self.change(**{field: not getattr(first, field)})

    def action_toggle_rate(self, field: str) -> None:
        first = self.targets()[0].ctx.faults.policy
        self.change(**{field: 0.0 if getattr(first, field) else 0.1})

    def action_cycle_errors(self) -> None:
        current = self.targets()[0].ctx.faults.policy.error_rate
        later = [r for r in ERROR_RATES if r > current]
        self.change(error_rate=later[0] if later else 0.0)

    def action_fail_next(self) -> None:
        self.change(fail_next=3)

    def action_scenario(self) -> None:
        self.app.ask_scenario()

    def action_clear_one(self) -> None:
        for runner in self.targets():
            runner.ctx.faults.clear()

    def action_error_codes(self) -> None:
        from .dialogs import PromptDialog

        def apply(answer: str | None) -> None:
            if not answer:
                return
            try:
                self.change(error_codes=[int(code) for code in answer.replace(" ", "").split(",") if code])
            except ValueError:
                self.app.notify("type HTTP error codes from 400 to 599, e.g. 503,500", severity="error")

        current = ",".join(map(str, self.targets()[0].ctx.faults.policy.error_codes))
        self.app.push_screen(PromptDialog("Status codes of injected errors (comma-separated)", current), apply)

    def action_delay_bounds(self) -> None:
        from .dialogs import PromptDialog

        def apply(answer: str | None) -> None:
            try:
                low, high = (int(x) for x in (answer or "").replace("-", " ").split())
                self.change(min_delay_ms=low, max_delay_ms=high, delay_enabled=True)
            except (ValueError, TypeError):
                if answer:
                    self.app.notify("type two numbers: min max (ms), min not above max", severity="error")

        p = self.targets()[0].ctx.faults.policy
        self.app.push_screen(PromptDialog("Delay bounds in ms: min max", f"{p.min_delay_ms} {p.max_delay_ms}"), apply)
