"""Traces pane: recent traces across every server (root, servers touched, duration, errors, faults) and the
waterfall of the highlighted one — each hop's server, method, path, status, duration and fault, indented under its
parent, with a bar where it sat in time. Enter on a trace moves to its hops; Enter on a hop opens its request."""

from __future__ import annotations

import time
from typing import Any

from textual import on
from textual.binding import Binding
from textual.widgets import DataTable, Static

from ..display import plain
from ..journal import RequestEntry, summarize
from ..timefmt import clock
from ..hubclient import panel_op
from .base import Pane, cursor_key, cut, restore_cursor, status_cell
from .dialogs import TextDialog
from .requests import describe

TRACES_SHOWN = 30
REDRAW_SECONDS = 1.0
SCANNED = 1_000  # the newest requests looked at per redraw (a trace older than that is in the control API)
BAR = 24  # cells of the waterfall's time bar


def waterfall(hops: list[RequestEntry], external: list[Any] = ()) -> list[tuple[str, int, Any]]:
    """(key, depth, hop or span) in tree order: each hop under its parent, siblings by start time."""
    items = [(h.span_id, h.parent_id, h.time, h) for h in hops] + [(s.span_id, s.parent_id, s.start, s) for s in external]
    known = {span_id for span_id, _, _, _ in items}
    children: dict[str | None, list[tuple[str, float, Any]]] = {}
    for span_id, parent, start, item in items:
        children.setdefault(parent if parent in known else None, []).append((span_id, start, item))
    ordered: list[tuple[str, int, Any]] = []

    def walk(parent: str | None, depth: int) -> None:
        for span_id, _, item in sorted(children.get(parent, []), key=lambda c: c[1]):
            ordered.append((span_id, depth, item))
            if depth < 32:
                walk(span_id, depth + 1)

    walk(None, 0)
    return ordered


def bar(start: float, end: float, first: float, last: float) -> str:
    span = max(last - first, 1e-6)
    left = int((start - first) / span * BAR)
    width = max(1, round((end - start) / span * BAR))
    return ("·" * left + "█" * width)[:BAR].ljust(BAR, "·")


@panel_op
def traces_list(hub: Any, errors_only: bool) -> list[dict[str, Any]]:
    return hub.journal.traces(TRACES_SHOWN, errors_only=errors_only, scan=SCANNED)


@panel_op
def trace_parts(hub: Any, trace_id: str) -> tuple[list[RequestEntry], list[Any]]:
    """A trace's journaled hops and its exported spans (read on the servers' loop; neither changes once stored)."""
    return hub.journal.trace(trace_id), hub.journal.external.of(trace_id)


