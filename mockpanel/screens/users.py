"""Users pane: the auth mock's users; copy a user's tokens (the seed API's HS256 ones, or the OIDC issuer's), issue one
with a chosen expiry, edit a user's OIDC claims, revoke a user's sessions, rotate keys, set token faults, add, reset."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from textual.binding import Binding
from textual.widgets import DataTable, Static

from ..display import plain
from ..spec import DomainError
from ..hubclient import panel_op
from .base import Pane, cursor_key, restore_cursor
from .dialogs import ConfirmDialog, PromptDialog


# --- what the pane reads and asks, run on the servers' loop ---


@panel_op
def user_rows(hub: Any) -> list[tuple[str, str, str, str, dict | None]]:
    """(id, email, name, created, OIDC claims) of every user."""
    accounts = hub.facade("auth")
    claims = accounts.oidc.user_claims if accounts.oidc is not None else {}
    return [(u.id, u.email, u.name, u.created_at, dict(claims[u.id]) if u.id in claims else None) for u in accounts.users()]


@panel_op
def user_email(hub: Any, user_id: str) -> str | None:
    try:
        return hub.facade("auth").user(user_id).email
    except DomainError:
        return None


def _issuer_url(hub: Any, provider: Any, issuer: str) -> str:
    """The issuer URL tokens made here carry: the auth server's own URL as a local service names it (localhost),
    unless the oidc_issuer setting says otherwise."""
    return provider.url(hub.urls()["auth"].replace("//127.0.0.1:", "//localhost:"), issuer)


@panel_op
def oidc_tokens(hub: Any, user_id: str, client_id: str, issuer: str) -> tuple[dict[str, Any], str, str]:
    """Tokens of the OIDC issuer for a user and a client, with the issuer's label and URL (DomainError on a bad name)."""
    provider = hub.facade("auth").oidc
    found = provider.named(issuer)
    url = _issuer_url(hub, provider, found.name)
    return provider.token_for(found, url, user_id, client_id), found.label, url


@panel_op
async def register_user(hub: Any, email: str, password: str, name: str) -> str:
    """A new user (the same checks as POST /api/auth/register); their email."""
    return (await hub.facade("auth").register(email, password, name)).email


@panel_op
def reset_users(hub: Any) -> int:
    return hub.facade("auth").reset_users()


@panel_op
def user_count(hub: Any) -> int:
    return len(hub.facade("auth").users())


OIDC_CALLS = frozenset({"rotate", "faults", "set_faults", "user_claims", "revoke_user", "set_user_claims", "check_faults"})


