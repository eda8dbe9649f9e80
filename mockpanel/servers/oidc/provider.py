"""The OpenID Connect provider's domain: issuers with their keys, fault policy and clock; registered clients; extra
claims per user and per client; codes, refresh-token families, revocation. Routes, the control API, the Users pane,
scenarios and the pytest plugin all call this; it raises OAuthError (answered as RFC 6749's JSON error) or the
domain's Invalid/NotFound, and tells the bus what changed.

Keys and signing are joserfc's (the JOSE half of authlib, by the same author: keys, JWS and JWT without a web
framework's server classes, which authlib ties to Flask and Django).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlsplit

from ...private import private_dir, write_private
from ...spec import Invalid, NotFound

ALGORITHMS = ("RS256", "PS256", "ES256", "EdDSA")
FAULT_FIELDS = {"expired": bool, "not_yet_valid": bool, "clock_skew_s": int, "audience": str, "issuer": str,
                "unknown_kid": bool, "foreign_key": bool, "alg": str, "rotate_on_fetch": bool}
# What the provider itself decides (the clock, the faults, the session, the subject and the client): extra claims
# cannot set them, or a per-login claim could make a token of another subject, audience or actor.
PROTECTED_CLAIMS = ("iss", "exp", "iat", "nbf", "jti", "auth_time", "sid", "sub", "aud", "act", "azp", "client_id", "scope", "nonce")
MAX_ISSUERS = 100
MAX_KEYS = 10
MAX_CODES = 10_000
MAX_GRANTS = 20_000  # live refresh tokens, and sessions (families) remembered; the oldest go first
MAX_REVOKED = 100_000
MAX_CLIENTS = 1_000
MAX_CLAIMS_BYTES = 8192
CODE_SECONDS = 60
EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
ACCESS_TYP, ID_TYP = "at+jwt", "JWT"  # the JOSE header types of access tokens (RFC 9068) and ID tokens
TOKEN_TYPES = (ACCESS_TOKEN_TYPE, "urn:ietf:params:oauth:token-type:jwt", "urn:ietf:params:oauth:token-type:id_token")


class OAuthError(Exception):
    """An OAuth 2 error response: {"error": …, "error_description": …} with this status."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error, self.description, self.status = error, description, status


def new_key(algorithm: str) -> Any:
    from joserfc.jwk import ECKey, OKPKey, RSAKey

    params = {"kid": secrets.token_hex(8), "use": "sig", "alg": algorithm}
    if algorithm in ("RS256", "PS256"):
        return RSAKey.generate_key(2048, parameters=params)
    if algorithm == "ES256":
        return ECKey.generate_key("P-256", parameters=params)
    return OKPKey.generate_key("Ed25519", parameters=params)


def check_claims(claims: Any, what: str) -> dict[str, Any]:
    """Extra claims as a user sends them: a JSON object of at most 8 KiB that leaves the protected claims alone."""
    if not isinstance(claims, dict):
        raise Invalid(f"{what} are a JSON object, e.g. {{\"role\": \"admin\"}}")
    if len(json.dumps(claims)) > MAX_CLAIMS_BYTES:
        raise Invalid(f"{what} are at most {MAX_CLAIMS_BYTES // 1024} KiB of JSON")
    taken = sorted(set(claims) & set(PROTECTED_CLAIMS))
    if taken:
        raise Invalid(f"{what} cannot set {', '.join(taken)} (the provider sets them: the clock, the token faults, the session and client)")
    return dict(claims)


def check_faults(changes: Any) -> dict[str, Any]:
    if not isinstance(changes, dict):
        raise Invalid("token faults are a JSON object, e.g. {\"expired\": true}")
    unknown = set(changes) - set(FAULT_FIELDS)
    if unknown:
        raise Invalid(f"unknown token fault(s) {', '.join(sorted(map(str, unknown)))[:200]}: choose from {', '.join(FAULT_FIELDS)}")
    for name, value in changes.items():
        kind = FAULT_FIELDS[name]
        if value is not None and not (isinstance(value, kind) and not (kind is int and isinstance(value, bool))):
            raise Invalid(f"token fault {name} is {kind.__name__}, not {value!r}"[:200])
    return changes


def issuer_name(name: str) -> str:
    """A named issuer's name as a URL path segment allows it; NotFound otherwise (it arrives in a path)."""
    if not name or len(name) > 64 or not all(c.isalnum() or c in "-_." for c in name):
        raise NotFound("an issuer name is 1-64 letters, digits, '-', '_' or '.'")
    return name


def _http_url(url: Any) -> bool:
    return isinstance(url, str) and len(url) <= 2048 and urlsplit(url).scheme in ("http", "https") and bool(urlsplit(url).netloc)


