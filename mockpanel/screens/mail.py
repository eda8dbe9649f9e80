"""Mail pane (key M, when the mail server runs): messages as they arrive; the selected one's text (HTML shown as
words, never as markup or escape sequences), its links and codes, its attachments; `c` copies its first link (or
code), `x` deletes it, `K` sets Mailpit's chaos triggers."""

from __future__ import annotations

import re
from typing import Any

from textual import on
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Static

from ..display import plain
from ..hubclient import panel_op
from ..journal import DomainEvent, RequestEntry
from ..spec import DomainError
from .base import Pane, cursor_key, cut, restore_cursor, size_text

MAX_ROWS = 500
MAX_TEXT = 20_000  # characters of a message's text the pane shows (the API has it all)
_CODE = re.compile(r"(?<![\w/=.-])(\d{4,8}|[A-Z0-9]{6,10})(?![\w/=.-])")


@panel_op
def mail_rows(hub: Any) -> list[tuple[str, str, str, str, str, int, int, bool]]:
    """(id, received, from, to, subject, size, attachments, read) of the newest messages."""
    box = hub.facade("mail").mailbox
    rows = []
    for message in box.newest_first()[:MAX_ROWS]:
        summary = message.summary()
        to = ", ".join(a["Address"] for a in summary["To"]) or ", ".join(message.recipients)
        rows.append((message.id, summary["Created"], summary["From"]["Address"], to, summary["Subject"], summary["Size"],
                     summary["Attachments"], message.read))
    return rows


@panel_op
def mail_detail(hub: Any, message_id: str) -> dict[str, Any] | None:
    """What the pane shows of one message (None once it is gone): its addresses, its text (or its HTML as words),
    its links, the codes in it, its attachments."""
    box = hub.facade("mail").mailbox
    try:
        message = box.get(message_id)
    except DomainError:
        return None
    summary = message.summary()
    text = message.words()
    return {"from": summary["From"], "to": summary["To"], "bcc": summary["Bcc"], "subject": summary["Subject"],
            "created": summary["Created"], "text": text[:MAX_TEXT], "left_out": max(0, len(text) - MAX_TEXT), "links": message.links(),
            "codes": list(dict.fromkeys(_CODE.findall(text)))[:20], "attachments": [p.summary() for p in message.attachments]}


@panel_op
def mail_delete(hub: Any, message_id: str) -> int:
    return hub.facade("mail").mailbox.delete([message_id])


@panel_op
def mail_chaos(hub: Any, words: str) -> dict[str, Any]:
    """Mailpit's chaos triggers from words: `recipient 451 50` (trigger, SMTP code, % of commands), `off`."""
    from ..spec import Invalid

    catcher = hub.facade("mail").catcher
    parts = words.split()
    if parts in (["off"], []):
        return catcher.chaos.set({})
    names = {"sender": "Sender", "recipient": "Recipient", "auth": "Authentication", "authentication": "Authentication"}
    if len(parts) != 3 or parts[0].lower() not in names or not parts[1].isdigit() or not parts[2].isdigit():
        raise Invalid("type: recipient 451 50 (trigger: sender, recipient or auth; an SMTP code; a percentage), or off")
    triggers = {k: v for k, v in catcher.chaos.triggers.items() if v["Probability"]}
    triggers[names[parts[0].lower()]] = {"ErrorCode": int(parts[1]), "Probability": int(parts[2])}
    return catcher.chaos.set(triggers)


