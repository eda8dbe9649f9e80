"""The auth mock as an OpenID Connect / OAuth 2 provider (beside the seed's HS256 API, which stays as it is): discovery,
JWKS with rotation, the client credentials grant, and token faults a real provider only shows on a bad day.

Keys and signing are joserfc's (the JOSE half of authlib, by the same author: keys, JWS and JWT without a web
framework's server classes, which authlib ties to Flask and Django). This module is the glue: issuers, the fault
policy, the clock, the routes.
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import unquote

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from ..spec import Invalid, NotFound

ALGORITHMS = ("RS256", "PS256", "ES256", "EdDSA")
FAULT_FIELDS = {"expired": bool, "not_yet_valid": bool, "clock_skew_s": int, "audience": str, "issuer": str,
                "unknown_kid": bool, "foreign_key": bool, "alg": str}
MAX_ISSUERS = 100
MAX_KEYS = 10


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

    def __init__(self, clock: Callable[[], float], algorithm: str = "RS256", lifetime_s: int = 3600) -> None:
        self.clock = clock
        self.algorithm = algorithm
        self.lifetime_s = lifetime_s
        self.issuers: dict[str, Issuer] = {}

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

    def token(self, issuer: Issuer, issuer_url: str, client_id: str, scope: str, audience: str | None) -> dict[str, Any]:
        """An access token (JWT, typ at+jwt) for the client itself (client credentials), with the issuer's faults."""
        from joserfc import jwt

        faults = issuer.faults
        now = int(self.now(issuer)) + int(faults.get("clock_skew_s", 0))
        claims = {"iss": faults.get("issuer", issuer_url), "sub": client_id, "aud": faults.get("audience", audience or client_id),
                  "iat": now, "exp": now + self.lifetime_s, "client_id": client_id, "azp": client_id, "scope": scope,
                  "jti": secrets.token_hex(12)}
        if faults.get("expired"):
            claims["iat"], claims["exp"] = now - 2 * self.lifetime_s, now - self.lifetime_s
        if faults.get("not_yet_valid"):
            claims["nbf"] = now + self.lifetime_s
        published = issuer.signing_key()
        # foreign_key: the published key's kid, but another key's signature (the JWKS has the kid; the signature fails)
        key = _new_key(issuer.algorithm) if faults.get("foreign_key") else published
        header = {"alg": issuer.algorithm, "typ": "at+jwt", "kid": "unknown-" + secrets.token_hex(4) if faults.get("unknown_kid") else published.kid}
        token = jwt.encode(header, claims, key, algorithms=[issuer.algorithm])
        if faults.get("alg"):  # the header claims another algorithm than the one that signed
            head, rest = token.split(".", 1)
            import json

            changed = {**json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4))), "alg": faults["alg"]}
            token = base64.urlsafe_b64encode(json.dumps(changed, separators=(",", ":")).encode()).decode().rstrip("=") + "." + rest
        return {"access_token": token, "token_type": "Bearer", "expires_in": self.lifetime_s, "scope": scope}


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
                "grant_types_supported": ["client_credentials"], "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
                "id_token_signing_alg_values_supported": [issuer.algorithm], "response_types_supported": ["token"],
                "subject_types_supported": ["public"], "scopes_supported": ["openid", "profile", "email"]}

    async def token(request: Request, name: str) -> JSONResponse:
        form = await request.form()
        grant = form.get("grant_type")
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