@dataclass
class Client:
    """A registered client: its secret (None: a public client) and the URIs it may be sent back to."""

    client_id: str
    secret: str | None = None
    redirect_uris: list[str] = field(default_factory=list)
    post_logout_redirect_uris: list[str] = field(default_factory=list)

    def public(self) -> dict[str, Any]:
        return {"client_id": self.client_id, "confidential": self.secret is not None, "redirect_uris": self.redirect_uris,
                "post_logout_redirect_uris": self.post_logout_redirect_uris}


@dataclass
class Issuer:
    name: str  # "" for the default issuer
    algorithm: str
    keys: list[Any] = field(default_factory=list)  # newest first: keys[0] signs, the others stay published until removed
    faults: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return self.name or "default"


@dataclass
class Session:
    """One login of a user at a client (OIDC's `sid`): its refresh tokens rotate within it; revoking it ends them all,
    and every access token that carries its sid stops being active (introspection, userinfo)."""

    sid: str
    issuer: str
    client_id: str
    sub: str
    scope: str
    user: dict[str, Any]  # what the tokens say of the user: email, name, auth_time, per-login claims
    revoked: bool = False


class OidcProvider:
    def __init__(self, clock: Callable[[], float], algorithm: str = "RS256", lifetime_s: int = 3600,
                 users: Callable[[], list[Any]] = list, *, refresh_lifetime_s: int = 30 * 86400, keys_dir: str | None = None,
                 issuer_override: str | None = None, event: Callable[..., None] = lambda kind, **data: None) -> None:
        self.clock = clock
        self.issuer_override = issuer_override.rstrip("/") if issuer_override else None  # OIDC_ISSUER
        self.algorithm = algorithm
        self.lifetime_s = lifetime_s
        self.refresh_lifetime_s = refresh_lifetime_s
        self.users = users  # the auth mock's users (id, email, name): who can log in
        self.keys_dir = Path(keys_dir) if keys_dir else None
        self.event = event
        self.issuers: dict[str, Issuer] = {}
        self.issuer("", create=True)  # the default issuer always exists (its key is made when first needed)
        self.clients: dict[str, Client] = {}  # empty: any client_id works; otherwise only these
        self.user_claims: dict[str, dict[str, Any]] = {}  # user id -> extra claims in every token of that user
        self.client_claims: dict[str, dict[str, Any]] = {}  # client id -> extra claims in every token issued to it
        self.codes: dict[str, dict[str, Any]] = {}  # authorization code -> what it grants (one use, CODE_SECONDS)
        self.sessions: OrderedDict[str, Session] = OrderedDict()
        self.refresh_tokens: OrderedDict[str, dict[str, Any]] = OrderedDict()  # token -> {sid, expires, used}
        self.revoked_jtis: OrderedDict[str, float] = OrderedDict()  # jti -> exp
        self.used_codes: OrderedDict[str, str] = OrderedDict()  # authorization code -> the sid it started (a reuse ends it)

    # --- issuers, keys, clock, faults ---

    def issuer(self, name: str = "", *, create: bool = False) -> Issuer:
        """An issuer by its checked name. Named issuers come from the settings, the control API's state-changing calls,
        the panel or the plugin (`create`); a request for an unknown one is a 404 (a GET must not make issuers: any
        page can send GETs, each would cost a key and fill the list)."""
        found = self.issuers.get(name)
        if found is None:
            if not create:
                raise NotFound(f"no issuer named {name!r}: declare it in the oidc_issuers setting or "
                               f"POST /__mockpanel/oidc/issuers {{\"name\": \"{name}\"}}")
            if len(self.issuers) >= MAX_ISSUERS:
                raise Invalid(f"at most {MAX_ISSUERS} issuers")
            found = self.issuers[name] = Issuer(name, self.algorithm, self._load_keys(name))
        return found

    def keys(self, issuer: Issuer) -> list[Any]:
        """The issuer's published keys, newest (the signing one) first; the first is made when first needed (about
        50 ms for RSA 2048), so a start, a discovery document or a named issuer's first mention costs nothing."""
        if not issuer.keys or issuer.keys[0].get("alg") != issuer.algorithm:
            issuer.keys.insert(0, new_key(issuer.algorithm))
            del issuer.keys[MAX_KEYS:]
            self._save_keys(issuer)
        return issuer.keys

    def url(self, base: str, name: str) -> str:
        """An issuer's URL: the oidc_issuer setting's (behind a proxy, in a container), else `base` — the URL a request
        came to, or the server's own where there is no request — plus /issuers/NAME for a named issuer."""
        return (self.issuer_override or base.rstrip("/")) + (f"/issuers/{name}" if name else "")

    def faulty(self) -> list[Issuer]:
        """The issuers with token faults on (the panel's ⚡)."""
        return [issuer for issuer in self.issuers.values() if issuer.faults]

    def clear_all_faults(self) -> list[str]:
        """Every issuer's token faults off; the labels of those that had some."""
        cleared = self.faulty()
        for issuer in cleared:
            self.set_faults(issuer, {}, replace=True)
        return [issuer.label for issuer in cleared]

    def named(self, name: str) -> Issuer:
        """An issuer by a name a person typed ("" or "default": the default one)."""
        return self.issuer("" if name in ("", "default") else issuer_name(name), create=True)

    check_faults = staticmethod(check_faults)

    def _keys_file(self, name: str) -> Path | None:
        return self.keys_dir / f"{name or 'default'}.jwks.json" if self.keys_dir else None

    def _load_keys(self, name: str) -> list[Any]:
        from joserfc.jwk import JWKRegistry

        path = self._keys_file(name)
        if path is None or not path.exists():
            return []
        try:
            data = json.loads(path.read_text())
            return [JWKRegistry.import_key(item) for item in data["keys"]][:MAX_KEYS]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise Invalid(f"{path}: not a private JWKS this provider wrote ({exc})"[:300]) from None

    def _save_keys(self, issuer: Issuer) -> None:
        path = self._keys_file(issuer.name)
        if path is None:
            return
        private_dir(path.parent)
        write_private(path, json.dumps({"keys": [k.as_dict(private=True) for k in issuer.keys]}))  # 0600 from its creation, whole

    def now(self, issuer: Issuer) -> float:
        return self.clock()

    def fixed_now(self) -> float | None:
        """The moment the mocks' clock is frozen at, or None while it runs."""
        return getattr(self.clock, "frozen_at", None)

    def set_clock(self, issuer: Issuer, now: float | None = None, advance_s: float | None = None) -> float | None:
        """The issuer's clock is a view of the mocks' one clock (clock.py): setting or advancing it freezes that clock
        there (every server's time moves with it, as this endpoint always froze the issuer's); neither goes back to
        the wall clock."""
        if now is None and advance_s is None:
            self.clock.reset()
        else:
            self.clock.change(now=now, advance_s=advance_s, frozen=True)
        self.event("oidc_clock", issuer=issuer.label, now=self.fixed_now())
        return self.fixed_now()

    def jwks(self, issuer: Issuer) -> dict[str, Any]:
        from joserfc.jwk import KeySet

        if issuer.faults.get("rotate_on_fetch"):  # a provider rotating between two fetches of the same client
            self.rotate(issuer)
        return KeySet(self.keys(issuer)).as_dict(private=False)

    def rotate(self, issuer: Issuer, algorithm: str | None = None) -> str:
        """A new signing key (of another algorithm if asked), published beside the old ones until they are removed."""
        if algorithm is not None:
            if algorithm not in ALGORITHMS:
                raise Invalid(f"algorithm {algorithm!r}: choose from {', '.join(ALGORITHMS)}"[:200])
            issuer.algorithm = algorithm
        issuer.keys.insert(0, new_key(issuer.algorithm))
        del issuer.keys[MAX_KEYS:]
        self._save_keys(issuer)
        self.event("oidc_rotated", issuer=issuer.label, kid=issuer.keys[0].kid)
        return issuer.keys[0].kid

    def remove_retired(self, issuer: Issuer) -> int:
        removed = max(0, len(issuer.keys) - 1)
        del issuer.keys[1:]
        self._save_keys(issuer)
        self.event("oidc_keys_removed", issuer=issuer.label, removed=removed)
        return removed

    def set_faults(self, issuer: Issuer, changes: dict[str, Any], replace: bool = False) -> dict[str, Any]:
        check_faults(changes)
        faults = {} if replace else dict(issuer.faults)
        for name, value in changes.items():
            if value in (None, False, 0, ""):
                faults.pop(name, None)
            else:
                faults[name] = value
        issuer.faults = faults
        self.event("oidc_faults", issuer=issuer.label, faults=dict(faults))
        return dict(faults)

    # --- clients and claims ---

    def register_client(self, client_id: str, secret: str | None = None, redirect_uris: Any = (), post_logout_redirect_uris: Any = ()) -> Client:
        if not isinstance(client_id, str) or not 1 <= len(client_id) <= 256:
            raise Invalid("client_id is 1-256 characters")
        if secret is not None and (not isinstance(secret, str) or not 1 <= len(secret) <= 512):
            raise Invalid("secret is 1-512 characters, or left out for a public client")
        lists = []
        for name, uris in (("redirect_uris", redirect_uris), ("post_logout_redirect_uris", post_logout_redirect_uris)):
            if isinstance(uris, str) or not all(_http_url(u) for u in uris) or len(uris) > 50:
                raise Invalid(f"{name} is a list of at most 50 http(s) URLs")
            lists.append(list(uris))
        if client_id not in self.clients and len(self.clients) >= MAX_CLIENTS:
            raise Invalid(f"at most {MAX_CLIENTS} registered clients")
        client = self.clients[client_id] = Client(client_id, secret, *lists)
        self.event("oidc_clients", client=client_id, registered=True)
        return client

    def remove_client(self, client_id: str) -> None:
        if self.clients.pop(client_id, None) is None:
            raise NotFound(f"no registered client {client_id!r}")
        self.event("oidc_clients", client=client_id, registered=False)

    def find_user(self, hint: str) -> Any:
        """The user whose id or e-mail this is, or None."""
        return next((u for u in self.users() if hint and hint in (u.id, u.email)), None)

    def set_user_claims(self, hint: str, claims: Any) -> dict[str, Any]:
        user = self.find_user(hint)
        if user is None:
            raise NotFound(f"no user with id or e-mail {hint!r}"[:200])
        self.user_claims[user.id] = check_claims(claims, "a user's claims")
        if not claims:
            del self.user_claims[user.id]
        self.event("oidc_claims", user=user.id)
        return self.user_claims.get(user.id, {})

    def set_client_claims(self, client_id: str, claims: Any) -> dict[str, Any]:
        if not isinstance(client_id, str) or not 1 <= len(client_id) <= 256:
            raise Invalid("client_id is 1-256 characters")
        self.client_claims[client_id] = check_claims(claims, "a client's claims")
        if not claims:
            del self.client_claims[client_id]
        if len(self.client_claims) > MAX_CLIENTS:
            del self.client_claims[client_id]
            raise Invalid(f"claims for at most {MAX_CLIENTS} clients")
        self.event("oidc_claims", client=client_id)
        return self.client_claims.get(client_id, {})

    def authenticate(self, client_id: str | None, secret: str | None) -> str:
        """The client a request comes from. Open (no registered client): any client_id. Otherwise a registered one,
        with its secret if it has one (RFC 6749 2.3: client_secret_basic or _post)."""
        if not client_id:
            raise OAuthError("invalid_client", "client_id is required (form or Basic auth)", 401)
        client_id = client_id[:256]
        if not self.clients:
            return client_id
        client = self.clients.get(client_id)
        if client is None:
            raise OAuthError("invalid_client", f"client {client_id!r} is not registered (registered clients are enforced)"[:200], 401)
        if client.secret is not None and not hmac.compare_digest((secret or "").encode(), client.secret.encode()):
            raise OAuthError("invalid_client", "wrong or missing client secret", 401)
        return client_id

    def check_redirect(self, client_id: str, redirect_uri: str, logout: bool = False) -> None:
        """A redirect URI this client may be sent to: any http(s) URL while no client is registered, else one of its own."""
        if not _http_url(redirect_uri):
            raise OAuthError("invalid_request", f"{'post_logout_' if logout else ''}redirect_uri must be an http(s) URL")
        if not self.clients:
            return
        client = self.clients.get(client_id)
        allowed = (client.post_logout_redirect_uris if logout else client.redirect_uris) if client else []
        if redirect_uri not in allowed:
            raise OAuthError("invalid_request", f"{'post_logout_' if logout else ''}redirect_uri is not registered for client {client_id!r}"[:200])

    # --- issuing ---

    def _user_part(self, user: Any, issuer: Issuer, login_claims: dict[str, Any] | None = None, nonce: str | None = None) -> dict[str, Any]:
        return {"sub": user.id, "email": user.email, "name": user.name, "auth_time": int(self.now(issuer)),
                "claims": dict(login_claims or {}), "nonce": nonce}

    def start_session(self, issuer: Issuer, client_id: str, scope: str, user: dict[str, Any]) -> Session:
        session = Session(secrets.token_hex(12), issuer.name, client_id, user["sub"], scope, user)
        self.sessions[session.sid] = session
        while len(self.sessions) > MAX_GRANTS:
            self.sessions.popitem(last=False)
        return session

    def _extra_claims(self, sub: str | None, client_id: str, login: dict[str, Any] | None = None) -> dict[str, Any]:
        """A user's claims (sub: the user's id; None for a client's own token), the client's, this login's."""
        return {**(self.user_claims.get(sub, {}) if sub else {}), **self.client_claims.get(client_id, {}), **(login or {})}

    def issue(self, issuer: Issuer, issuer_url: str, client_id: str, scope: str, audience: str | None = None,
              session: Session | None = None, *, refresh: bool = True, base: dict[str, Any] | None = None) -> dict[str, Any]:
        """An access token (JWT, typ at+jwt) under the issuer's faults: for the client itself (no session: client
        credentials), or for a user's session, then with an ID token when the scope has openid and a refresh token."""
        faults = issuer.faults
        now = int(self.now(issuer)) + int(faults.get("clock_skew_s", 0))
        subject = session.sub if session else client_id  # a client's own token has the client as subject, never a user
        claims = {**self._extra_claims(session.sub if session else None, client_id, session.user["claims"] if session else None), **(base or {})}
        claims.update({"iss": faults.get("issuer", issuer_url), "iat": now, "exp": now + self.lifetime_s, "jti": secrets.token_hex(12),
                       "client_id": client_id, "azp": client_id, "scope": scope})
        claims.setdefault("sub", subject)
        claims["aud"] = faults.get("audience", audience or claims.get("aud") or client_id)
        answer: dict[str, Any] = {"token_type": "Bearer", "expires_in": self.lifetime_s, "scope": scope}
        if session is not None:
            claims["sid"] = session.sid
            claims.update({k: session.user[k] for k in ("email", "name") if session.user.get(k) and k not in claims})
        answer["access_token"] = self._sign(issuer, claims, "at+jwt")
        if session is not None and "openid" in scope.split():
            id_claims = {**self._extra_claims(session.sub, client_id, session.user["claims"]), "sub": session.sub,
                         "email": session.user.get("email"), "name": session.user.get("name")}
            id_claims = {k: v for k, v in id_claims.items() if v is not None}
            id_claims.update({"iss": claims["iss"], "aud": faults.get("audience", client_id), "iat": now, "exp": now + self.lifetime_s,
                              "auth_time": session.user["auth_time"], "azp": client_id, "sid": session.sid})
            if session.user.get("nonce"):
                id_claims["nonce"] = session.user["nonce"]
            answer["id_token"] = self._sign(issuer, id_claims, "JWT")
        if session is not None and refresh:
            answer["refresh_token"] = self._new_refresh(issuer, session)
        return answer

    def _sign(self, issuer: Issuer, claims: dict[str, Any], typ: str) -> str:
        from joserfc import jwt

        faults = issuer.faults
        now = claims["iat"]
        if faults.get("expired"):
            claims["iat"], claims["exp"] = now - 2 * self.lifetime_s, now - self.lifetime_s
        if faults.get("not_yet_valid"):
            claims["nbf"] = now + self.lifetime_s
        published = self.keys(issuer)[0]
        # foreign_key: the published key's kid, but another key's signature (the JWKS has the kid; the signature fails)
        key = new_key(issuer.algorithm) if faults.get("foreign_key") else published
        header = {"alg": issuer.algorithm, "typ": typ, "kid": "unknown-" + secrets.token_hex(4) if faults.get("unknown_kid") else published.kid}
        token = jwt.encode(header, claims, key, algorithms=[issuer.algorithm])
        if faults.get("alg"):  # the header claims another algorithm than the one that signed
            head, rest = token.split(".", 1)
            changed = {**json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4))), "alg": faults["alg"]}
            token = base64.urlsafe_b64encode(json.dumps(changed, separators=(",", ":")).encode()).decode().rstrip("=") + "." + rest
        return token

    def token_for(self, issuer: Issuer, issuer_url: str, user_hint: str | None, client_id: str, scope: str = "openid profile email",
                  audience: str | None = None) -> dict[str, Any]:
        """Tokens without a flow (the Users pane, the palette, the pytest plugin): a user's (ID, access and refresh
        tokens in a new session) or, without a user, the client's own (client credentials)."""
        client_id, scope, audience = client_id[:256], scope[:1024], audience[:256] if audience else None  # as the token endpoint
        if user_hint is None:
            return self.issue(issuer, issuer_url, client_id, scope, audience)
        user = self.find_user(user_hint)
        if user is None:
            raise NotFound(f"no user with id or e-mail {user_hint!r}"[:200])
        session = self.start_session(issuer, client_id, scope, self._user_part(user, issuer))
        return self.issue(issuer, issuer_url, client_id, scope, audience, session)

    # --- the authorization code ---

    def new_code(self, issuer: Issuer, params: dict[str, str], user: Any, login_claims: dict[str, Any]) -> str:
        now = self.clock()
        for code in [c for c, g in self.codes.items() if g["expires"] < now]:
            del self.codes[code]
        if len(self.codes) >= MAX_CODES:
            raise Invalid("too many authorization codes waiting to be exchanged")
        code = secrets.token_urlsafe(24)
        self.codes[code] = {"issuer": issuer.name, "client_id": params.get("client_id", ""), "redirect_uri": params.get("redirect_uri", ""),
                            "scope": params.get("scope", "openid"), "challenge": params.get("code_challenge"),
                            "method": params.get("code_challenge_method") or ("plain" if params.get("code_challenge") else None),
                            "user": self._user_part(user, issuer, login_claims, params.get("nonce")), "expires": now + CODE_SECONDS}
        return code

    def exchange_code(self, issuer: Issuer, issuer_url: str, client_id: str, form: dict[str, str]) -> dict[str, Any]:
        code = form.get("code", "")
        grant = self.codes.pop(code, None)  # one use, whatever happens next
        if grant is None and code in self.used_codes:  # RFC 6749 4.1.2: a code used twice revokes what it granted
            session = self.sessions.get(self.used_codes[code])
            if session is not None:
                self.end_session(session, "code reuse")
            raise OAuthError("invalid_grant", "the code was already used: the tokens it granted are revoked")
        if grant is None or grant["expires"] < self.clock() or grant["issuer"] != issuer.name:
            raise OAuthError("invalid_grant", "the code is unknown, used or expired")
        if client_id != grant["client_id"]:
            raise OAuthError("invalid_grant", "the code was issued to another client")
        if form.get("redirect_uri", "") != grant["redirect_uri"]:
            raise OAuthError("invalid_grant", "redirect_uri differs from the authorization request's")
        if grant["challenge"]:
            verifier = form.get("code_verifier", "")
            if grant["method"] == "S256":
                computed = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
            else:
                computed = verifier
            if not verifier or not hmac.compare_digest(computed, grant["challenge"]):
                raise OAuthError("invalid_grant", "code_verifier does not match the code_challenge (PKCE)")
        session = self.start_session(issuer, client_id, grant["scope"], grant["user"])
        self.used_codes[code] = session.sid
        while len(self.used_codes) > MAX_CODES:
            self.used_codes.popitem(last=False)
        self.event("oidc_login", issuer=issuer.label, client=client_id, user=session.sub)
        return self.issue(issuer, issuer_url, client_id, grant["scope"], None, session)

    # --- refresh tokens: rotation and reuse detection ---

    def _new_refresh(self, issuer: Issuer, session: Session) -> str:
        token = secrets.token_urlsafe(32)
        self.refresh_tokens[token] = {"sid": session.sid, "expires": self.now(issuer) + self.refresh_lifetime_s, "used": False}
        while len(self.refresh_tokens) > MAX_GRANTS:
            self.refresh_tokens.popitem(last=False)
        return token

    def refresh(self, issuer: Issuer, issuer_url: str, client_id: str, token: str) -> dict[str, Any]:
        """A new access token and a new refresh token for a live one (rotation). A refresh token used twice ends its
        whole session: the stolen copy and the rotated successor both stop working (OAuth 2 Security BCP 4.14)."""
        grant = self.refresh_tokens.get(token)
        session = self.sessions.get(grant["sid"]) if grant else None
        if grant is None or session is None or session.issuer != issuer.name:
            raise OAuthError("invalid_grant", "the refresh token is unknown")
        if session.client_id != client_id:
            raise OAuthError("invalid_grant", "the refresh token was issued to another client")
        if grant["used"]:
            self.end_session(session, "reuse")
            raise OAuthError("invalid_grant", "the refresh token was already used: its session is revoked (reuse detection)")
        if session.revoked:
            raise OAuthError("invalid_grant", "the session of this refresh token is revoked")
        if grant["expires"] <= self.now(issuer):
            raise OAuthError("invalid_grant", "the refresh token has expired")
        grant["used"] = True
        return self.issue(issuer, issuer_url, client_id, session.scope, None, session)

    # --- revocation, introspection, logout ---

    def end_session(self, session: Session, why: str) -> None:
        if not session.revoked:
            session.revoked = True
            self.event("oidc_revoked", issuer=session.issuer or "default", user=session.sub, client=session.client_id, why=why)

    def revoke_user(self, issuer: Issuer | None, hint: str) -> int:
        """End every session of a user (at one issuer, or all): its refresh tokens and access tokens stop working now."""
        user = self.find_user(hint)
        sub = user.id if user is not None else hint
        ended = [s for s in self.sessions.values() if s.sub == sub and not s.revoked and (issuer is None or s.issuer == issuer.name)]
        for session in ended:
            self.end_session(session, "revoked")
        return len(ended)

    def verify(self, issuer: Issuer, token: str, *, check_time: bool = True, typ: tuple[str, ...] | None = None) -> dict[str, Any] | None:
        """The claims of a token this issuer signed with a key it still publishes (and, with `typ`, of one of those
        header types: at+jwt for access tokens, JWT for ID tokens), or None."""
        from joserfc import jwt
        from joserfc.errors import JoseError
        from joserfc.jwk import KeySet

        try:
            decoded = jwt.decode(token, KeySet(self.keys(issuer)), algorithms=[issuer.algorithm])
        except (JoseError, ValueError, TypeError):
            return None
        if typ is not None and decoded.header.get("typ") not in typ:
            return None
        claims = decoded.claims
        now = self.now(issuer)
        if check_time and not claims.get("exp", 0) > now >= claims.get("nbf", 0):
            return None
        return claims

    def active_claims(self, issuer: Issuer, token: str, typ: tuple[str, ...] = (ACCESS_TYP,)) -> dict[str, Any] | None:
        """An access token's claims while it is active: valid, of its type (RFC 9068: an ID token is no access
        token), not revoked, its session not ended."""
        claims = self.verify(issuer, token, typ=typ)
        if claims is None or claims.get("jti") in self.revoked_jtis:
            return None
        session = self.sessions.get(claims.get("sid", ""))
        if session is not None and session.revoked:
            return None
        return claims

    def introspect(self, issuer: Issuer, token: str) -> dict[str, Any]:
        """RFC 7662: {"active": false} for anything not active, else the token's claims with active and token_type."""
        grant = self.refresh_tokens.get(token)
        if grant is not None:
            session = self.sessions.get(grant["sid"])
            if session is None or session.revoked or grant["used"] or grant["expires"] <= self.now(issuer) or session.issuer != issuer.name:
                return {"active": False}
            return {"active": True, "token_type": "refresh_token", "client_id": session.client_id, "sub": session.sub,
                    "scope": session.scope, "exp": int(grant["expires"])}
        claims = self.active_claims(issuer, token)
        if claims is None:
            return {"active": False}
        return {**claims, "active": True, "token_type": "Bearer"}

    def revoke(self, issuer: Issuer, token: str, client_id: str | None = None) -> None:
        """RFC 7009: a refresh token ends its session; an access token stops being active. Unknown tokens: nothing.
        A client (when known) revokes only its own tokens (2.1): another client's is refused, unchanged."""
        grant = self.refresh_tokens.get(token)
        if grant is not None:
            session = self.sessions.get(grant["sid"])
            if session is not None:
                if client_id is not None and session.client_id != client_id:
                    raise OAuthError("unauthorized_client", "the token was issued to another client")
                self.end_session(session, "revoked")
            return
        claims = self.verify(issuer, token, check_time=False)
        if claims is not None and client_id is not None and claims.get("client_id") != client_id:
            raise OAuthError("unauthorized_client", "the token was issued to another client")
        if claims is not None and claims.get("jti"):
            self.revoked_jtis[claims["jti"]] = float(claims.get("exp", 0))
            now = self.now(issuer)
            for jti in [j for j, exp in self.revoked_jtis.items() if exp < now]:
                del self.revoked_jtis[jti]
            while len(self.revoked_jtis) > MAX_REVOKED:
                self.revoked_jtis.popitem(last=False)
            self.event("oidc_revoked", issuer=issuer.label, jti=claims["jti"], why="revoked")

    def logout(self, issuer: Issuer, id_token_hint: str) -> Session | None:
        """RP-initiated logout: the session named by the ID token (expired hints count, as the spec allows) ends."""
        claims = self.verify(issuer, id_token_hint, check_time=False) if id_token_hint else None
        session = self.sessions.get((claims or {}).get("sid", ""))
        if session is not None:
            self.end_session(session, "logout")
        return session

    def exchange_token(self, issuer: Issuer, issuer_url: str, client_id: str, form: dict[str, str]) -> dict[str, Any]:
        """RFC 8693: an access token for another audience, in place of a subject token this issuer issued (an actor
        token, if sent, becomes the `act` claim)."""
        subject_type = form.get("subject_token_type", "")
        if subject_type not in TOKEN_TYPES:
            raise OAuthError("invalid_request", f"subject_token_type is one of {', '.join(TOKEN_TYPES)}")
        # The token must be what its type says: an ID token is no access token (RFC 9068), nor the other way round.
        kinds = {ACCESS_TOKEN_TYPE: (ACCESS_TYP,), "urn:ietf:params:oauth:token-type:id_token": (ID_TYP,)}
        subject = self.active_claims(issuer, form.get("subject_token", ""), kinds.get(subject_type, (ACCESS_TYP, ID_TYP)))
        if subject is None:
            raise OAuthError("invalid_grant", "the subject_token is not an active token of this issuer")
        requested = form.get("requested_token_type") or ACCESS_TOKEN_TYPE
        if requested not in (ACCESS_TOKEN_TYPE, "urn:ietf:params:oauth:token-type:jwt"):
            raise OAuthError("invalid_request", "requested_token_type: only access tokens are issued")
        base = {k: v for k, v in subject.items() if k not in ("iss", "aud", "exp", "iat", "nbf", "jti", "client_id", "azp", "scope", "sid", "act")}
        if subject.get("sid"):
            base["sid"] = subject["sid"]  # the new token belongs to the subject's session: a logout or a revocation ends it too
        if form.get("actor_token"):
            actor = self.active_claims(issuer, form["actor_token"], kinds.get(form.get("actor_token_type", ""), (ACCESS_TYP, ID_TYP)))
            if actor is None:
                raise OAuthError("invalid_grant", "the actor_token is not an active token of this issuer")
            base["act"] = {"sub": actor["sub"]}
        audience = form.get("audience") or form.get("resource") or None
        scope = form.get("scope") or str(subject.get("scope", ""))
        answer = self.issue(issuer, issuer_url, client_id, scope[:1024], audience[:256] if audience else None, base=base)
        answer["issued_token_type"] = ACCESS_TOKEN_TYPE
        return answer

    def reset(self) -> None:
        """Back to the start: no faults, no sessions, codes, clients, claims or revocations (the auth
        server then applies its settings again); keys stay (tokens issued before a reset still verify)."""
        for issuer in self.issuers.values():
            issuer.faults = {}
        self.codes.clear()
        self.sessions.clear()
        self.refresh_tokens.clear()
        self.revoked_jtis.clear()
        self.user_claims.clear()
        self.client_claims.clear()
        self.clients.clear()

    # --- snapshots (state.py) ---

    def export_state(self) -> dict[str, Any]:
        """Everything the provider holds, as JSON: issuers with their private keys and faults, registered clients,
        extra claims, sessions, refresh tokens, codes and revocations."""
        return {
            "issuers": [{"name": i.name, "algorithm": i.algorithm, "keys": [k.as_dict(private=True) for k in i.keys], "faults": i.faults}
                        for i in self.issuers.values()],
            "clients": [{"client_id": c.client_id, "secret": c.secret, "redirect_uris": c.redirect_uris,
                         "post_logout_redirect_uris": c.post_logout_redirect_uris} for c in self.clients.values()],
            "user_claims": self.user_claims, "client_claims": self.client_claims,
            "sessions": [vars(s).copy() for s in self.sessions.values()],
            "refresh_tokens": dict(self.refresh_tokens), "codes": dict(self.codes), "used_codes": dict(self.used_codes),
            "revoked_jtis": dict(self.revoked_jtis),
        }

    def prepare_state(self, doc: dict[str, Any]) -> Callable[[], None]:
        """Check a snapshot's provider part and build it aside; the function that makes it the live state."""
        from joserfc.jwk import JWKRegistry

        try:
            issuers = {}
            for raw in doc.get("issuers", [])[:MAX_ISSUERS]:
                name = raw["name"] if raw["name"] == "" else issuer_name(raw["name"])
                if raw["algorithm"] not in ALGORITHMS:
                    raise Invalid(f"issuer {name or 'default'}: unknown algorithm {str(raw['algorithm'])[:20]!r}")
                keys = [JWKRegistry.import_key(k) for k in raw.get("keys", [])[:MAX_KEYS]]
                issuers[name] = Issuer(name, raw["algorithm"], keys, check_faults(raw.get("faults") or {}))
            clients = {c["client_id"]: Client(str(c["client_id"]), c.get("secret"), list(c.get("redirect_uris") or []),
                                              list(c.get("post_logout_redirect_uris") or [])) for c in doc.get("clients", [])[:MAX_CLIENTS]}
            sessions = OrderedDict((s["sid"], Session(**s)) for s in doc.get("sessions", [])[-MAX_GRANTS:])
            user_claims = {str(k): check_claims(v, "extra claims") for k, v in (doc.get("user_claims") or {}).items()}
            client_claims = {str(k): check_claims(v, "extra claims") for k, v in (doc.get("client_claims") or {}).items()}
            grants = [OrderedDict(list((doc.get(what) or {}).items())[-limit:]) for what, limit in
                      (("refresh_tokens", MAX_GRANTS), ("codes", MAX_CODES), ("used_codes", MAX_CODES), ("revoked_jtis", MAX_GRANTS))]
        except Invalid:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise Invalid(f"oidc: not a provider state this mockpanel wrote ({type(exc).__name__}: {str(exc)[:120]})") from None
        if "" not in issuers:
            raise Invalid("oidc: the default issuer is missing")

        def apply() -> None:
            self.issuers = issuers
            self.clients, self.sessions, self.user_claims, self.client_claims = clients, sessions, user_claims, client_claims
            self.refresh_tokens, codes, self.used_codes, self.revoked_jtis = grants
            self.codes = dict(codes)
            for issuer in issuers.values():
                if issuer.keys:
                    self._save_keys(issuer)  # a keys directory keeps them, as it keeps the keys it made

        return apply
