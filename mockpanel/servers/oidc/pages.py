"""The provider's two HTML pages: the login page (the users as buttons, claims for this login) and "signed out"."""

from __future__ import annotations

from html import escape
from typing import Any

PASSED_ON = ("response_type", "client_id", "redirect_uri", "scope", "state", "nonce", "code_challenge", "code_challenge_method")
STYLE = ('<link rel="icon" href="data:,"><style>body{font:15px system-ui;margin:3em auto;max-width:34em}'
         'button.user{display:block;margin:.4em 0;padding:.5em;width:100%;text-align:left}textarea{width:100%}.error{color:#b00}</style>')


def login_page(provider: Any, params: dict[str, str], issuer_name: str, error: str = "") -> str:
    action = f"/issuers/{issuer_name}/authorize/login" if issuer_name else "/authorize/login"
    hidden = "".join(f'<input type="hidden" name="{k}" value="{escape(params[k])}">' for k in PASSED_ON if params.get(k))
    buttons = "".join(f'<button name="user" value="{escape(u.id)}" class="user">{escape(u.name)} &lt;{escape(u.email)}&gt;</button>'
                      for u in provider.users())
    problem = f'<p class="error" role="alert">{escape(error)}</p>' if error else ""
    return (f'<!doctype html><html><head><meta charset="utf-8"><title>Sign in — mockpanel</title>{STYLE}'
            f'</head><body><h1>Sign in to {escape(params.get("client_id", "the client"))}</h1>{problem}'
            f'<form method="post" action="{action}">{hidden}'
            '<label>Extra claims for this login (JSON, optional)<textarea name="claims" rows="3">{}</textarea></label>'
            f'{buttons}<p><label>or a user id or e-mail <input name="user_hint" id="other"></label> <button>Sign in</button></p>'
            '</form></body></html>')


def signed_out_page(name: str | None) -> str:
    who = f"{escape(name)} is" if name else "You are"
    return (f'<!doctype html><html><head><meta charset="utf-8"><title>Signed out — mockpanel</title>{STYLE}</head>'
            f'<body><h1>Signed out</h1><p>{who} signed out.</p></body></html>')
