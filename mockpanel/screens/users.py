"""Users pane: the auth mock's users; copy a user's tokens, issue one with a chosen expiry, add a user, reset."""

from __future__ import annotations

from datetime import timedelta

from textual.binding import Binding
from textual.widgets import DataTable, Static

from ..display import plain
from ..spec import DomainError
from .base import Pane, cursor_key, restore_cursor
from .dialogs import ConfirmDialog, PromptDialog


class UsersPane(Pane):
    TITLE = "Users"
    KEY = "users"
    SERVERS = ("auth",)
    BINDINGS = [
        Binding("c", "copy_access", "Copy access token", tooltip="Copy a fresh access token of the selected user"),
        Binding("a", "copy_access", "Copy access token", show=False),
        Binding("t", "copy_refresh", "Copy refresh token"),
        Binding("i", "issue", "Issue token…", tooltip="An access token with the expiry you choose"),
        Binding("n", "add_user", "Add user…"),
        Binding("x", "reset_users", "Reset users…", tooltip="Back to the seed users; added ones are deleted (asks first)"),
    ]

    def compose(self):
        if self.runner("auth") is None:
            yield Static("The auth server is not running (see --only).", classes="empty")
            return
        table = DataTable(id="users-table", cursor_type="row", zebra_stripes=True)
        table.add_columns("email", "name", "id", "created")
        yield table

    @property
    def accounts(self):
        return self.facade("auth")

    def refresh_view(self) -> None:
        if self.accounts is None:
            return
        table = self.query_one(DataTable)
        key, row = cursor_key(table), table.cursor_row
        table.clear()
        for user in self.accounts.users():
            table.add_row(plain(user.email), plain(user.name), user.id, user.created_at, key=user.id)
        restore_cursor(table, key, row)

    def selected_id(self) -> str | None:
        if self.accounts is None:
            return None
        return cursor_key(self.query_one(DataTable))

    def acts_on(self) -> str:
        user_id = self.selected_id()
        try:
            return self.accounts.user(user_id).email if user_id is not None else ""
        except DomainError:
            return ""

    def copy_token(self, kind: str, ttl: timedelta | None = None) -> None:
        user_id = self.selected_id()
        if user_id is not None:
            self.app.copy_token(user_id, kind, ttl)

    def action_copy_access(self) -> None:
        self.copy_token("access")

    def action_copy_refresh(self) -> None:
        self.copy_token("refresh")

    def action_issue(self) -> None:
        def issue(answer: str | None) -> None:
            if not answer:
                return
            try:
                minutes = int(answer)
                if minutes <= 0:
                    raise ValueError
            except ValueError:
                self.app.notify(f"{answer!r} is not a whole number of minutes", severity="error")
                return
            self.copy_token("access", timedelta(minutes=minutes))

        if self.selected_id() is not None:
            self.app.push_screen(PromptDialog("Expiry of the access token, in minutes", "60"), issue)

    def action_add_user(self) -> None:
        async def add(answer: str | None) -> None:
            if not answer:
                return
            parts = answer.split()
            if len(parts) < 3:
                self.app.notify("type: email password name…", severity="error")
                return
            try:  # the same checks as POST /api/auth/register
                user = await self.accounts.register(parts[0], parts[1], " ".join(parts[2:]))
            except DomainError as exc:
                self.app.notify(exc.message, severity="error")
                return
            self.app.notify(f"added {user.email}")

        self.app.push_screen(PromptDialog("New user: email password name", placeholder="frank@example.com password123 Frank Castle"), add)

    def action_reset_users(self) -> None:
        def reset(yes: bool | None) -> None:
            if yes:
                count = self.accounts.reset_users()
                self.app.notify(f"users reset to the {count} seed users")

        self.app.push_screen(ConfirmDialog(f"Reset users: delete the {len(self.accounts.users())} users and bring back the seed ones?"), reset)
