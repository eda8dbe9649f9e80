"""The auth mock as an OpenID Connect / OAuth 2 provider (beside the seed's HS256 API, which stays as it is): discovery,
JWKS with rotation, the client credentials grant, and token faults a real provider only shows on a bad day.

Keys and signing are joserfc's (the JOSE half of authlib, by the same author: keys, JWS and JWT without a web
framework's server classes, which authlib ties to Flask and Django). This module is the glue: issuers, the fault
policy, the clock, the routes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import unquote, urlencode, urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse

from ..spec import Invalid, NotFound

ALGORITHMS = ("RS256", "PS256", "ES256", "EdDSA")
FAULT_FIELDS = {"expired": bool, "not_yet_valid": bool, "clock_skew_s": int, "audience": str, "issuer": str,
                "unknown_kid": bool, "foreign_key": bool, "alg": str}
MAX_ISSUERS = 100
MAX_KEYS = 10
MAX_CODES = 10_000
CODE_SECONDS = 60


def _new_key(algorithm: str) -> Any:
    from joserfc.jwk import ECKey, OKPKey, RSAKey

    params = {"kid": secrets.token_hex(8), "use": "sig", "alg": algorithm}
    if algorithm in ("RS256", "PS256"):
        return RSAKey.generate_key(2048, parameters=params)
    if algorithm == "ES256":
        return ECKey.generate_key("P-256", parameters=params)
    return OKPKey.generate_key("Ed25519", parameters=params)


@dataclass
class Issuer:
    name: str  # "" for the default issuer
    algorithm: str
    keys: list[Any] = field(default_factory=list)  # newest first: keys[0] signs, the others stay published until removed
    faults: dict[str, Any] = field(default_factory=dict)
    fixed_now: float | None = None  # a fixed clock (set, advance); None: the server's clock

    def signing_key(self) -> Any:
        if not self.keys:
            self.keys.append(_new_key(self.algorithm))
        return self.keys[0]


class OidcProvider:
    """Issuers by name, each with its keys, fault policy and clock; tokens issued by the client credentials grant."""

    def __init__(self, clock: Callable[[], float], algorithm: str = "RS256", lifetime_s: int = 3600,
                 users: Callable[[], list[Any]] = list) -> None:
        self.clock = clock
        self.algorithm = algorithm
        self.lifetime_s = lifetime_s
        self.issuers: dict[str, Issuer] = {}
        self.users = users  # the auth mock's users (id, email, name): who can log in
        self.codes: dict[str, dict[str, Any]] = {}  # authorization code -> what it grants (one use, CODE_SECONDS)

    def issuer(self, name: str = "") -> Issuer:
        found = self.issuers.get(name)
        if found is None:
            if len(self.issuers) >= MAX_ISSUERS:
                raise Invalid(f"at most {MAX_ISSUERS} issuers")
            found = self.issuers[name] = Issuer(name, self.algorithm)
        return found

    def now(self, issuer: Issuer) -> float:
        return issuer.fixed_now if issuer.fixed_now is not None else self.clock()

    def jwks(self, issuer: Issuer) -> dict[str, Any]:
        from joserfc.jwk import KeySet

        issuer.signing_key()
        return KeySet(issuer.keys).as_dict(private=False)

    def rotate(self, issuer: Issuer) -> str:
        """A new signing key, published beside the old ones (which keep verifying until removed)."""
        issuer.keys.insert(0, _new_key(issuer.algorithm))
        del issuer.keys[MAX_KEYS:]
        return issuer.keys[0].kid

    def remove_retired(self, issuer: Issuer) -> int:
        removed = len(issuer.keys) - 1
        del issuer.keys[1:]
        return max(0, removed)

    def set_faults(self, issuer: Issuer, changes: dict[str, Any], replace: bool = False) -> dict[str, Any]:
        unknown = set(changes) - set(FAULT_FIELDS)
        if unknown:
            raise Invalid(f"unknown token fault(s) {', '.join(sorted(unknown))}: choose from {', '.join(FAULT_FIELDS)}")
        for name, value in changes.items():
            kind = FAULT_FIELDS[name]
            if value is not None and not (isinstance(value, kind) and not (kind is int and isinstance(value, bool))):
                raise Invalid(f"token fault {name} is {kind.__name__}, not {value!r}"[:200])
        faults = {} if replace else dict(issuer.faults)
        faults.update({k: v for k, v in changes.items() if v not in (None, False, 0, "")})
        for k, v in changes.items():
            if v in (None, False, 0, ""):
                faults.pop(k, None)
        issuer.faults = faults
        return faults

    def token(self, issuer: Issuer, issuer_url: str, client_id: str, scope: str, audience: str | None,
              user: dict[str, Any] | None = None) -> dict[str, Any]:
        """An access token (JWT, typ at+jwt) with the issuer's faults: for the client itself (client credentials), or
        for a user who logged in (authorization code), then with an ID token too."""
        faults = issuer.faults
        now = int(self.now(issuer)) + int(faults.get("clock_skew_s", 0))
        subject = user["sub"] if user else client_id
        claims = {"iss": faults.get("issuer", issuer_url), "sub": subject, "aud": faults.get("audience", audience or client_id),
                  "iat": now, "exp": now + self.lifetime_s, "client_id": client_id, "azp": client_id, "scope": scope,
                  "jti": secrets.token_hex(12)}
        answer = {"access_token": self._sign(issuer, claims, "at+jwt"), "token_type": "Bearer", "expires_in": self.lifetime_s, "scope": scope}
        if user is not None and "openid" in scope.split():
            id_claims = {**user["claims"], "iss": claims["iss"], "sub": subject, "aud": faults.get("audience", client_id), "iat": now,
                         "exp": now + self.lifetime_s, "auth_time": user["auth_time"], "azp": client_id}
            id_claims.update({k: user[k] for k in ("email", "name") if user.get(k)})
            if user.get("nonce"):
                id_claims["nonce"] = user["nonce"]
            answer["id_token"] = self._sign(issuer, id_claims, "JWT")
        return answer

    def _sign(self, issuer: Issuer, claims: dict[str, Any], typ: str) -> str:
        from joserfc import jwt

        faults = issuer.faults
        now = claims["iat"]
        if faults.get("expired"):
            claims["iat"], claims["exp"] = now - 2 * self.lifetime_s, now - self.lifetime_s
        if faults.get("not_yet_valid"):
            claims["nbf"] = now + self.lifetime_s
        published = issuer.signing_key()
        # foreign_key: the published key's kid, but another key's signature (the JWKS has the kid; the signature fails)
        key = _new_key(issuer.algorithm) if faults.get("foreign_key") else published
        header = {"alg": issuer.algorithm, "typ": typ, "kid": "unknown-" + secrets.token_hex(4) if faults.get("unknown_kid") else published.kid}
        token = jwt.encode(header, claims, key, algorithms=[issuer.algorithm])
        if faults.get("alg"):  # the header claims another algorithm than the one that signed
            head, rest = token.split(".", 1)
            changed = {**json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4))), "alg": faults["alg"]}
            token = base64.urlsafe_b64encode(json.dumps(changed, separators=(",", ":")).encode()).decode().rstrip("=") + "." + rest
        return token

    def claims_of(self, issuer: Issuer, token: str) -> dict[str, Any] | None:
        """The claims of an access token this issuer signed and that is still valid (for userinfo), or None."""
        from joserfc import jwt
        from joserfc.errors import JoseError
        from joserfc.jwk import KeySet

        try:
            claims = jwt.decode(token, KeySet(issuer.keys), algorithms=[issuer.algorithm]).claims
        except (JoseError, ValueError):
            return None
        now = self.now(issuer)
        return claims if claims.get("exp", 0) > now >= claims.get("nbf", 0) else None

    def new_code(self, grant: dict[str, Any]) -> str:
        now = self.clock()
        for code in [c for c, g in self.codes.items() if g["expires"] < now]:
            del self.codes[code]
        if len(self.codes) >= MAX_CODES:
            raise Invalid("too many authorization codes waiting to be exchanged")
        code = secrets.token_urlsafe(24)
        self.codes[code] = {**grant, "expires": now + CODE_SECONDS}
        return code


def issuer_url(request: Request, name: str) -> str:
    base = f"{request.url.scheme}://{request.headers.get('host', request.url.netloc)}"
    return base + (f"/issuers/{name}" if name else "")


def routes(provider: OidcProvider, issuer_override: str | None) -> APIRouter:
    router = APIRouter()

    def url_of(request: Request, name: str) -> str:
        return (issuer_override.rstrip("/") + (f"/issuers/{name}" if name else "")) if issuer_override else issuer_url(request, name)

    def discovery(request: Request, name: str) -> dict[str, Any]:
        issuer = provider.issuer(name)
        base = url_of(request, name)
        return {"issuer": base, "jwks_uri": f"{base}/jwks", "token_endpoint": f"{base}/oauth2/token",
                "authorization_endpoint": f"{base}/authorize", "userinfo_endpoint": f"{base}/userinfo",
                "grant_types_supported": ["authorization_code", "client_credentials"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
                "id_token_signing_alg_values_supported": [issuer.algorithm], "response_types_supported": ["code"],
                "code_challenge_methods_supported": ["S256", "plain"], "subject_types_supported": ["public"],
                "scopes_supported": ["openid", "profile", "email"], "claims_supported": ["sub", "email", "name", "auth_time", "nonce"]}

    async def authorize(request: Request, name: str) -> Any:
        issuer = provider.issuer(name)
        params = dict(request.query_params)
        redirect_uri = params.get("redirect_uri", "")
        if urlsplit(redirect_uri).scheme not in ("http", "https") or len(redirect_uri) > 2048:
            return JSONResponse({"error": "invalid_request", "error_description": "redirect_uri must be an http(s) URL"}, status_code=400)
        if params.get("response_type") != "code":
            return _redirect_error(redirect_uri, params, "unsupported_response_type", "only response_type=code is supported")
        if not params.get("client_id"):
            return _redirect_error(redirect_uri, params, "invalid_request", "client_id is required")
        method = params.get("code_challenge_method", "plain" if params.get("code_challenge") else "")
        if method not in ("", "S256", "plain"):
            return _redirect_error(redirect_uri, params, "invalid_request", "code_challenge_method is S256 or plain")
        if params.get("prompt") == "none":
            user = _user_by_hint(provider, params.get("login_hint", ""))
            if user is None:
                return _redirect_error(redirect_uri, params, "login_required", "prompt=none needs a login_hint naming a user")
            return _issue_code(provider, issuer, params, user, {})
        return HTMLResponse(_login_page(provider, params, name))

    async def login(request: Request, name: str) -> Any:
        issuer = provider.issuer(name)
        form = {k: str(v) for k, v in (await request.form()).items()}
        redirect_uri = form.get("redirect_uri", "")
        if urlsplit(redirect_uri).scheme not in ("http", "https"):
            return JSONResponse({"error": "invalid_request", "error_description": "redirect_uri must be an http(s) URL"}, status_code=400)
        user = _user_by_hint(provider, form.get("user") or form.get("user_hint", ""))
        if user is None:
            return HTMLResponse(_login_page(provider, form, name, error="no such user"), status_code=400)
        try:
            extra = json.loads(form.get("claims") or "{}")
        except ValueError as exc:
            return HTMLResponse(_login_page(provider, form, name, error=f"the extra claims are not JSON: {exc}"), status_code=400)
        if not isinstance(extra, dict) or len(json.dumps(extra)) > 8192:
            return HTMLResponse(_login_page(provider, form, name, error="the extra claims are a JSON object (8 KiB at most)"), status_code=400)
        return _issue_code(provider, issuer, form, user, extra)

    async def userinfo(request: Request, name: str) -> JSONResponse:
        issuer = provider.issuer(name)
        token = request.headers.get("authorization", "")
        claims = provider.claims_of(issuer, token[7:]) if token.lower().startswith("bearer ") else None
        if claims is None:
            return JSONResponse({"error": "invalid_token"}, status_code=401, headers={"www-authenticate": 'Bearer error="invalid_token"'})
        user = _user_by_hint(provider, claims["sub"])
        info = {"sub": claims["sub"], **({"email": user.email, "name": user.name} if user is not None else {})}
        return JSONResponse(info)

    async def token(request: Request, name: str) -> JSONResponse:
        form = await request.form()
        grant = form.get("grant_type")
        if grant == "authorization_code":
            return _exchange_code(provider, provider.issuer(name), url_of(request, name), {k: str(v) for k, v in form.items()},
                                  request.headers.get("authorization", ""))
        if grant != "client_credentials":
            return JSONResponse({"error": "unsupported_grant_type", "error_description": f"grant_type {str(grant)[:64]!r} is not supported here yet"},
                                status_code=400)
        client_id = form.get("client_id")
        basic = request.headers.get("authorization", "")
        if basic.lower().startswith("basic "):
            try:
                client_id = unquote(base64.b64decode(basic[6:]).decode().split(":", 1)[0])
            except (ValueError, UnicodeDecodeError):
                return JSONResponse({"error": "invalid_client", "error_description": "malformed Basic credentials"}, status_code=401)
        if not client_id:
            return JSONResponse({"error": "invalid_client", "error_description": "client_id is required (form or Basic auth)"}, status_code=401)
        scope = str(form.get("scope") or "")
        audience = form.get("audience") or form.get("resource")
        body = provider.token(provider.issuer(name), url_of(request, name), str(client_id)[:256], scope[:1024], str(audience)[:256] if audience else None)
        return JSONResponse(body, headers={"cache-control": "no-store"})

    @router.get("/.well-known/openid-configuration", summary="OpenID Connect discovery (the default issuer)")
    async def default_discovery(request: Request) -> dict[str, Any]:
        return discovery(request, "")

    @router.get("/jwks", summary="The default issuer's signing keys (JWKS)")
    async def default_jwks() -> dict[str, Any]:
        return provider.jwks(provider.issuer(""))

    @router.post("/oauth2/token", summary="Token endpoint: client_credentials (the default issuer)")
    async def default_token(request: Request) -> JSONResponse:
        return await token(request, "")

    @router.get("/authorize", summary="Authorization endpoint: a login page listing the users (code flow, PKCE)")
    async def default_authorize(request: Request) -> Any:
        return await authorize(request, "")

    @router.post("/authorize/login", summary="The login page's answer: a code for the redirect URI", include_in_schema=False)
    async def default_login(request: Request) -> Any:
        return await login(request, "")

    @router.get("/userinfo", summary="The user an access token was issued to")
    async def default_userinfo(request: Request) -> JSONResponse:
        return await userinfo(request, "")

    @router.get("/issuers/{name}/authorize", summary="Authorization endpoint of a named issuer")
    async def named_authorize(request: Request, name: str) -> Any:
        return await authorize(request, _name(name))

    @router.post("/issuers/{name}/authorize/login", include_in_schema=False)
    async def named_login(request: Request, name: str) -> Any:
        return await login(request, _name(name))

    @router.get("/issuers/{name}/userinfo", summary="Userinfo of a named issuer")
    async def named_userinfo(request: Request, name: str) -> JSONResponse:
        return await userinfo(request, _name(name))

    @router.get("/issuers/{name}/.well-known/openid-configuration", summary="OpenID Connect discovery of a named issuer")
    async def named_discovery(request: Request, name: str) -> dict[str, Any]:
        return discovery(request, _name(name))

    @router.get("/issuers/{name}/jwks", summary="A named issuer's signing keys (JWKS)")
    async def named_jwks(name: str) -> dict[str, Any]:
        return provider.jwks(provider.issuer(_name(name)))

    @router.post("/issuers/{name}/oauth2/token", summary="Token endpoint of a named issuer")
    async def named_token(request: Request, name: str) -> JSONResponse:
        return await token(request, _name(name))

    return router


PASSED_ON = ("response_type", "client_id", "redirect_uri", "scope", "state", "nonce", "code_challenge", "code_challenge_method")


def _redirect_error(redirect_uri: str, params: dict[str, str], error: str, description: str) -> RedirectResponse:
    query = {"error": error, "error_description": description, **({"state": params["state"]} if params.get("state") else {})}
    return RedirectResponse(_with_query(redirect_uri, query), status_code=302)


def _with_query(url: str, query: dict[str, str]) -> str:
    return f"{url}{'&' if '?' in url else '?'}{urlencode(query)}"


def _user_by_hint(provider: OidcProvider, hint: str) -> Any:
    return next((u for u in provider.users() if hint and hint in (u.id, u.email)), None)


def _issue_code(provider: OidcProvider, issuer: Issuer, params: dict[str, str], user: Any, extra: dict[str, Any]) -> RedirectResponse:
    grant = {"issuer": issuer.name, "client_id": params.get("client_id", ""), "redirect_uri": params.get("redirect_uri", ""),
             "scope": params.get("scope", "openid"), "nonce": params.get("nonce"), "challenge": params.get("code_challenge"),
             "method": params.get("code_challenge_method") or ("plain" if params.get("code_challenge") else None),
             "user": {"sub": user.id, "email": user.email, "name": user.name, "auth_time": int(provider.now(issuer)), "claims": extra,
                      "nonce": params.get("nonce")}}
    code = provider.new_code(grant)
    query = {"code": code, **({"state": params["state"]} if params.get("state") else {})}
    return RedirectResponse(_with_query(grant["redirect_uri"], query), status_code=302)


def _exchange_code(provider: OidcProvider, issuer: Issuer, issuer_url: str, form: dict[str, str], authorization: str) -> JSONResponse:
    def refuse(error: str, description: str, status: int = 400) -> JSONResponse:
        return JSONResponse({"error": error, "error_description": description}, status_code=status, headers={"cache-control": "no-store"})

    grant = provider.codes.pop(form.get("code", ""), None)  # one use, whatever happens next
    if grant is None or grant["expires"] < provider.clock() or grant["issuer"] != issuer.name:
        return refuse("invalid_grant", "the code is unknown, used or expired")
    client_id = form.get("client_id", "")
    if authorization.lower().startswith("basic "):
        try:
            client_id = unquote(base64.b64decode(authorization[6:]).decode().split(":", 1)[0])
        except (ValueError, UnicodeDecodeError):
            return refuse("invalid_client", "malformed Basic credentials", 401)
    if client_id != grant["client_id"]:
        return refuse("invalid_grant", "the code was issued to another client")
    if form.get("redirect_uri", "") != grant["redirect_uri"]:
        return refuse("invalid_grant", "redirect_uri differs from the authorization request's")
    if grant["challenge"]:
        verifier = form.get("code_verifier", "")
        if grant["method"] == "S256":
            computed = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
        else:
            computed = verifier
        if not verifier or not hmac.compare_digest(computed, grant["challenge"]):
            return refuse("invalid_grant", "code_verifier does not match the code_challenge (PKCE)")
    body = provider.token(issuer, issuer_url, client_id, grant["scope"], None, grant["user"])
    return JSONResponse(body, headers={"cache-control": "no-store"})


def _login_page(provider: OidcProvider, params: dict[str, str], issuer_name: str, error: str = "") -> str:
    from html import escape

    action = f"/issuers/{issuer_name}/authorize/login" if issuer_name else "/authorize/login"
    hidden = "".join(f'<input type="hidden" name="{k}" value="{escape(params[k])}">' for k in PASSED_ON if params.get(k))
    buttons = "".join(f'<button name="user" value="{escape(u.id)}" class="user">{escape(u.name)} &lt;{escape(u.email)}&gt;</button>'
                      for u in provider.users())
    problem = f'<p class="error" role="alert">{escape(error)}</p>' if error else ""
    return (f'<!doctype html><html><head><meta charset="utf-8"><title>Sign in — mockpanel</title>'
            '<link rel="icon" href="data:,"><style>body{font:15px system-ui;margin:3em auto;max-width:34em}'
            'button.user{display:block;margin:.4em 0;padding:.5em;width:100%;text-align:left}textarea{width:100%}.error{color:#b00}</style>'
            f'</head><body><h1>Sign in to {escape(params.get("client_id", "the client"))}</h1>{problem}'
            f'<form method="post" action="{action}">{hidden}'
            '<label>Extra claims for this login (JSON, optional)<textarea name="claims" rows="3">{}</textarea></label>'
            f'{buttons}<p><label>or a user id or e-mail <input name="user_hint" id="other"></label> <button>Sign in</button></p>'
            '</form></body></html>')


def _name(name: str) -> str:
    if not name or len(name) > 64 or not all(c.isalnum() or c in "-_." for c in name):
        raise NotFound("an issuer name is 1-64 letters, digits, '-', '_' or '.'")
    return name


def control_routes(provider: OidcProvider) -> APIRouter:
    """/__mockpanel/oidc/...: rotation, token faults and the clock, per issuer (?issuer=NAME; default the default one)."""
    router = APIRouter()

    def pick(issuer: str | None) -> Issuer:
        return provider.issuer(_name(issuer) if issuer else "")

    @router.post("/__mockpanel/oidc/rotate", summary="Publish a new signing key (the old ones keep verifying until removed)")
    async def rotate(issuer: str | None = None) -> dict[str, Any]:
        found = pick(issuer)
        kid = provider.rotate(found)
        return {"issuer": found.name, "kid": kid, "published": [k.kid for k in found.keys]}

    @router.delete("/__mockpanel/oidc/keys/retired", summary="Remove every key but the signing one from the JWKS")
    async def remove_retired(issuer: str | None = None) -> dict[str, Any]:
        found = pick(issuer)
        return {"issuer": found.name, "removed": provider.remove_retired(found), "published": [k.kid for k in found.keys]}

    @router.get("/__mockpanel/oidc/faults", summary="The token faults of an issuer")
    async def get_faults(issuer: str | None = None) -> dict[str, Any]:
        return pick(issuer).faults

    @router.patch("/__mockpanel/oidc/faults", summary="Change token faults: expired, not_yet_valid, clock_skew_s, audience, issuer, unknown_kid, foreign_key, alg")
    async def patch_faults(request: Request, issuer: str | None = None) -> dict[str, Any]:
        from ..web import json_body

        changes = await json_body(request)
        if not isinstance(changes, dict):
            raise Invalid("send a JSON object, e.g. {\"expired\": true}")
        return provider.set_faults(pick(issuer), changes)

    @router.delete("/__mockpanel/oidc/faults", summary="Every token fault off")
    async def clear_faults(issuer: str | None = None) -> dict[str, Any]:
        return provider.set_faults(pick(issuer), {}, replace=True)

    @router.put("/__mockpanel/oidc/clock", summary="Fix the issuer's clock: {\"now\": epoch seconds} or {\"advance_s\": N}")
    async def set_clock(request: Request, issuer: str | None = None) -> dict[str, Any]:
        from ..web import json_body

        found = pick(issuer)
        body = await json_body(request)
        if isinstance(body, dict) and isinstance(body.get("now"), (int, float)) and not isinstance(body.get("now"), bool):
            found.fixed_now = float(body["now"])
        elif isinstance(body, dict) and isinstance(body.get("advance_s"), (int, float)) and not isinstance(body.get("advance_s"), bool):
            found.fixed_now = provider.now(found) + float(body["advance_s"])
        else:
            raise Invalid("send {\"now\": epoch seconds} or {\"advance_s\": seconds}")
        return {"issuer": found.name, "now": found.fixed_now}

    @router.delete("/__mockpanel/oidc/clock", summary="Back to the server's clock")
    async def real_clock(issuer: str | None = None) -> dict[str, Any]:
        found = pick(issuer)
        found.fixed_now = None
        return {"issuer": found.name, "now": None}

    return router


def reset(provider: OidcProvider) -> None:
    """Back to the start: no faults, real clocks; keys stay (tokens issued before a reset keep verifying)."""
    for issuer in provider.issuers.values():
        issuer.faults = {}
        issuer.fixed_now = None

