"""Webhooks pane: deliveries as they arrive with their signature verdicts, the detail and signature debugger,
replay, a client's response plan, clear."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual import on
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Static

from ..display import plain
from ..spec import DomainError
from ..hubclient import panel_op, server_urls
from .base import Pane, cursor_key, cut, restore_cursor, status_cell
from .dialogs import ConfirmDialog, PromptDialog

MAX_ROWS = 500
COPY_LIMIT = 64 * 1024  # what `c` copies and shows (a dialog holding megabytes would hold the loop); `w` writes it all


# --- what the pane reads and asks, run on the servers' loop (plain data back: no event object crosses threads) ---


@panel_op
def webhook_count(hub: Any) -> int:
    return len(hub.facade("webhooks").events())


@panel_op
def clear_webhooks(hub: Any) -> int:
    return hub.facade("webhooks").clear()


@panel_op
def webhook_rows(hub: Any) -> list[tuple]:
    """(id, received at, client, event type, verdict, scheme, attempt, answered status) of the newest MAX_ROWS."""
    receiver = hub.facade("webhooks")
    return [(e.id, e.summary()["received_at"], e.client_id, e.event_type, e.signature.verdict, e.signature.scheme, e.attempt, e.response_status)
            for e in receiver.events()[:MAX_ROWS]]


@panel_op
def webhook_detail(hub: Any, event_id: str) -> dict[str, Any] | None:
    """What the detail shows of one event (bounded: a 4 MB body costs what a 4 KB one does); None once it is gone."""
    receiver = hub.facade("webhooks")
    try:
        event = receiver.event(event_id)
    except DomainError:
        return None
    body, left_out = event.preview()
    plan = receiver.plan_for(event.client_id)
    return {"id": event.id, "event_type": event.event_type, "client_id": event.client_id, "received_at": event.summary()["received_at"],
            "size": len(event.body), "attempt": event.attempt, "signature": event.signature.as_dict(), "body": body, "left_out": left_out,
            "plan": plan.describe() if plan is not None else None, "headers": list(event.headers[:50])}


@panel_op
def webhook_body(hub: Any, event_id: str) -> tuple[bytes, str, str | None] | None:
    """The whole body of one event, its client and event type; None once it is gone."""
    try:
        event = hub.facade("webhooks").event(event_id)
    except DomainError:
        return None
    return event.body, event.client_id, event.event_type


@panel_op
def set_response_plan(hub: Any, client: str, text: str) -> None:
    hub.facade("webhooks").set_plan(client, text)


@panel_op
async def replay(hub: Any, event_id: str, url: str) -> dict[str, Any]:
    return await hub.facade("webhooks").replay(event_id, url)


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
        if not self.serves("webhooks"):
            yield Static("The webhook receiver is not running (see --only).", classes="empty")
            return
        table = DataTable(id="webhooks-table", cursor_type="row", zebra_stripes=True)
        table.add_columns("time", "client", "event type", "signature", "scheme", "attempt", "answered")
        yield table
        with VerticalScroll(id="webhook-detail-scroll"):
            yield Static("", id="webhook-detail")

    def refresh_view(self) -> None:
        if not self.serves("webhooks"):
            return
        table = self.query_one(DataTable)
        key, row = cursor_key(table), table.cursor_row
        table.clear()
        for event_id, received_at, client, event_type, verdict, scheme, attempt, answered in self.read(webhook_rows):
            table.add_row(received_at[11:23], plain(cut(client, 24)), plain(cut(event_type or "—", 32)), verdict, scheme or "—", str(attempt),
                          status_cell(answered, none="held"), key=event_id)
        if table.row_count:
            restore_cursor(table, key, row)  # the same event stays selected as new ones arrive above it
            self.show_detail(self.selected())
        else:
            self.query_one("#webhook-detail", Static).update(plain(f"No webhooks yet. Try:\n\n  {self.example()}\n\n(c copies it)", lines=True))

    def selected(self) -> str | None:
        return cursor_key(self.query_one(DataTable))

    def acts_on(self) -> str:
        event_id = self.selected() if self.serves("webhooks") else None
        event = self.read(webhook_detail, event_id) if event_id else None
        return f"{event['event_type'] or 'event'} from {event['client_id']}" if event is not None else ""

    @on(DataTable.RowHighlighted, "#webhooks-table")
    def highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key is not None:
            self.show_detail(str(event.row_key.value))

    def show_detail(self, event_id: str | None) -> None:
        if event_id is None:
            return
        event = self.read(webhook_detail, event_id)
        if event is None:  # gone (cleared, or the oldest dropped)
            return
        # Bounded: a 4 MB event costs what a 4 KB one does (the whole body: `w` writes it to a file).
        body, left_out = event["body"], event["left_out"]
        if left_out:
            body += f"\n… {left_out:,} more bytes (w writes the whole body to a file)"
        sig = event["signature"]
        lines = [
            f"{event['event_type'] or 'event'} from {event['client_id']} · {event['received_at']} · {event['size']} bytes · attempt {event['attempt']}",
            f"signature: {sig['verdict']} ({sig['scheme'] or 'no scheme'})" + (f" — {sig['reason']}" if sig["reason"] else ""),
        ]
        if sig["expected"]:
            lines += [f"  expected: {sig['expected']}", f"  received: {sig['received']}", f"  secret:   {sig['secret_source']} ({sig['secret_hint']})"]
        if sig["timestamp_skew_s"] is not None:
            lines.append(f"  timestamp skew: {sig['timestamp_skew_s']:.0f}s")
        if event["plan"] is not None:
            lines.append(f"response plan for {event['client_id']}: {event['plan']} (p changes it, ! turns every plan off)")
        lines += ["", "headers:"] + ([f"  {k}: {cut(v, 200)}" for k, v in event["headers"]] or ["  (none)"])
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
                outcome = await self.client.wait(replay, event_id, answer.strip())
            except DomainError as exc:
                self.app.notify(exc.message, severity="error")
                return
            message = f"delivered: {outcome['status']} in {outcome['duration_ms']} ms" if outcome["delivered"] else f"failed: {outcome['status'] or outcome['error']}"
            self.app.notify(f"replay to {answer}: {message}", severity="information" if outcome["delivered"] else "error")

        self.app.push_screen(PromptDialog("Replay the selected event to URL", placeholder="http://localhost:8080/webhooks"), replay)

    def action_plan(self) -> None:
        event_id = self.selected()
        event = self.read(webhook_detail, event_id) if event_id else None
        if event is None:
            return
        client = event["client_id"]

        def set_plan(answer: str | None) -> None:
            if answer is None:
                return
            try:
                self.client.command(set_response_plan, client, answer)
            except DomainError as exc:
                self.app.notify(exc.message, severity="error")
                return
            self.app.notify(f"{client}: {'plan ' + answer if answer.strip() else 'no plan (always 200)'}")

        self.app.push_screen(PromptDialog(f"Response plan for {client}", placeholder="500x3+200"), set_plan)

    def action_write_body(self) -> None:
        event_id = self.selected()
        if event_id is None:
            return
        found = self.read(webhook_body, event_id)
        if found is None:
            return
        body = found[0]

        def write(answer: str | None) -> None:
            if not answer:
                return
            target = Path(answer.strip()).expanduser()
            try:
                target.write_bytes(body)
            except OSError as exc:
                self.app.notify(f"cannot write {target}: {exc.strerror}", severity="error")
                return
            self.app.notify(f"{len(body):,} bytes written to {target.resolve()}")

        self.app.push_screen(PromptDialog("Write the whole body to", f"webhook-{event_id[:8]}.body"), write)

    def example(self) -> str:
        url = self.read(server_urls).get("webhooks", "http://127.0.0.1:4000")
        return f"curl -X POST {url}/webhooks/my-app -H 'content-type: application/json' -d '{{\"event_type\": \"order.paid\"}}'"

    def action_copy_body(self) -> None:
        event_id = self.selected()
        if event_id is None:
            if self.serves("webhooks") and not self.read(webhook_count):
                self.app.copy_and_show(self.example(), "A first webhook", "example copied: run it in a shell")
            return
        found = self.read(webhook_body, event_id)
        if found is None:
            return
        whole, client, event_type = found
        body = whole[:COPY_LIMIT].decode("utf-8", "replace")
        note = f" (the first {COPY_LIMIT // 1024} KiB of {len(whole):,} bytes: w writes it all)" if len(whole) > COPY_LIMIT else ""
        self.app.copy_and_show(body, f"Body of {event_type or 'the event'} from {client}", f"webhook body copied{note}")

    def action_clear(self) -> None:
        count = self.read(webhook_count)

        def clear(yes: bool | None) -> None:
            if yes:
                self.app.notify(f"{self.client.command(clear_webhooks)} webhooks deleted")
                self.query_one("#webhook-detail", Static).update("")

        if count:
            self.app.push_screen(ConfirmDialog(f"Delete all {count:,} stored webhooks?"), clear)
