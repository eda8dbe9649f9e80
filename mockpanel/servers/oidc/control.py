"""/__mockpanel/oidc/…: what a test or the panel changes at runtime — keys, token faults, the clock, registered
clients, extra claims, revocation, tokens without a flow. `?issuer=NAME` picks a named issuer (default: the default)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from ...spec import Invalid, NotFound
from .http import request_base
from .provider import issuer_name
from .provider import OidcProvider, check_faults


def _number(body: Any, key: str) -> float | None:
    value = body.get(key) if isinstance(body, dict) else None
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def control_routes(provider: OidcProvider) -> APIRouter:
    from ...web import json_body

    router = APIRouter()

    def pick(issuer: str | None, create: bool = True):
        """The issuer a call names; a state-changing call may name a new one (it is made then), a read may not."""
        return provider.issuer(issuer_name(issuer) if issuer else "", create=create)

    async def json_object(request: Request, example: str) -> dict[str, Any]:
        body = await json_body(request)
        if not isinstance(body, dict):
            raise Invalid(f"send a JSON object, e.g. {example}")
        return body

    @router.get("/__mockpanel/oidc", summary="Issuers (algorithm, keys, faults, clock), registered clients, extra claims, sessions")
    async def overview() -> dict[str, Any]:
        return {"issuers": [{"name": i.label, "algorithm": i.algorithm, "kids": [k.kid for k in i.keys], "faults": i.faults,
                             "fixed_now": provider.fixed_now()} for i in provider.issuers.values()],
                "clients": [c.public() for c in provider.clients.values()], "enforced": bool(provider.clients),
                "user_claims": provider.user_claims, "client_claims": provider.client_claims,
                "sessions": sum(not s.revoked for s in provider.sessions.values())}

    @router.post("/__mockpanel/oidc/issuers", summary="Add a named issuer: {\"name\": NAME, \"algorithm\": RS256…} "
                 "(served at /issuers/NAME/…); an existing one is left as it is")
    async def add_issuer(request: Request) -> dict[str, Any]:
        body = await json_object(request, '{"name": "partner"}')
        name = body.get("name")
        if not isinstance(name, str) or not name:
            raise Invalid('send {"name": NAME} (1-64 letters, digits, "-", "_" or ".")')
        found = pick(name)
        if body.get("algorithm") not in (None, found.algorithm):
            provider.rotate(found, str(body["algorithm"]))
        return {"issuer": found.label, "algorithm": found.algorithm}

    @router.post("/__mockpanel/oidc/rotate", summary="Publish a new signing key (the old ones keep verifying until removed); "
                 "?algorithm= switches the issuer's algorithm")
    async def rotate(issuer: str | None = None, algorithm: str | None = None) -> dict[str, Any]:
        found = pick(issuer)
        kid = provider.rotate(found, algorithm)
        return {"issuer": found.label, "kid": kid, "algorithm": found.algorithm, "published": [k.kid for k in found.keys]}

    @router.delete("/__mockpanel/oidc/keys/retired", summary="Remove every key but the signing one from the JWKS")
    async def remove_retired(issuer: str | None = None) -> dict[str, Any]:
        found = pick(issuer)
        return {"issuer": found.label, "removed": provider.remove_retired(found), "published": [k.kid for k in found.keys]}

    @router.get("/__mockpanel/oidc/faults", summary="The token faults of an issuer")
    async def get_faults(issuer: str | None = None) -> dict[str, Any]:
        return pick(issuer, create=False).faults

    @router.patch("/__mockpanel/oidc/faults", summary="Change token faults: expired, not_yet_valid, clock_skew_s, audience, issuer, "
                  "unknown_kid, foreign_key, alg, rotate_on_fetch")
    async def patch_faults(request: Request, issuer: str | None = None) -> dict[str, Any]:
        return provider.set_faults(pick(issuer), check_faults(await json_object(request, '{"expired": true}')))

    @router.delete("/__mockpanel/oidc/faults", summary="Every token fault off")
    async def clear_faults(issuer: str | None = None) -> dict[str, Any]:
        return provider.set_faults(pick(issuer), {}, replace=True)

    @router.put("/__mockpanel/oidc/clock", summary="Freeze the mocks' clock (every server's: /__mockpanel/clock) at {\"now\": epoch seconds} or "
                "{\"advance_s\": N} from where it is")
    async def set_clock(request: Request, issuer: str | None = None) -> dict[str, Any]:
        found = pick(issuer)
        body = await json_body(request)
        now, advance = _number(body, "now"), _number(body, "advance_s")
        if now is None and advance is None:
            raise Invalid("send {\"now\": epoch seconds} or {\"advance_s\": seconds}")
        return {"issuer": found.label, "now": provider.set_clock(found, now, advance)}

    @router.delete("/__mockpanel/oidc/clock", summary="The mocks' clock back to the wall clock")
    async def real_clock(issuer: str | None = None) -> dict[str, Any]:
        found = pick(issuer)
        return {"issuer": found.label, "now": provider.set_clock(found, None)}

    @router.get("/__mockpanel/oidc/clients", summary="Registered clients (none: any client_id works)")
    async def clients() -> list[dict[str, Any]]:
        return [c.public() for c in provider.clients.values()]

    @router.put("/__mockpanel/oidc/clients/{client_id}", summary="Register a client: {secret, redirect_uris, post_logout_redirect_uris}. "
                "From then on only registered clients get tokens, and only to their own redirect URIs")
    async def register(client_id: str, request: Request) -> dict[str, Any]:
        body = await json_object(request, '{"secret": "s3cret", "redirect_uris": ["http://localhost:3000/callback"]}')
        unknown = set(body) - {"secret", "redirect_uris", "post_logout_redirect_uris"}
        if unknown:
            raise Invalid(f"unknown field(s) {', '.join(sorted(unknown))[:200]}: secret, redirect_uris, post_logout_redirect_uris")
        return provider.register_client(client_id, body.get("secret"), body.get("redirect_uris", []),
                                        body.get("post_logout_redirect_uris", [])).public()

    @router.delete("/__mockpanel/oidc/clients/{client_id}", summary="Forget a registered client")
    async def unregister(client_id: str) -> dict[str, Any]:
        provider.remove_client(client_id)
        return {"removed": client_id, "enforced": bool(provider.clients)}

    @router.get("/__mockpanel/oidc/claims/users/{user}", summary="Extra claims in every token of a user (id or e-mail)")
    async def user_claims(user: str) -> dict[str, Any]:
        found = provider.find_user(user)
        if found is None:
            raise NotFound(f"no user with id or e-mail {user!r}"[:200])
        return provider.user_claims.get(found.id, {})

    @router.put("/__mockpanel/oidc/claims/users/{user}", summary="Set a user's extra claims (a JSON object; {} clears)")
    async def set_user_claims(user: str, request: Request) -> dict[str, Any]:
        return provider.set_user_claims(user, await json_object(request, '{"role": "admin"}'))

    @router.get("/__mockpanel/oidc/claims/clients/{client_id}", summary="Extra claims in every token issued to a client")
    async def client_claims(client_id: str) -> dict[str, Any]:
        return provider.client_claims.get(client_id, {})

    @router.put("/__mockpanel/oidc/claims/clients/{client_id}", summary="Set a client's extra claims (a JSON object; {} clears)")
    async def set_client_claims(client_id: str, request: Request) -> dict[str, Any]:
        return provider.set_client_claims(client_id, await json_object(request, '{"tenant": "acme"}'))

    @router.post("/__mockpanel/oidc/revoke", summary="End every session of a user now (?user=ID or e-mail): refresh tokens fail, "
                 "access tokens are inactive at userinfo and introspection")
    async def revoke_user(user: str, issuer: str | None = None) -> dict[str, Any]:
        return {"user": user, "sessions_ended": provider.revoke_user(pick(issuer) if issuer else None, user)}

    @router.post("/__mockpanel/oidc/tokens", summary="Tokens without a flow: {\"user\": id or e-mail (left out: the client's own), "
                 "\"client_id\", \"scope\", \"audience\"}")
    async def tokens(request: Request, issuer: str | None = None) -> dict[str, Any]:
        body = await json_object(request, '{"user": "alice@example.com", "client_id": "web-app"}')
        unknown = set(body) - {"user", "client_id", "scope", "audience"}
        if unknown or not all(isinstance(body.get(k, ""), str) for k in ("user", "client_id", "scope", "audience")):
            raise Invalid("fields are strings: user, client_id, scope, audience")
        found = pick(issuer)
        return provider.token_for(found, provider.url(request_base(request), found.name), body.get("user"), body.get("client_id") or "mockpanel",
                                  body.get("scope") or "openid profile email", body.get("audience"))

    return router