class TracesPane(Pane):
    TITLE = "Traces"
    KEY = "traces"
    SERVERS = ()  # any request may start or extend a trace
    BINDINGS = [
        Binding("enter", "open", "Open", tooltip="On a trace: its hops; on a hop: its request in full"),
        Binding("E", "toggle_errors", "Errors only", tooltip="Only traces with a 5xx, an unanswered request or an error span"),
        Binding("w", "write_trace", "Write OTLP", tooltip="Write the selected trace as OTLP/JSON (Jaeger, Grafana Tempo) in the current directory"),
        Binding("P", "save_test", "Save as test", tooltip="Write the selected trace as a pytest file that replays it against fresh mocks"),
    ]

    def __init__(self, hub: Any) -> None:
        super().__init__(hub)
        self.errors_only = False
        self.shown_trace: str | None = None
        self._drawn_at = 0.0
        self._pending_redraw = False
        self._hops_shown: tuple | None = None  # (trace id, hops, spans) the hops table shows

    def apply(self, batch: list[Any]) -> None:
        """At most one redraw a second under traffic (a redraw groups the newest requests into traces and fills two
        tables; at thousands of requests a second, four a second would hold the loop the servers share)."""
        if not batch or self._pending_redraw:
            return
        wait = REDRAW_SECONDS - (time.monotonic() - self._drawn_at)
        if wait <= 0:
            self.refresh_view()
        else:
            self._pending_redraw = True
            self.set_timer(wait, self._redraw_later)

    def _redraw_later(self) -> None:
        self._pending_redraw = False
        if self.drawable and self.app.active_pane() is self:
            self.refresh_view()

    def compose(self):
        yield Static("", id="traces-summary")
        table = DataTable(id="traces-table", cursor_type="row", zebra_stripes=True)
        table.add_column("time", width=12)
        table.add_column("root", width=34)
        table.add_column("servers", width=30)
        table.add_column("ms", width=9)
        table.add_column("hops", width=5)
        table.add_column("errors", width=6)
        table.add_column("faults", width=20)
        yield table
        hops = DataTable(id="hops-table", cursor_type="row")
        hops.add_column("hop", width=44)
        hops.add_column("status", width=6)
        hops.add_column("ms", width=9)
        hops.add_column("when", width=BAR)
        hops.add_column("fault", width=20)
        yield hops

    def selected_trace(self) -> str | None:
        return cursor_key(self.query_one("#traces-table", DataTable))

    def acts_on(self) -> str:
        return self.selected_trace() or ""

    def refresh_view(self) -> None:
        self._drawn_at = time.monotonic()
        table = self.query_one("#traces-table", DataTable)
        key, row = cursor_key(table), table.cursor_row
        found = self.read(traces_list, self.errors_only)
        table.clear()
        for t in found:
            table.add_row(clock(t["started"]),
                          plain(cut(t["root"], 34)), plain(cut(" → ".join(t["servers"]), 30)), f"{t['duration_ms']:.1f}",
                          str(t["requests"] + t["spans"]), str(t["errors"]) if t["errors"] else "", plain(cut(", ".join(t["faults"]), 20)),
                          key=t["trace_id"])
        restore_cursor(table, key, row)
        noun = "trace" if len(found) == 1 else "traces"
        which = f"{noun} with an error" if self.errors_only else noun
        self.query_one("#traces-summary", Static).update(
            plain(f"{len(found)} {which} (newest first) · Enter opens one · E: {'all traces' if self.errors_only else 'errors only'}")
            if found else "No traces yet: every request starts one, and calls between the mocks join it.",
            layout=False)  # one line (CSS): a layout pass would redraw the whole screen once a second under traffic
        self.show_hops(self.selected_trace())

    def show_hops(self, trace_id: str | None) -> None:
        hops_table = self.query_one("#hops-table", DataTable)
        hops, external = self.read(trace_parts, trace_id) if trace_id else ([], [])
        # A journaled request never changes: the same trace with as many hops and spans draws the same rows (a redraw
        # of the list, and the highlight it moves, would otherwise re-render every hop cell).
        shown = (trace_id, len(hops), len(external))
        if shown == self._hops_shown:
            return
        self._hops_shown = shown
        key, row = (cursor_key(hops_table), hops_table.cursor_row) if trace_id == self.shown_trace else (None, 0)
        self.shown_trace = trace_id
        hops_table.clear()
        if not hops and not external:
            return
        starts = [h.time for h in hops] + [s.start for s in external]
        ends = [h.time + h.duration_ms / 1000 for h in hops] + [s.end for s in external]
        first, last = min(starts), max(ends)
        for span_id, depth, item in waterfall(hops, external):
            indent = "  " * depth
            if isinstance(item, RequestEntry):
                label = f"{indent}{item.server} {item.method} {item.path}"
                cells = (status_cell(item.status), f"{item.duration_ms:.1f}", bar(item.time, item.time + item.duration_ms / 1000, first, last),
                         plain(cut(item.fault or "", 20)))
            else:
                label = f"{indent}{item.service}: {item.name}"
                cells = ("error" if item.error else "", f"{(item.end - item.start) * 1000:.1f}", bar(item.start, item.end, first, last), "")
            hops_table.add_row(plain(cut(label, 44)), *cells, key=span_id)
        restore_cursor(hops_table, key, row)

    @on(DataTable.RowHighlighted, "#traces-table")
    def trace_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self.show_hops(self.selected_trace())

    @on(DataTable.RowSelected, "#traces-table")
    def trace_selected(self, event: DataTable.RowSelected) -> None:
        self.query_one("#hops-table", DataTable).focus()

    @on(DataTable.RowSelected, "#hops-table")
    def hop_selected(self, event: DataTable.RowSelected) -> None:
        self.open_hop()

    def action_open(self) -> None:
        if self.query_one("#hops-table", DataTable).has_focus:
            self.open_hop()
        else:
            self.query_one("#hops-table", DataTable).focus()

    def open_hop(self) -> None:
        span_id = cursor_key(self.query_one("#hops-table", DataTable))
        if span_id is None or self.shown_trace is None:
            return
        hops, spans = self.read(trace_parts, self.shown_trace)
        hop = next((h for h in hops if h.span_id == span_id), None)
        if hop is not None:
            self.app.push_screen(TextDialog(f"Request #{hop.id} ({hop.server})", describe(hop), "Esc closes"))
            return
        span = next((s for s in spans if s.span_id == span_id), None)
        if span is not None:
            lines = [f"{k}: {v}" for k, v in span.as_dict().items() if k != "attributes"] + [f"  {k} = {v}" for k, v in span.attributes.items()]
            self.app.push_screen(TextDialog(f"Span {span.name} ({span.service})", "\n".join(lines), "Esc closes"))

    def action_toggle_errors(self) -> None:
        self.errors_only = not self.errors_only
        self.refresh_view()
        self.app.notify("showing traces with an error only" if self.errors_only else "showing every trace")

    def action_write_trace(self) -> None:
        import json
        from pathlib import Path

        from .. import export

        trace_id = self.selected_trace()
        if trace_id is None:
            return
        hops, external = self.read(trace_parts, trace_id)
        path = Path(f"trace-{trace_id}.json")
        try:
            path.write_text(json.dumps(export.otlp_json(hops, external), indent=1))
        except OSError as exc:
            self.app.notify(f"cannot write {path}: {exc.strerror}", severity="error")
            return
        self.app.notify(f"wrote {path.resolve()} ({summarize(hops, external)['requests']} hops, OTLP/JSON)")

    def action_save_test(self) -> None:
        from pathlib import Path

        from .. import testgen

        trace_id = self.selected_trace()
        if trace_id is None:
            return
        path = Path(f"test_trace_{trace_id[:8]}.py")
        try:
            path.write_text(testgen.generate(self.read(trace_parts, trace_id)[0], trace_id=trace_id, title=f"trace {trace_id[:8]}",
                                             redact=getattr(self.app, "redact", False)))
        except OSError as exc:
            self.app.notify(f"cannot write {path}: {exc.strerror}", severity="error")
            return
        self.app.notify(f"wrote {path.resolve()}: run it with pytest (it starts its own mocks)")
