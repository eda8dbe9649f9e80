"""Webhooks pane: deliveries as they arrive with their signature verdicts, the detail and signature debugger,
replay, a client's response plan, clear."""

from __future__ import annotations

from pathlib import Path

from textual import on
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Static

from ..display import plain
from ..spec import DomainError
from .base import Pane, cursor_key, cut, restore_cursor, status_cell
from .dialogs import ConfirmDialog, PromptDialog

MAX_ROWS = 500
COPY_LIMIT = 64 * 1024  # what `c` copies and shows (a dialog holding megabytes would hold the loop); `w` writes it all


class WebhooksPane(Pane):
    TITLE = "Webhooks"
    KEY = "webhooks"
    SERVERS = ("webhooks",)
    BINDINGS = [
        Binding("y", "replay", "Replay…", tooltip="Re-send the selected event to a URL"),
        Binding("p", "plan", "Response plan…", tooltip="e.g. 500x3+200, delay=2000, timeout; empty: none"),
        Binding("c", "copy_body", "Copy body", tooltip="The selected event's body on the clipboard (up to 64 KiB; w writes it all)"),
        Binding("w", "write_body", "Write body…", tooltip="Write the selected event's whole body to a file"),
        Binding("x", "clear", "Clear…", tooltip="Delete every stored webhook (asks first)"),
    ]

    def compose(self):
        if self.runner("webhooks") is None:
            yield Static("The webhook receiver is not running (see --only).", classes="empty")
            return
        table = DataTable(id="webhooks-table", cursor_type="row", zebra_stripes=True)
        table.add_columns("time", "client", "event type", "signature", "scheme", "attempt", "answered")
        yield table
        with VerticalScroll(id="webhook-detail-scroll"):
            yield Static("", id="webhook-detail")

    @property
    def receiver(self):
        return self.facade("webhooks")

    def refresh_view(self) -> None:
        if self.receiver is None:
            return
        table = self.query_one(DataTable)
        key, row = cursor_key(table), table.cursor_row
        table.clear()
        for event in self.receiver.events()[:MAX_ROWS]:
            s = event.summary()
            table.add_row(s["received_at"][11:23], plain(cut(event.client_id, 24)), plain(cut(event.event_type or "—", 32)),
                          event.signature.verdict, event.signature.scheme or "—", str(event.attempt),
                          status_cell(event.response_status, none="held"), key=event.id)
        if table.row_count:
            restore_cursor(table, key, row)  # the same event stays selected as new ones arrive above it
            self.show_detail(self.selected())
        else:
            self.query_one("#webhook-detail", Static).update(plain(f"No webhooks yet. Try:\n\n  {self.example()}\n\n(c copies it)", lines=True))

    def selected(self) -> str | None:
        return cursor_key(self.query_one(DataTable))

    def acts_on(self) -> str:
        event_id = self.selected() if self.receiver is not None else None
        try:
            event = self.receiver.event(event_id) if event_id else None
        except DomainError:
            return ""
        return f"{event.event_type or 'event'} from {event.client_id}" if event is not None else ""

    @on(DataTable.RowHighlighted, "#webhooks-table")
    def highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key is not None:
            self.show_detail(str(event.row_key.value))

    def show_detail(self, event_id: str | None) -> None:
        if event_id is None:
            return
        try:
            event = self.receiver.event(event_id)
        except DomainError:  # gone (cleared, or the oldest dropped)
            return
        # Bounded: a 4 MB event costs what a 4 KB one does (the whole body: `w` writes it to a file).
        body, left_out = event.preview()
        if left_out:
            body += f"\n… {left_out:,} more bytes (w writes the whole body to a file)"
        sig = event.signature.as_dict()
        lines = [
            f"{event.event_type or 'event'} from {event.client_id} · {event.summary()['received_at']} · {len(event.body)} bytes · attempt {event.attempt}",
            f"signature: {sig['verdict']} ({sig['scheme'] or 'no scheme'})" + (f" — {sig['reason']}" if sig["reason"] else ""),
        ]
        if sig["expected"]:
            lines += [f"  expected: {sig['expected']}", f"  received: {sig['received']}", f"  secret:   {sig['secret_source']} ({sig['secret_hint']})"]
        if sig["timestamp_skew_s"] is not None:
            lines.append(f"  timestamp skew: {sig['timestamp_skew_s']:.0f}s")
        plan = self.receiver.plan_for(event.client_id)
        if plan is not None:
            lines.append(f"response plan for {event.client_id}: {plan.describe()} (p changes it, ! turns every plan off)")
        lines += ["", "headers:"] + ([f"  {k}: {cut(v, 200)}" for k, v in event.headers[:50]] or ["  (none)"])
        lines += ["", body]
        self.query_one("#webhook-detail", Static).update(plain("\n".join(lines), lines=True))

    def action_replay(self) -> None:
        event_id = self.selected()
        if event_id is None:
            return

        async def replay(answer: str | None) -> None:
            if not answer:
                return
            try:
                outcome = await self.receiver.replay(event_id, answer.strip())
            except DomainError as exc:
                self.app.notify(exc.message, severity="error")
                return
            message = f"delivered: {outcome['status']} in {outcome['duration_ms']} ms" if outcome["delivered"] else f"failed: {outcome['status'] or outcome['error']}"
            self.app.notify(f"replay to {answer}: {message}", severity="information" if outcome["delivered"] else "error")

        self.app.push_screen(PromptDialog("Replay the selected event to URL", placeholder="http://localhost:8080/webhooks"), replay)

    def action_plan(self) -> None:
        event_id = self.selected()
        client = self.receiver.event(event_id).client_id if event_id else None
        if client is None:
            return

        def set_plan(answer: str | None) -> None:
            if answer is None:
                return
            try:
                self.receiver.set_plan(client, answer)
            except DomainError as exc:
                self.app.notify(exc.message, severity="error")
                return
            self.app.notify(f"{client}: {'plan ' + answer if answer.strip() else 'no plan (always 200)'}")

        self.app.push_screen(PromptDialog(f"Response plan for {client}", placeholder="500x3+200"), set_plan)

    def action_write_body(self) -> None:
        event_id = self.selected()
        if event_id is None:
            return
        try:
            event = self.receiver.event(event_id)
        except DomainError:
            return

        def write(answer: str | None) -> None:
            if not answer:
                return
            target = Path(answer.strip()).expanduser()
            try:
                target.write_bytes(event.body)
            except OSError as exc:
                self.app.notify(f"cannot write {target}: {exc.strerror}", severity="error")
                return
            self.app.notify(f"{len(event.body):,} bytes written to {target.resolve()}")

        self.app.push_screen(PromptDialog("Write the whole body to", f"webhook-{event.id[:8]}.body"), write)

    def example(self) -> str:
        url = self.hub.urls().get("webhooks", "http://127.0.0.1:4000")
        return f"curl -X POST {url}/webhooks/my-app -H 'content-type: application/json' -d '{{\"event_type\": \"order.paid\"}}'"

    def action_copy_body(self) -> None:
        event_id = self.selected()
        if event_id is None:
            if self.receiver is not None and not self.receiver.events():
                self.app.copy_and_show(self.example(), "A first webhook", "example copied: run it in a shell")
            return
        try:
            event = self.receiver.event(event_id)
        except DomainError:
            return
        body = event.body[:COPY_LIMIT].decode("utf-8", "replace")
        note = f" (the first {COPY_LIMIT // 1024} KiB of {len(event.body):,} bytes: w writes it all)" if len(event.body) > COPY_LIMIT else ""
        self.app.copy_and_show(body, f"Body of {event.event_type or 'the event'} from {event.client_id}", f"webhook body copied{note}")

    def action_clear(self) -> None:
        count = len(self.receiver.events())

        def clear(yes: bool | None) -> None:
            if yes:
                self.app.notify(f"{self.receiver.clear()} webhooks deleted")
                self.query_one("#webhook-detail", Static).update("")

        if count:
            self.app.push_screen(ConfirmDialog(f"Delete all {count:,} stored webhooks?"), clear)
