"""Users pane: the auth mock's users; copy a user's tokens, issue one with a chosen expiry, add a user, reset."""

from __future__ import annotations

from datetime import timedelta

from textual.binding import Binding
from textual.widgets import DataTable, Static

from ..display import plain
from ..spec import DomainError
from .base import Pane
from .dialogs import PromptDialog


class UsersPane(Pane):
    TITLE = "Users"
    KEY = "users"
    SERVERS = ("auth",)
    BINDINGS = [
        Binding("a", "copy_access", "Copy access token", tooltip="Copy a fresh access token of the selected user"),
        Binding("r", "copy_refresh", "Copy refresh token"),
        Binding("i", "issue", "Issue token…", tooltip="An access token with the expiry you choose"),
        Binding("n", "add_user", "Add user…"),
        Binding("x", "reset_users", "Reset to seed"),
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
        cursor = table.cursor_row
        table.clear()
        for user in self.accounts.users():
            table.add_row(plain(user.email), plain(user.name), user.id, user.created_at, key=user.id)
        if table.row_count:
            table.move_cursor(row=min(cursor, table.row_count - 1))

    def selected_id(self) -> str | None:
        if self.accounts is None:
            return None
        table = self.query_one(DataTable)
        if not table.row_count:
            return None
        return str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)

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
        count = self.accounts.reset_users()
        self.app.notify(f"users reset to the {count} seed users")
