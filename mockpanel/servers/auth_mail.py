"""Beyond the seed, off by default (`auth.mail = true`): the auth mock sends real mail — a verification mail on
register, whose link verifies, and a password reset (POST /api/auth/forgot-password mails a token, POST
/api/auth/reset-password takes it) — over SMTP to the mail server beside it (or to smtp_host:smtp_port). With it off,
these routes do not exist and the seed's answers are exactly as before."""

from __future__ import annotations

import asyncio
import html
import secrets
import smtplib
from email.message import EmailMessage
from typing import Any, Callable

from fastapi import FastAPI, Query, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, EmailStr, Field

from .. import tracing
from ..spec import Invalid

TOKEN_SECONDS = 3600
MAX_PENDING = 10_000  # verification and reset tokens waiting (the oldest go first)


class ForgotRequest(BaseModel):
    email: EmailStr


class ResetRequest(BaseModel):
    token: str = Field(..., min_length=16, max_length=128)
    password: str = Field(..., min_length=8, max_length=128)


class AuthMail:
    """The tokens mailed out and what they are for; sends through SMTP in a thread (smtplib), never holding the loop."""

    def __init__(self, ctx: Any, accounts: Any, smtp_peer: Callable[[], tuple[str, int] | None]) -> None:
        s = ctx.settings
        self.ctx = ctx
        self.accounts = accounts
        self.sender = s["mail_from"]
        self.fallback = (s["smtp_host"], s["smtp_port"])
        self.public_url = (s["public_url"] or "").rstrip("/")
        self.smtp_peer = smtp_peer
        self.tokens: dict[str, tuple[str, str, float]] = {}  # token -> (purpose, user id, expires)
        self.verified: set[str] = set()  # user ids whose address a link verified

    def _token(self, purpose: str, user_id: str) -> str:
        token = secrets.token_urlsafe(24)
        self.tokens[token] = (purpose, user_id, self.ctx.clock() + TOKEN_SECONDS)
        while len(self.tokens) > MAX_PENDING:
            self.tokens.pop(next(iter(self.tokens)))
        return token

    def take(self, token: str, purpose: str) -> str:
        """The user a token is for, once (it is then spent); Invalid when unknown, spent, expired or for another use."""
        found = self.tokens.get(token)
        if found is None or found[0] != purpose:
            raise Invalid(f"this {purpose} token is unknown or already used")
        del self.tokens[token]
        if found[2] < self.ctx.clock():
            raise Invalid(f"this {purpose} token has expired (tokens live {TOKEN_SECONDS // 60} minutes)")
        return found[1]

    async def send(self, to: str, subject: str, text: str) -> None:
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = to
        message["Subject"] = subject
        for name, value in tracing.headers().items():  # the mail joins the trace of the request that sent it
            message[name] = value
        message.set_content(text)
        host, port = self.smtp_peer() or self.fallback

        def deliver() -> None:
            with smtplib.SMTP(host, port, timeout=10) as smtp:
                smtp.send_message(message)

        try:
            await asyncio.to_thread(deliver)
        except (OSError, smtplib.SMTPException) as exc:  # the register or reset still answers: the failure is said
            self.ctx.event("log", level="warning", message=f"auth: mail to {to} not sent ({host}:{port}): {type(exc).__name__}: {exc}")
            return
        self.ctx.event("mail_sent", to=to, subject=subject)

    def link(self, base: str, path: str, token: str) -> str:
        return f"{self.public_url or base}{path}?token={token}"

    async def verification(self, user: Any, base: str) -> None:
        token = self._token("verification", user.id)
        await self.send(user.email, "Verify your email address",
                        f"Hello {user.name},\n\nverify your address by opening this link:\n{self.link(base, '/api/auth/verify-email', token)}\n\n"
                        f"It works once, for {TOKEN_SECONDS // 60} minutes.\n")

    async def reset(self, user: Any, base: str) -> None:
        token = self._token("reset", user.id)
        await self.send(user.email, "Reset your password",
                        f"Hello {user.name},\n\nyour password reset code is {token}\n\n"
                        f"POST it with your new password to {self.public_url or base}/api/auth/reset-password "
                        f'({{"token": "…", "password": "…"}}).\n\nIt works once, for {TOKEN_SECONDS // 60} minutes.\n')


def mail_routes(app: FastAPI, mail: AuthMail, accounts: Any, base_of: Callable[[Any], str]) -> None:
    """The routes mail adds (only when auth.mail is on)."""
    @app.get("/api/auth/verify-email", response_class=HTMLResponse, summary="The link of the verification mail (beyond the seed)")
    async def verify_email(token: str = Query(..., max_length=128)) -> HTMLResponse:
        user = accounts.user(mail.take(token, "verification"))
        mail.verified.add(user.id)
        accounts.ctx.event("email_verified", id=user.id, email=user.email)
        return HTMLResponse(f"<!doctype html><title>Email verified</title><h1>Email verified</h1><p>{html.escape(user.email)} is verified.</p>")

    @app.post("/api/auth/forgot-password", summary="Mail a password reset token (beyond the seed); the same answer whether the "
              "address is known or not")
    async def forgot_password(body: ForgotRequest, request: Request) -> dict[str, str]:
        user = accounts.find(str(body.email))
        if user is not None:
            await mail.reset(user, base_of(request))
        return {"status": "sent", "detail": "if the address is registered, a reset token is on its way"}

    @app.post("/api/auth/reset-password", summary="Set a new password with the mailed token (beyond the seed)")
    async def reset_password(body: ResetRequest) -> dict[str, str]:
        user_id = mail.take(body.token, "reset")
        await accounts.set_password(user_id, body.password)
        return {"status": "password_reset"}
