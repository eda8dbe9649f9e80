"""The auth API mock of seed 000: register, login, refresh, me, users, metrics; HS256 JWTs a chat API accepts."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import jwt
from fastapi import FastAPI, Header, HTTPException, Query, Request
from passlib.context import CryptContext
from pydantic import BaseModel, EmailStr, Field, field_validator

from ..hub import ServerSpec
from ..service import ServerContext
from ..settings import Setting
from ..web import install_json_errors

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
)


def _now_iso() -> str:
    return datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0).isoformat()


class AuthError(Exception):
    """A request that cannot be authenticated; answered 401 with this message."""


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


@dataclass
class User:
    id: str
    email: str
    name: str
    created_at: str
    password_hash: str

    def public(self) -> dict[str, str]:
        return {"id": self.id, "email": self.email, "name": self.name, "created_at": self.created_at}


class TokenIssuer:
    """Issues and checks the HS* JWTs: claims sub, email, name, type, iat, exp, jti."""

    def __init__(self, secret: str, algorithm: str, access_hours: int, refresh_days: int) -> None:
        self.secret = secret
        self.algorithm = algorithm
        self.access_ttl = timedelta(hours=access_hours)
        self.refresh_ttl = timedelta(days=refresh_days)

    def issue(self, user: User, token_type: str = "access", ttl: timedelta | None = None) -> str:
        now = datetime.now(timezone.utc)
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
            claims = jwt.decode(token, self.secret, algorithms=[self.algorithm], options={"require": ["exp", "sub", "type"]})
        except jwt.ExpiredSignatureError:
            raise AuthError("token has expired") from None
        except jwt.InvalidSignatureError:
            raise AuthError("token signature is invalid (signed with another JWT_SECRET?)") from None
        except jwt.MissingRequiredClaimError as exc:
            raise AuthError(f"token lacks the {exc.claim!r} claim") from None
        except jwt.InvalidTokenError as exc:
            raise AuthError(f"token is invalid: {exc}") from None
        if claims.get("type") != expected_type:
            raise AuthError(f"a {expected_type} token is required here, got a {claims.get('type')!r} token")
        return claims


class UserStore:
    """Users by id and email, starting from the five seed users; verification results are cached."""

    _CACHE_LIMIT = 4096

    def __init__(self, ctx: ServerContext, default_password: str, rounds: int) -> None:
        self.ctx = ctx
        self.crypt = CryptContext(schemes=["bcrypt"], bcrypt__rounds=rounds)
        self.default_password = default_password
        self._seed_hash = self.crypt.hash(default_password)
        self.by_id: dict[str, User] = {}
        self.by_email: dict[str, User] = {}
        # bcrypt is slow by design; a mock re-verifying the same login thousands of times need not pay it again.
        self._verified: dict[tuple[str, bytes], bool] = {}
        self.reset()

    def reset(self) -> None:
        self.by_id.clear()
        self.by_email.clear()
        for user_id, email, name in SEED_USERS:
            self._add(User(user_id, email, name, SEED_CREATED_AT, self._seed_hash))

    def _add(self, user: User) -> None:
        self.by_id[user.id] = user
        self.by_email[user.email.lower()] = user

    def users(self) -> list[User]:
        return list(self.by_id.values())

    def register(self, email: str, password: str, name: str) -> User:
        if email.lower() in self.by_email:
            raise HTTPException(409, f"a user with email {email} already exists")
        user = User(str(uuid.uuid4()), email, name, _now_iso(), self.crypt.hash(password))
        self._add(user)
        self.ctx.event("user_registered", id=user.id, email=user.email, name=user.name)
        return user

    def authenticate(self, email: str, password: str) -> User | None:
        user = self.by_email.get(email.lower())
        if user is None:
            return None
        key = (user.password_hash, hashlib.sha256(password.encode("utf-8", "surrogatepass")).digest())
        ok = self._verified.get(key)
        if ok is None:
            try:
                ok = self.crypt.verify(password, user.password_hash)
            except ValueError:  # e.g. longer than bcrypt's 72 bytes: it cannot be this user's password
                ok = False
            if len(self._verified) >= self._CACHE_LIMIT:
                self._verified.clear()
            self._verified[key] = ok
        return user if ok else None


class AuthState:
    """What the panel and tests reach: the users and the token issuer."""

    def __init__(self, ctx: ServerContext) -> None:
        s = ctx.settings
        self.users = UserStore(ctx, s["default_password"], s["bcrypt_rounds"])
        self.tokens = TokenIssuer(s["jwt_secret"], s["jwt_algorithm"], s["jwt_expiry_hours"], s["jwt_refresh_expiry_days"])

    def token_pair(self, user: User, access_ttl: timedelta | None = None) -> dict[str, Any]:
        ttl = access_ttl or self.tokens.access_ttl
        return {
            "access_token": self.tokens.issue(user, "access", ttl),
            "refresh_token": self.tokens.issue(user, "refresh"),
            "token_type": "bearer",
            "expires_in": int(ttl.total_seconds()),
        }


def _bearer(authorization: str | None, token: str | None) -> str:
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise AuthError("Authorization header must be 'Bearer <token>'")
        return value.strip()
    if token:
        return token
    raise AuthError("missing token: send 'Authorization: Bearer <token>' or ?token=")


def build(ctx: ServerContext) -> FastAPI:
    state = AuthState(ctx)
    ctx.state = state
    ctx.on_reset(state.users.reset)

    app = FastAPI(
        title="Auth API mock",
        description="Seed 000's auth service: JWTs compatible with the chat API when JWT_SECRET matches.",
        version="1.0.0",
    )
    install_json_errors(app)

    @app.exception_handler(AuthError)
    async def _auth_error(request: Request, exc: AuthError):
        from fastapi.responses import JSONResponse

        return JSONResponse({"detail": str(exc)}, status_code=401, headers={"WWW-Authenticate": "Bearer"})

    def metrics() -> dict[str, Any]:
        return ctx.stats.as_dict()

    # First route: health checks are the most frequent request, and routes are matched in order.
    @app.get("/health", response_model=HealthResponse, summary="Health check with request metrics")
    async def health() -> dict[str, Any]:
        return {"status": "healthy", "service": SERVICE_NAME, "timestamp": _now_iso(), "metrics": metrics()}

    @app.post("/api/auth/register", status_code=201, response_model=UserOut, summary="Create a new user")
    async def register(body: RegisterRequest) -> dict[str, str]:
        return state.users.register(str(body.email), body.password, body.name).public()

    @app.post("/api/auth/login", response_model=TokenResponse, summary="Authenticate and get JWT tokens",
              responses={401: {"description": "Wrong email or password"}})
    async def login(body: LoginRequest) -> dict[str, Any]:
        user = state.users.authenticate(body.email, body.password)
        if user is None:
            raise AuthError("invalid email or password")
        ctx.event("login", id=user.id, email=user.email)
        return {**state.token_pair(user), "user": user.public()}

    @app.post("/api/auth/refresh", response_model=RefreshResponse, summary="Trade a refresh token for a new access token",
              responses={401: {"description": "Not a valid refresh token"}})
    async def refresh(body: RefreshRequest) -> dict[str, Any]:
        claims = state.tokens.decode(body.refresh_token, "refresh")
        user = state.users.by_id.get(claims["sub"])
        if user is None:
            raise AuthError("the token's user no longer exists")
        ttl = state.tokens.access_ttl
        return {
            "access_token": state.tokens.issue(user, "access"),
            "refresh_token": body.refresh_token,
            "token_type": "bearer",
            "expires_in": int(ttl.total_seconds()),
        }

    @app.get("/api/auth/me", response_model=UserOut, summary="The current user (Bearer header or ?token=)",
             responses={401: {"description": "Missing or invalid access token"}})
    async def me(authorization: str | None = Header(None), token: str | None = Query(None, max_length=8192)) -> dict[str, str]:
        claims = state.tokens.decode(_bearer(authorization, token), "access")
        user = state.users.by_id.get(claims["sub"])
        if user is None:
            raise AuthError("the token's user no longer exists")
        return user.public()

    @app.get("/api/auth/metrics", response_model=Metrics, summary="Request counts and error rate")
    async def get_metrics() -> dict[str, Any]:
        return metrics()

    @app.get("/api/auth/users", response_model=UsersResponse, summary="List all users (development)")
    async def list_users() -> dict[str, Any]:
        users = [u.public() for u in state.users.users()]
        return {"total": len(users), "users": users}

    @app.delete("/api/auth/users/reset", summary="Reset users to the seed data (development)")
    async def reset_users() -> dict[str, Any]:
        state.users.reset()
        ctx.event("users_reset")
        return {"status": "reset", "users": len(state.users.by_id)}

    return app


SPEC = ServerSpec(name="auth", title="Auth API", default_port=8000, build=build, settings=SETTINGS)