class MailPane(Pane):
    TITLE = "Mail"
    KEY = "mail"
    SERVERS = ("mail",)
    BINDINGS = [
        Binding("c", "copy_link", "Copy link", tooltip="The selected message's first link (or code) on the clipboard; all of them shown"),
        Binding("x,delete", "delete", "Delete…", tooltip="Delete the selected message (asks first)"),
        Binding("K", "chaos", "Chaos…", tooltip="SMTP errors on purpose: recipient 451 50, sender 421 100, auth 535 100, or off"),
    ]

    def compose(self):
        if not self.serves("mail"):
            yield Static("The mail server is not running (mockpanel --only mail, or [mail] enabled = true).", classes="empty")
            return
        table = DataTable(id="mail-table", cursor_type="row", zebra_stripes=True)
        table.add_columns("received", "from", "to", "subject", "size", "files")
        yield table
        with VerticalScroll(id="mail-detail-scroll"):
            yield Static("", id="mail-detail")

    def apply(self, batch: list[Any]) -> None:
        if any((isinstance(i, DomainEvent) and i.server == "mail") or (isinstance(i, RequestEntry) and i.server == "mail") for i in batch):
            self.refresh_view()

    def refresh_view(self) -> None:
        if not self.serves("mail"):
            return
        table = self.query_one(DataTable)
        key, row = cursor_key(table), table.cursor_row
        table.clear()
        for message_id, received, sender, to, subject, size, files, read in self.read(mail_rows):
            table.add_row(received[11:19], plain(cut(sender, 30)), plain(cut(to, 30)), plain(cut(subject or "(no subject)", 50)),
                          size_text(size), str(files or ""), key=message_id)
        if table.row_count:
            restore_cursor(table, key, row)
            self.show_detail(self.selected())
        else:
            self.query_one("#mail-detail", Static).update(plain("No mail yet: send to SMTP at the mail server's smtp_port (1025).", lines=True))

    def selected(self) -> str | None:
        return cursor_key(self.query_one(DataTable)) if self.serves("mail") else None

    def acts_on(self) -> str:
        message_id = self.selected()
        found = self.read(mail_detail, message_id) if message_id else None
        return f"“{found['subject']}”" if found else ""

    @on(DataTable.RowHighlighted, "#mail-table")
    def highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key is not None:
            self.show_detail(str(event.row_key.value))

    def show_detail(self, message_id: str | None) -> None:
        found = self.read(mail_detail, message_id) if message_id else None
        if found is None:
            return
        lines = [f"From: {found['from']['Name']} <{found['from']['Address']}>",
                 "To: " + ", ".join(f"{a['Name']} <{a['Address']}>" for a in found["to"]),
                 *(["Bcc: " + ", ".join(a["Address"] for a in found["bcc"])] if found["bcc"] else []),
                 f"Subject: {found['subject']}", f"Received: {found['created']}", "", found["text"]]
        if found["left_out"]:
            lines.append(f"… {found['left_out']:,} more characters (GET /api/v1/message/{message_id} has them all)")
        if found["links"]:
            lines += ["", "Links (c copies the first):", *(f"  {n}. {link}" for n, link in enumerate(found["links"], 1))]
        if found["codes"]:
            lines += ["", "Codes: " + "  ".join(found["codes"])]
        if found["attachments"]:
            lines += ["", "Attachments:", *(f"  {a['FileName'] or a['PartID']} ({a['ContentType']}, {size_text(int(a['Size']))})"
                                            for a in found["attachments"])]
        self.query_one("#mail-detail", Static).update(plain("\n".join(lines), lines=True))  # the sender's text: never markup

    def action_copy_link(self) -> None:
        message_id = self.selected()
        found = self.read(mail_detail, message_id) if message_id else None
        if found is None:
            return
        choices = found["links"] or found["codes"]
        if not choices:
            self.app.notify("no link or code in this message", severity="warning")
            return
        what = "link" if found["links"] else "code"
        self.app.copy_and_show(choices[0], f"First {what} of “{found['subject']}”", f"{what} copied to the clipboard",
                               details="\n".join(["All of them:", *choices]))

    def action_delete(self) -> None:
        from .dialogs import ConfirmDialog

        message_id = self.selected()
        found = self.read(mail_detail, message_id) if message_id else None
        if found is None:
            return

        def delete(yes: bool | None) -> None:
            if yes:
                self.client.command(mail_delete, message_id)
                self.refresh_view()

        self.app.push_screen(ConfirmDialog(f"Delete “{found['subject']}”?"), delete)

    def action_chaos(self) -> None:
        from .dialogs import PromptDialog

        def set_chaos(answer: str | None) -> None:
            if answer is None:
                return
            try:
                view = self.client.command(mail_chaos, answer)
            except DomainError as exc:
                self.app.notify(str(exc), severity="error")
                return
            active = [f"{name} {t['ErrorCode']} at {t['Probability']}%" for name, t in view["Triggers"].items() if t["Probability"]]
            self.app.notify("SMTP chaos: " + (", ".join(active) or "off"))

        self.app.push_screen(PromptDialog("SMTP chaos: trigger code percent (recipient 451 50), or off", "off"), set_chaos)