@panel_op
def oidc_call(hub: Any, method: str, *args: Any) -> Any:
    """One of the OIDC provider's operations, on the default issuer where it takes one; what it returns, copied."""
    provider = hub.facade("auth").oidc
    if method == "rotate":
        issuer = provider.issuer("")
        return provider.rotate(issuer), len(issuer.keys)
    if method == "faults":
        return dict(provider.issuer("").faults)
    if method == "set_faults":
        return dict(provider.set_faults(provider.issuer(""), *args, replace=True))
    if method == "user_claims":
        return dict(provider.user_claims.get(args[0], {}))
    if method == "revoke_user":
        return provider.revoke_user(None, *args)
    if method not in OIDC_CALLS:
        raise ValueError(f"not an OIDC operation of the panel: {method[:40]!r}")
    return getattr(provider, method)(*args)  # set_user_claims, check_faults


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
        Binding("O", "oidc_token('access_token')", "OIDC access token…", tooltip="An access token of the OIDC issuer for a client you name"),
        Binding("I", "oidc_token('id_token')", "OIDC ID token…", tooltip="An ID token of the OIDC issuer for a client you name"),
        Binding("C", "edit_claims", "Claims…", tooltip="Extra claims in every OIDC token of the selected user (JSON)"),
        Binding("v", "revoke", "Revoke sessions…", tooltip="End every OIDC session of the selected user now (asks first)"),
        Binding("K", "rotate_keys", "Rotate keys", tooltip="A new OIDC signing key; the old one stays in the JWKS until removed"),
        Binding("T", "token_faults", "Token faults…", tooltip="The OIDC issuer's token faults as JSON, e.g. {\"expired\": true}; {} clears"),
        Binding("x", "reset_users", "Reset users…", tooltip="Back to the seed users; added ones are deleted (asks first)"),
    ]

    def compose(self):
        if not self.serves("auth"):
            yield Static("The auth server is not running (see --only).", classes="empty")
            return
        table = DataTable(id="users-table", cursor_type="row", zebra_stripes=True)
        table.add_columns("email", "name", "id", "created", "OIDC claims")
        yield table

    def refresh_view(self) -> None:
        if not self.serves("auth"):
            return
        table = self.query_one(DataTable)
        key, row = cursor_key(table), table.cursor_row
        table.clear()
        for user_id, email, name, created, claims in self.read(user_rows):
            shown = json.dumps(claims, ensure_ascii=False) if claims else ""
            table.add_row(plain(email), plain(name), user_id, created, plain(shown if len(shown) <= 40 else shown[:39] + "…"), key=user_id)
        restore_cursor(table, key, row)

    def selected_id(self) -> str | None:
        if not self.serves("auth"):
            return None
        return cursor_key(self.query_one(DataTable))

    def acts_on(self) -> str:
        user_id = self.selected_id()
        return (self.read(user_email, user_id) or "") if user_id is not None else ""

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
                email = await self.client.wait(register_user, parts[0], parts[1], " ".join(parts[2:]))
            except DomainError as exc:
                self.app.notify(exc.message, severity="error")
                return
            self.app.notify(f"added {email}")

        self.app.push_screen(PromptDialog("New user: email password name", placeholder="frank@example.com password123 Frank Castle"), add)

    def action_reset_users(self) -> None:
        def reset(yes: bool | None) -> None:
            if yes:
                count = self.client.command(reset_users)
                self.app.notify(f"users reset to the {count} seed users")

        count = self.read(user_count)
        self.app.push_screen(ConfirmDialog(f"Reset users: delete the {count} users and bring back the seed ones?"), reset)

    # --- OpenID Connect: the same provider the HTTP endpoints and the control API use ---

    def action_oidc_token(self, kind: str) -> None:
        user_id = self.selected_id()
        if user_id is None:
            return

        def issue(answer: str | None) -> None:
            if not answer:
                return
            client_id, _, issuer = answer.strip().partition(" ")
            try:
                tokens, label_of_issuer, url = self.client.command(oidc_tokens, user_id, client_id, issuer.strip())
            except DomainError as exc:
                self.app.notify(exc.message, severity="error")
                return
            label = "ID token" if kind == "id_token" else "Access token"
            email = self.read(user_email, user_id)
            self.app.copy_and_show_jwt(tokens[kind], f"OIDC {label} for {email} ({client_id}, issuer {label_of_issuer})",
                                       f"OIDC {label.lower()} for {email} copied to the clipboard", note=f"issuer {url}")

        what = "ID token" if kind == "id_token" else "access token"
        self.app.push_screen(PromptDialog(f"OIDC {what}: client_id, then an issuer name for a named issuer", "web-app",
                                          placeholder="web-app  or  web-app tenant-a"), issue)

    def action_edit_claims(self) -> None:
        user_id = self.selected_id()
        if user_id is None:
            return

        def check(answer: str) -> str | None:
            try:
                json.loads(answer)
            except ValueError as exc:
                return f"not JSON: {exc}"
            return None

        def save(answer: str | None) -> None:
            if answer is None:
                return
            try:
                claims = self.client.command(oidc_call, "set_user_claims", user_id, json.loads(answer or "{}"))
            except (DomainError, ValueError) as exc:
                self.app.notify(getattr(exc, "message", str(exc)), severity="error")
                return
            self.app.notify(f"claims of {self.read(user_email, user_id)}: {json.dumps(claims) if claims else 'none'}")

        current = json.dumps(self.read(oidc_call, "user_claims", user_id), ensure_ascii=False)
        self.app.push_screen(PromptDialog("Extra claims in every OIDC token of this user (a JSON object; {} clears)", current,
                                          placeholder='{"role": "admin"}', check=check), save)

    def action_revoke(self) -> None:
        user_id = self.selected_id()
        if user_id is None:
            return
        email = self.read(user_email, user_id)

        def revoke(yes: bool | None) -> None:
            if yes:
                ended = self.client.command(oidc_call, "revoke_user", user_id)
                self.app.notify(f"{email}: {ended} OIDC session{'s' if ended != 1 else ''} ended")

        self.app.push_screen(ConfirmDialog(f"End every OIDC session of {email} now (refresh tokens fail, access tokens are inactive)?"), revoke)

    def action_rotate_keys(self) -> None:
        kid, published = self.client.command(oidc_call, "rotate")
        self.app.notify(f"new signing key {kid}; {published} keys published")

    def action_token_faults(self) -> None:
        def check(answer: str) -> str | None:
            try:
                self.read(oidc_call, "check_faults", json.loads(answer))
            except ValueError as exc:
                return f"not JSON: {exc}"
            except DomainError as exc:
                return exc.message
            return None

        def save(answer: str | None) -> None:
            if answer is None:
                return
            faults = self.client.command(oidc_call, "set_faults", json.loads(answer or "{}"))
            self.app.notify(f"token faults: {json.dumps(faults) if faults else 'off'}")

        self.app.push_screen(PromptDialog("Token faults of the OIDC issuer (JSON; {} clears): expired, not_yet_valid, clock_skew_s, audience, "
                                          "issuer, unknown_kid, foreign_key, alg, rotate_on_fetch", json.dumps(self.read(oidc_call, "faults")),
                                          placeholder='{"expired": true}', check=check), save)
