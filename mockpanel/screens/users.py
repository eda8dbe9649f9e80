"""Users pane: the auth mock's users; copy a user's tokens, issue one with a chosen expiry, add a user, reset."""

from __future__ import annotations

from datetime import timedelta

from fastapi import HTTPException
from textual.binding import Binding
from textual.widgets import DataTable, Static

from ..display import plain
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
    def auth(self):
        return self.state_of("auth")

    def refresh_view(self) -> None:
        if self.auth is None:
            return
        table = self.query_one(DataTable)
        cursor = table.cursor_row
        table.clear()
        for user in self.auth.users.users():
            table.add_row(plain(user.email), plain(user.name), user.id, user.created_at, key=user.id)
        if table.row_count:
            table.move_cursor(row=min(cursor, table.row_count - 1))

    def selected_user(self):
        if self.auth is None:
            return None
        table = self.query_one(DataTable)
        if not table.row_count:
            return None
        return self.auth.users.by_id.get(str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value))

    def copy_token(self, kind: str, ttl: timedelta | None = None) -> None:
        user = self.selected_user()
        if user is None:
            return
        self.app.copy_and_show(self.auth.tokens.issue(user, kind, ttl), f"{kind.capitalize()} token for {user.email}",
                               f"{kind} token for {user.email} copied to the clipboard")

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

        if self.selected_user() is not None:
            self.app.push_screen(PromptDialog("Expiry of the access token, in minutes", "60"), issue)

    def action_add_user(self) -> None:
        def add(answer: str | None) -> None:
            if not answer:
                return
            parts = answer.split()
            if len(parts) < 3:
                self.app.notify("type: email password name…", severity="error")
                return
            from pydantic import ValidationError

            from ..servers.auth import RegisterRequest

            try:
                body = RegisterRequest(email=parts[0], password=parts[1], name=" ".join(parts[2:]))
            except ValidationError as exc:  # the same checks as POST /api/auth/register
                first = exc.errors()[0]
                self.app.notify(f"{first['loc'][0]}: {first['msg']}", severity="error")
                return
            try:
                self.auth.users.register(str(body.email), body.password, body.name)
            except HTTPException as exc:
                self.app.notify(str(exc.detail), severity="error")
                return
            self.refresh_view()
            self.app.notify(f"added {body.email}")

        self.app.push_screen(PromptDialog("New user: email password name", placeholder="frank@example.com password123 Frank Castle"), add)

    def action_reset_users(self) -> None:
        self.auth.users.reset()
        self.refresh_view()
        self.app.notify("users reset to the five seed users")
