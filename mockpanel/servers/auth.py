"""The auth API mock of seed 000: register, login, refresh, me, users, metrics; HS256 JWTs a chat API accepts."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

import jwt
from fastapi import Header, Query, Request
from passlib.context import CryptContext
from pydantic import BaseModel, EmailStr, Field, ValidationError, field_validator

from ..service import ServerContext
from ..settings import Setting, SettingsError
from .auth_mail import AuthMail, mail_routes
from ..spec import Built, Conflict, DomainError, Invalid, NotFound, ServerSpec, Unauthorized
from ..clock import BY_OUR_CLOCK, check_token_times
from ..timefmt import iso
from ..web import json_app
from .oidc import ALGORITHMS, OidcProvider, issuer_name
from .oidc import control_routes as oidc_control_routes
from .oidc import routes as oidc_routes

MAX_TOKEN_TTL_S = 10 * 365 * 24 * 3600  # a token issued from the panel lives at most ten years
SERVICE_NAME = "auth-api-mock"
SEED_CREATED_AT = "2024-01-01T00:00:00"
SEED_USERS = (
    ("test-user-123", "alice@example.com", "Alice Johnson"),
    ("test-user-456", "bob@example.com", "Bob Smith"),
    ("test-user-789", "charlie@example.com", "Charlie Brown"),
    ("test-user-abc", "diana@example.com", "Diana Prince"),
    ("test-user-def", "ethan@example.com", "Ethan Hunt"),
)
HS_ALGORITHMS = ("HS256", "HS384", "HS512")
DEFAULT_SECRET = "dev-secret-key-change-in-production"

SETTINGS = (
    Setting("jwt_secret", "str", DEFAULT_SECRET, "secret that signs tokens (must match your API's)", ("JWT_SECRET",), secret_default=True),
    Setting("jwt_algorithm", "str", "HS256", "HS256, HS384 or HS512", ("JWT_ALGORITHM",), choices=HS_ALGORITHMS),
    Setting("jwt_expiry_hours", "positive", 24, "access token lifetime", ("JWT_EXPIRY_HOURS",)),
    Setting("jwt_refresh_expiry_days", "positive", 30, "refresh token lifetime", ("JWT_REFRESH_EXPIRY_DAYS",)),
    Setting("default_password", "str", "password123", "password of the seed users", ("DEFAULT_PASSWORD",)),
    Setting("bcrypt_rounds", "rounds", 4, "bcrypt cost; a mock needs no real cost, and login stays fast", ("BCRYPT_ROUNDS",)),
    Setting("oidc_issuer", "str", None, "the OpenID Connect issuer URL (default: the URL the request came to; set it behind a proxy or "
            "in a container)", ("OIDC_ISSUER",)),
    Setting("oidc_algorithm", "str", "RS256", "signing algorithm of the OIDC issuers' tokens", ("OIDC_ALGORITHM",), choices=ALGORITHMS),
    Setting("oidc_token_lifetime_s", "positive", 3600, "lifetime of OIDC access and ID tokens, seconds", ("OIDC_TOKEN_LIFETIME_S",)),
    Setting("oidc_refresh_lifetime_s", "positive", 30 * 86400, "lifetime of OIDC refresh tokens, seconds", ("OIDC_REFRESH_LIFETIME_S",)),
    Setting("oidc_keys_dir", "str", None, "directory of the issuers' signing keys (private JWKS files): tokens survive a restart "
            "(default: new keys each start)", ("OIDC_KEYS_DIR",)),
    Setting("oidc_issuers", "json", {}, "named issuers with their own algorithm: {name: {algorithm}} (a TOML table, or JSON)",
            ("OIDC_ISSUERS",)),
    Setting("oidc_clients", "json", {}, "registered clients: {client_id: {secret, redirect_uris, post_logout_redirect_uris}}; "
            "when any is registered only these get tokens", ("OIDC_CLIENTS",)),
    Setting("oidc_user_claims", "json", {}, "extra claims per user: {user id or e-mail: {claim: value}}", ("OIDC_USER_CLAIMS",)),
    Setting("mail", "bool", False, "beyond the seed: mail a verification link on register and serve the password reset "
            "(forgot-password, reset-password) through the mail server", ("AUTH_MAIL",)),
    Setting("mail_from", "str", "noreply@mockpanel.localhost", "the sender of those mails"),
    Setting("smtp_host", "str", "127.0.0.1", "where those mails go when no mail server runs beside auth"),
    Setting("smtp_port", "port", 1025, "its port (a mail server beside auth is found by itself)"),
    Setting("public_url", "str", None, "the base of the links in those mails (default: the URL the request came to)"),
    Setting("oidc_client_claims", "json", {}, "extra claims per client: {client_id: {claim: value}}", ("OIDC_CLIENT_CLAIMS",)),
)


class AuthError(Unauthorized):
    """A request that cannot be authenticated; answered 401 with this message and WWW-Authenticate: Bearer."""


# --- models: the OpenAPI docs at /docs are these ---


class RegisterRequest(BaseModel):
    email: EmailStr
    password: str = Field(min_length=8, max_length=72)
    name: str = Field(min_length=1, max_length=200)

    @field_validator("password")
    @classmethod
    def _fits_bcrypt(cls, value: str) -> str:
        if len(value.encode("utf-8", "surrogatepass")) > 72:
            raise ValueError("password must be at most 72 bytes in UTF-8 (a bcrypt limit)")
        if "\x00" in value:
            raise ValueError("password must not contain NUL characters (a bcrypt limit)")
        return value


class LoginRequest(BaseModel):
    email: str = Field(max_length=320)
    password: str = Field(max_length=1024)


class RefreshRequest(BaseModel):
    refresh_token: str = Field(max_length=8192)


class UserOut(BaseModel):
    id: str
    email: str
    name: str
    created_at: str


class TokenResponse(BaseModel):
    access_token: str
    refresh_token: str
    token_type: str = "bearer"
    expires_in: int
    user: UserOut


class RefreshResponse(BaseModel):
    access_token: str
    refresh_token: str
    token_type: str = "bearer"
    expires_in: int


class UsersResponse(BaseModel):
    total: int
    users: list[UserOut]


class Metrics(BaseModel):
    total_requests: int
    total_errors: int
    error_rate: float
    endpoints: dict[str, int]


class HealthResponse(BaseModel):
    status: str
    service: str
    timestamp: str
    metrics: Metrics


@dataclass(frozen=True)
class User:
    id: str
    email: str
    name: str
    created_at: str
    password_hash: str = field(repr=False)

    def public(self) -> dict[str, str]:
        return {"id": self.id, "email": self.email, "name": self.name, "created_at": self.created_at}


class TokenIssuer:
    """Issues and checks the HS* JWTs: claims sub, email, name, type, iat, exp, jti."""

    def __init__(self, secret: str, algorithm: str, access_hours: int, refresh_days: int, clock: Callable[[], float]) -> None:
        self.clock = clock  # the mocks' clock: iat and exp are set and judged by it
        self.secret = secret
        self.algorithm = algorithm
        self.access_ttl = timedelta(hours=access_hours)
        self.refresh_ttl = timedelta(days=refresh_days)

    def issue(self, user: User, token_type: str = "access", ttl: timedelta | None = None) -> str:
        now = datetime.fromtimestamp(self.clock(), timezone.utc)
        ttl = ttl if ttl is not None else (self.access_ttl if token_type == "access" else self.refresh_ttl)
        claims = {
            "sub": user.id,
            "email": user.email,
            "name": user.name,
            "type": token_type,
            "iat": int(now.timestamp()),
            "exp": int((now + ttl).timestamp()),
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(claims, self.secret, algorithm=self.algorithm)

    def decode(self, token: str, expected_type: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.DecodeError:
            raise AuthError("token is malformed: not a JWT") from None
        if header.get("alg") != self.algorithm:
            raise AuthError(f"token algorithm {header.get('alg')!r} is not accepted; expected {self.algorithm}")
        try:
            claims = jwt.decode(token, self.secret, algorithms=[self.algorithm], options={"require": ["exp", "sub", "type"], **BY_OUR_CLOCK})
            check_token_times(claims, self.clock())
        except jwt.ExpiredSignatureError:
            raise AuthError("token has expired") from None
        except jwt.InvalidSignatureError:
            raise AuthError("token signature is invalid (signed with another JWT_SECRET?)") from None
        except jwt.MissingRequiredClaimError as exc:
            raise AuthError(f"token lacks the {exc.claim!r} claim") from None
        except jwt.InvalidTokenError as exc:
            raise AuthError(f"token is invalid: {exc}") from None
        if claims.get("type") != expected_type:
            got = claims.get("type")
            raise AuthError(f"{_article(expected_type)} {expected_type} token is required here, got "
                            + (f"{_article(got)} {got} token" if isinstance(got, str) else "a token without a type"))
        return claims


class Accounts:
    """The auth mock's domain: users (from the five seed users) and their tokens. Routes, the Users pane and the
    palette all go through here; it sends the bus events and raises DomainError."""

    _CACHE_LIMIT = 4096
    _HASHING_AT_ONCE = 2  # bcrypt runs in threads; more at once would only queue on two cores

    def __init__(self, ctx: ServerContext) -> None:
        self.oidc: Any = None  # the OpenID Connect provider beside the seed API (servers/oidc.py), set by build()
        s = ctx.settings
        self.ctx = ctx
        self.crypt = CryptContext(schemes=["bcrypt"], bcrypt__rounds=s["bcrypt_rounds"])
        self.default_password = s["default_password"]
        self._seed_hash = self.crypt.hash(self.default_password)
        self.tokens = TokenIssuer(s["jwt_secret"], s["jwt_algorithm"], s["jwt_expiry_hours"], s["jwt_refresh_expiry_days"], ctx.clock)
        self._by_id: dict[str, User] = {}
        self._by_email: dict[str, User] = {}
        # bcrypt is slow by design; a mock re-verifying the same login thousands of times need not pay it again.
        self._verified: dict[tuple[str, bytes], bool] = {}
        self._hashing = asyncio.Semaphore(self._HASHING_AT_ONCE)
        self._seed()

    # --- reading ---

    def users(self) -> list[User]:
        return list(self._by_id.values())

    def user(self, user_id: str) -> User:
        try:
            return self._by_id[user_id]
        except KeyError:
            raise NotFound(f"no user with id {user_id!r}") from None

    def __len__(self) -> int:
        return len(self._by_id)

    # --- changing ---

    def _seed(self) -> None:
        self._by_id.clear()
        self._by_email.clear()
        for user_id, email, name in SEED_USERS:
            self._add(User(user_id, email, name, SEED_CREATED_AT, self._seed_hash))

    def _add(self, user: User) -> None:
        self._by_id[user.id] = user
        self._by_email[user.email.lower()] = user

    def reset(self) -> None:
        """Back to the seed users (the whole server's reset; it sends its own `reset` event)."""
        self._seed()

    # --- snapshots (state.py) ---

    def export_state(self, blobs: Any) -> dict[str, Any]:
        """Every user (seed and registered, with the password hash: a snapshot logs in as the original did) and the
        OpenID Connect provider's state."""
        return {"users": [vars(u).copy() for u in self._by_id.values()],
                "oidc": self.oidc.export_state() if self.oidc is not None else None}

    async def prepare_state(self, doc: dict[str, Any], blobs: Any) -> Any:
        from ..state import Prepared

        users = []
        for raw in doc.get("users") or []:
            if not isinstance(raw, dict) or set(raw) != {"id", "email", "name", "created_at", "password_hash"} \
                    or not all(isinstance(v, str) for v in raw.values()):
                raise Invalid("users: each is {id, email, name, created_at, password_hash} (strings)")
            if not self.crypt.identify(raw["password_hash"]):
                raise Invalid(f"users: {raw['email'][:80]}: the password hash is not one this server checks (bcrypt)")
            users.append(User(**raw))
        if len({u.email.lower() for u in users}) != len(users) or len({u.id for u in users}) != len(users):
            raise Invalid("users: an id or an e-mail is there twice")
        oidc = self.oidc.prepare_state(doc["oidc"]) if self.oidc is not None and isinstance(doc.get("oidc"), dict) else None

        def apply() -> None:
            self._by_id.clear()
            self._by_email.clear()
            self._verified.clear()
            for user in users:
                self._add(user)
            if oidc is not None:
                oidc()
            self.ctx.event("users_reset", users=len(self._by_id))

        return Prepared(apply)

    def find(self, email: str) -> User | None:
        return self._by_email.get(email.lower())

    async def set_password(self, user_id: str, password: str) -> None:
        """A new password (the password reset's last step): hashed in a thread, then in place of the old."""
        user = self.user(user_id)
        password_hash = await self._in_thread(self.crypt.hash, password)
        changed = replace(self._by_id.get(user_id, user), password_hash=password_hash)
        self._add(changed)
        self._verified.clear()  # a cached success for the old password must not outlive it
        self.ctx.event("password_reset", id=user.id, email=user.email)

    def reset_users(self) -> int:
        """Back to the seed users, as DELETE /api/auth/users/reset does; returns how many users there are."""
        self._seed()
        self.ctx.event("users_reset", users=len(self._by_id))
        return len(self._by_id)

    async def _in_thread(self, fn: Any, *args: Any) -> Any:
        async with self._hashing:  # bcrypt off the loop every server and the panel share, a bounded number at once
            return await asyncio.to_thread(fn, *args)

    async def register(self, email: str, password: str, name: str) -> User:
        """Add a user after the same checks as POST /api/auth/register; Invalid or Conflict otherwise."""
        try:
            body = RegisterRequest(email=email, password=password, name=name)
        except ValidationError as exc:
            first = exc.errors()[0]
            raise Invalid(f"{first['loc'][0]}: {first['msg']}") from None
        email = str(body.email)
        if email.lower() in self._by_email:
            raise Conflict(f"a user with email {email} already exists")
        password_hash = await self._in_thread(self.crypt.hash, body.password)
        if email.lower() in self._by_email:  # registered meanwhile
            raise Conflict(f"a user with email {email} already exists")
        user = User(str(uuid.uuid4()), email, body.name, iso(self.ctx.clock(), millis=False, zone=False), password_hash)
        self._add(user)
        self.ctx.event("user_registered", id=user.id, email=user.email, name=user.name)
        return user

    async def authenticate(self, email: str, password: str) -> User:
        user = self._by_email.get(email.lower())
        if user is None:
            raise AuthError("invalid email or password")
        key = (user.password_hash, hashlib.sha256(password.encode("utf-8", "surrogatepass")).digest())
        ok = self._verified.get(key)
        if ok is None:
            try:
                ok = await self._in_thread(self.crypt.verify, password, user.password_hash)
            except ValueError:  # e.g. longer than bcrypt's 72 bytes: it cannot be this user's password
                ok = False
            if len(self._verified) >= self._CACHE_LIMIT:
                self._verified.clear()
            self._verified[key] = ok
        if not ok:
            raise AuthError("invalid email or password")
        return user

    async def login(self, email: str, password: str) -> dict[str, Any]:
        user = await self.authenticate(email, password)
        self.ctx.event("login", id=user.id, email=user.email)
        return {**self.token_pair(user), "user": user.public()}

    # --- tokens ---

    def issue_token(self, user_id: str, kind: str = "access", ttl_s: float | None = None) -> str:
        """A fresh token of `kind` (access or refresh) for a user, living `ttl_s` seconds (default: the setting's);
        the panel's copy keys and the palette use it."""
        if ttl_s is not None and not (isinstance(ttl_s, (int, float)) and 0 < ttl_s <= MAX_TOKEN_TTL_S):
            raise Invalid(f"a token's lifetime is more than 0 and at most {MAX_TOKEN_TTL_S} seconds (ten years)")
        return self.tokens.issue(self.user(user_id), kind, timedelta(seconds=ttl_s) if ttl_s is not None else None)

    def token_pair(self, user: User, access_ttl: timedelta | None = None) -> dict[str, Any]:
        ttl = access_ttl or self.tokens.access_ttl
        return {
            "access_token": self.tokens.issue(user, "access", ttl),
            "refresh_token": self.tokens.issue(user, "refresh"),
            "token_type": "bearer",
            "expires_in": int(ttl.total_seconds()),
        }

    def _owner(self, token: str, kind: str) -> User:
        claims = self.tokens.decode(token, kind)
        user = self._by_id.get(claims["sub"])
        if user is None:
            raise AuthError("the token's user no longer exists")
        return user

    def refresh(self, refresh_token: str) -> dict[str, Any]:
        user = self._owner(refresh_token, "refresh")
        return {
            "access_token": self.tokens.issue(user, "access"),
            "refresh_token": refresh_token,
            "token_type": "bearer",
            "expires_in": int(self.tokens.access_ttl.total_seconds()),
        }

    def me(self, access_token: str) -> User:
        return self._owner(access_token, "access")


def _base(request: Request) -> str:
    """The URL a request came to, without its path: where the links of mails point unless public_url says otherwise."""
    return str(request.base_url).rstrip("/")


def _bearer(authorization: str | None, token: str | None) -> str:
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise AuthError("Authorization header must be 'Bearer <token>'")
        return value.strip()
    if token:
        return token
    raise AuthError("missing token: send 'Authorization: Bearer <token>' or ?token=")


def build(ctx: ServerContext) -> Built:
    accounts = Accounts(ctx)
    ctx.on_reset(accounts.reset)

    app = json_app(
        title="Auth API mock",
        description="Seed 000's auth service: JWTs compatible with the chat API when JWT_SECRET matches.",
        version="1.0.0",
    )

    def metrics() -> dict[str, Any]:
        return ctx.stats.as_dict()

    # First route: health checks are the most frequent request, and routes are matched in order.
    @app.get("/health", response_model=HealthResponse, summary="Health check with request metrics")
    async def health() -> dict[str, Any]:
        return {"status": "healthy", "service": SERVICE_NAME, "timestamp": iso(ctx.clock(), millis=False, zone=False), "metrics": metrics()}

    mail = AuthMail(ctx, accounts, ctx.smtp_peer) if ctx.settings["mail"] else None

    @app.post("/api/auth/register", status_code=201, response_model=UserOut, summary="Create a new user")
    async def register(body: RegisterRequest, request: Request) -> dict[str, str]:
        user = await accounts.register(str(body.email), body.password, body.name)
        if mail is not None:
            await mail.verification(user, _base(request))
        return user.public()

    if mail is not None:
        mail_routes(app, mail, accounts, _base)

    @app.post("/api/auth/login", response_model=TokenResponse, summary="Authenticate and get JWT tokens",
              responses={401: {"description": "Wrong email or password"}})
    async def login(body: LoginRequest) -> dict[str, Any]:
        return await accounts.login(body.email, body.password)

    @app.post("/api/auth/refresh", response_model=RefreshResponse, summary="Trade a refresh token for a new access token",
              responses={401: {"description": "Not a valid refresh token"}})
    async def refresh(body: RefreshRequest) -> dict[str, Any]:
        return accounts.refresh(body.refresh_token)

    @app.get("/api/auth/me", response_model=UserOut, summary="The current user (Bearer header or ?token=)",
             responses={401: {"description": "Missing or invalid access token"}})
    async def me(authorization: str | None = Header(None), token: str | None = Query(None, max_length=8192)) -> dict[str, str]:
        return accounts.me(_bearer(authorization, token)).public()

    @app.get("/api/auth/metrics", response_model=Metrics, summary="Request counts and error rate")
    async def get_metrics() -> dict[str, Any]:
        return metrics()

    @app.get("/api/auth/users", response_model=UsersResponse, summary="List all users (development)")
    async def list_users() -> dict[str, Any]:
        users = [u.public() for u in accounts.users()]
        return {"total": len(users), "users": users}

    @app.delete("/api/auth/users/reset", summary="Reset users to the seed data (development)")
    async def reset_users() -> dict[str, Any]:
        return {"status": "reset", "users": accounts.reset_users()}

    s = ctx.settings
    provider = OidcProvider(ctx.clock, s["oidc_algorithm"], s["oidc_token_lifetime_s"], accounts.users,
                            refresh_lifetime_s=s["oidc_refresh_lifetime_s"], keys_dir=s["oidc_keys_dir"],
                            issuer_override=s["oidc_issuer"], event=ctx.event)
    configure_oidc(provider, s)

    def reset_oidc() -> None:
        provider.reset()
        configure_oidc(provider, s)

    ctx.on_reset(reset_oidc)
    app.include_router(oidc_routes(provider))
    ctx.control_routers.append(oidc_control_routes(provider))
    accounts.oidc = provider  # the facade's way to the provider (panel, plugin)
    return Built(app, accounts)


SPEC = ServerSpec(name="auth", title="Auth API", default_port=8000, build=build, settings=SETTINGS,
                  admin_paths=(("DELETE", "/api/auth/users/reset"),))


def configure_oidc(provider: OidcProvider, s: Any) -> None:
    """What the settings declare (named issuers' algorithms, registered clients, extra claims): at start, and again
    after a reset. A setting that cannot be used stops the start with one line naming it."""
    def table(name: str) -> dict[str, Any]:
        value = s[name]
        if value in ((), []):
            return {}
        if not isinstance(value, dict) or not all(isinstance(v, dict) for v in value.values()):
            raise SettingsError(f"invalid setting auth.{name}: expected a table of tables, e.g. {{name = {{...}}}}")
        return value

    try:
        for name, issuer in table("oidc_issuers").items():
            found = provider.issuer(issuer_name(str(name)), create=True)
            if issuer.get("algorithm") not in (None, found.algorithm):
                provider.rotate(found, issuer["algorithm"])
        for client_id, client in table("oidc_clients").items():
            unknown = set(client) - {"secret", "redirect_uris", "post_logout_redirect_uris"}
            if unknown:
                raise Invalid(f"client {client_id}: unknown field(s) {', '.join(sorted(unknown))}")
            provider.register_client(str(client_id), client.get("secret"), client.get("redirect_uris", []), client.get("post_logout_redirect_uris", []))
        for user, claims in table("oidc_user_claims").items():
            provider.set_user_claims(str(user), claims)
        for client_id, claims in table("oidc_client_claims").items():
            provider.set_client_claims(str(client_id), claims)
    except DomainError as exc:
        raise SettingsError(f"invalid setting in [auth] oidc_*: {exc}") from None


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"
