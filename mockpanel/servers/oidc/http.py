"""The provider's HTTP face, for the default issuer at the server's root and for named ones under /issuers/{name}:
discovery, JWKS, authorize (the login page), token (authorization code, refresh, client credentials, token exchange),
userinfo, introspect, revoke, logout. Every endpoint here is a thin call into OidcProvider."""

from __future__ import annotations

import base64
import json
from typing import Any, Awaitable, Callable
from urllib.parse import unquote, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse

from ...guard import cross_site
from ...spec import Invalid
from .pages import login_page, signed_out_page
from .provider import EXCHANGE, OAuthError, OidcProvider, check_claims, issuer_name

MAX_FORM_FIELDS = 50


def request_base(request: Request) -> str:
    """The URL a request came to, without its path: an issuer's base unless OIDC_ISSUER says otherwise."""
    return f"{request.url.scheme}://{request.headers.get('host', request.url.netloc)}"


def _oauth_error(exc: OAuthError) -> JSONResponse:
    headers = {"cache-control": "no-store"}
    if exc.status == 401:
        headers["www-authenticate"] = 'Basic realm="mockpanel"'
    return JSONResponse({"error": exc.error, "error_description": exc.description}, status_code=exc.status, headers=headers)


def _with_query(url: str, query: dict[str, str]) -> str:
    return f"{url}{'&' if '?' in url else '?'}{urlencode(query)}"


def _redirect_error(redirect_uri: str, params: dict[str, str], error: str, description: str) -> RedirectResponse:
    query = {"error": error, "error_description": description, **({"state": params["state"]} if params.get("state") else {})}
    return RedirectResponse(_with_query(redirect_uri, query), status_code=302)


async def _form(request: Request) -> dict[str, str]:
    form = await request.form(max_files=0, max_fields=MAX_FORM_FIELDS)
    return {k: str(v)[:16384] for k, v in form.items()}


def _client_credentials(form: dict[str, str], authorization: str) -> tuple[str | None, str | None]:
    """(client_id, secret) from Basic auth (RFC 6749 2.3.1: each part form-urlencoded) or from the form."""
    if authorization.lower().startswith("basic "):
        try:
            client_id, _, secret = base64.b64decode(authorization[6:], validate=True).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            raise OAuthError("invalid_client", "malformed Basic credentials", 401) from None
        return unquote(client_id), unquote(secret)
    return form.get("client_id"), form.get("client_secret")


# The login page signs a user in with one click: no other page may show it in a frame (clickjacking).
NO_FRAMING = {"content-security-policy": "frame-ancestors 'none'", "x-frame-options": "DENY"}


def routes(provider: OidcProvider) -> APIRouter:
    router = APIRouter()

    def url_of(request: Request, name: str) -> str:
        return provider.url(request_base(request), name)

    def both(method: str, path: str, summary: str, **kwargs: Any) -> Callable[[Callable[[Request, str], Awaitable[Any]]], Any]:
        """Route one handler at the default issuer's path and at /issuers/{name}/…"""
        def register(handler: Callable[[Request, str], Awaitable[Any]]) -> Any:
            async def default(request: Request) -> Any:
                return await handler(request, "")

            async def named(request: Request, name: str) -> Any:
                return await handler(request, issuer_name(name))

            router.add_api_route(path, default, methods=[method], summary=summary, name=f"oidc {handler.__name__}", **kwargs)
            router.add_api_route("/issuers/{name}" + path, named, methods=[method], summary=f"{summary} (a named issuer)",
                                 name=f"oidc {handler.__name__} (named issuer)", **kwargs)
            return handler
        return register

    @both("GET", "/.well-known/openid-configuration", "OpenID Connect discovery")
    async def discovery(request: Request, name: str) -> Any:
        issuer = provider.issuer(name)
        base = url_of(request, name)
        return {"issuer": base, "jwks_uri": f"{base}/jwks", "token_endpoint": f"{base}/oauth2/token",
                "authorization_endpoint": f"{base}/authorize", "userinfo_endpoint": f"{base}/userinfo",
                "introspection_endpoint": f"{base}/oauth2/introspect", "revocation_endpoint": f"{base}/oauth2/revoke",
                "end_session_endpoint": f"{base}/logout",
                "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials", EXCHANGE],
                "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
                "id_token_signing_alg_values_supported": [issuer.algorithm], "response_types_supported": ["code"],
                "code_challenge_methods_supported": ["S256", "plain"], "subject_types_supported": ["public"],
                "scopes_supported": ["openid", "profile", "email", "offline_access"],
                "claims_supported": ["sub", "email", "name", "auth_time", "nonce", "sid"]}

    @both("GET", "/jwks", "The issuer's signing keys (JWKS)")
    async def jwks(request: Request, name: str) -> Any:
        return provider.jwks(provider.issuer(name))

    page = {"response_class": HTMLResponse, "responses": {302: {"description": "back to the client's redirect URI"},
                                                          400: {"description": "a redirect URI the provider will not send a browser to",
                                                                "content": {"application/json": {}}}}}

    @both("GET", "/authorize", "Authorization endpoint: a login page listing the users (code flow, PKCE)", **page)
    async def authorize(request: Request, name: str) -> Any:
        issuer = provider.issuer(name)
        params = dict(request.query_params)
        redirect_uri = params.get("redirect_uri", "")
        try:
            provider.check_redirect(params.get("client_id", ""), redirect_uri)
        except OAuthError as exc:  # never redirect to a URI that is not the client's
            return _oauth_error(exc)
        if params.get("response_type") != "code":
            return _redirect_error(redirect_uri, params, "unsupported_response_type", "only response_type=code is supported")
        if not params.get("client_id"):
            return _redirect_error(redirect_uri, params, "invalid_request", "client_id is required")
        method = params.get("code_challenge_method", "plain" if params.get("code_challenge") else "")
        if method not in ("", "S256", "plain"):
            return _redirect_error(redirect_uri, params, "invalid_request", "code_challenge_method is S256 or plain")
        if params.get("prompt") == "none" and request.headers.get("sec-fetch-site") != "cross-site":
            user = provider.find_user(params.get("login_hint", ""))
            if user is None:
                return _redirect_error(redirect_uri, params, "login_required", "prompt=none needs a login_hint naming a user")
            return _code_redirect(params, provider.new_code(issuer, params, user, {}))
        return HTMLResponse(login_page(provider, params, name), headers=NO_FRAMING)

    @both("POST", "/authorize/login", "The login page's answer: a code for the redirect URI", include_in_schema=False)
    async def login(request: Request, name: str) -> Any:
        issuer = provider.issuer(name)
        why = _elsewhere(request, provider.issuer_override)
        if why:  # a page on another site posting the form would log the user in behind their back
            return JSONResponse({"error": "access_denied", "error_description": f"the login form takes posts from its own page only ({why})"},
                                status_code=403)
        form = await _form(request)
        try:
            provider.check_redirect(form.get("client_id", ""), form.get("redirect_uri", ""))
        except OAuthError as exc:
            return _oauth_error(exc)
        user = provider.find_user(form.get("user") or form.get("user_hint", ""))
        if user is None:
            return HTMLResponse(login_page(provider, form, name, error="no such user"), status_code=400, headers=NO_FRAMING)
        try:
            extra = check_claims(json.loads(form.get("claims") or "{}"), "the extra claims")
        except (ValueError, Invalid) as exc:
            return HTMLResponse(login_page(provider, form, name, error=f"the extra claims: {exc}"), status_code=400, headers=NO_FRAMING)
        return _code_redirect(form, provider.new_code(issuer, form, user, extra))

    @both("POST", "/oauth2/token", "Token endpoint: authorization_code, refresh_token, client_credentials, token exchange")
    async def token(request: Request, name: str) -> Any:
        issuer = provider.issuer(name)
        form = await _form(request)
        grant = form.get("grant_type", "")
        try:
            client_id = provider.authenticate(*_client_credentials(form, request.headers.get("authorization", "")))
            base = url_of(request, name)
            if grant == "authorization_code":
                body = provider.exchange_code(issuer, base, client_id, form)
            elif grant == "refresh_token":
                body = provider.refresh(issuer, base, client_id, form.get("refresh_token", ""))
            elif grant == "client_credentials":
                if provider.clients and provider.clients[client_id].secret is None:
                    raise OAuthError("unauthorized_client", "a public client (registered without a secret) cannot use client_credentials")
                audience = form.get("audience") or form.get("resource")
                body = provider.issue(issuer, base, client_id, form.get("scope", "")[:1024], audience[:256] if audience else None)
            elif grant == EXCHANGE:
                body = provider.exchange_token(issuer, base, client_id, form)
            else:
                raise OAuthError("unsupported_grant_type", f"grant_type {grant[:64]!r} is not supported: authorization_code, "
                                 "refresh_token, client_credentials or token exchange")
        except OAuthError as exc:
            return _oauth_error(exc)
        return JSONResponse(body, headers={"cache-control": "no-store"})

    @both("GET", "/userinfo", "The user an access token was issued to")
    async def userinfo(request: Request, name: str) -> Any:
        issuer = provider.issuer(name)
        token = request.headers.get("authorization", "")
        claims = provider.active_claims(issuer, token[7:]) if token.lower().startswith("bearer ") else None
        if claims is None:
            return JSONResponse({"error": "invalid_token", "error_description": "the access token is missing, invalid, expired or revoked"},
                                status_code=401, headers={"www-authenticate": 'Bearer error="invalid_token"'})
        user = provider.find_user(claims["sub"])
        info = {"sub": claims["sub"], **({"email": user.email, "name": user.name} if user is not None else {})}
        if user is not None:
            info.update(provider.user_claims.get(user.id, {}))
        return JSONResponse(info)

    @both("POST", "/oauth2/introspect", "Token introspection (RFC 7662)")
    async def introspect(request: Request, name: str) -> Any:
        issuer = provider.issuer(name)
        form = await _form(request)
        try:
            if provider.clients:  # open: anyone may ask; with registered clients, a registered client asks
                provider.authenticate(*_client_credentials(form, request.headers.get("authorization", "")))
        except OAuthError as exc:
            return _oauth_error(exc)
        return JSONResponse(provider.introspect(issuer, form.get("token", "")), headers={"cache-control": "no-store"})

    @both("POST", "/oauth2/revoke", "Token revocation (RFC 7009): a refresh token ends its session, an access token stops being active")
    async def revoke(request: Request, name: str) -> Any:
        issuer = provider.issuer(name)
        form = await _form(request)
        try:
            client_id, secret = _client_credentials(form, request.headers.get("authorization", ""))
            if provider.clients:
                client_id = provider.authenticate(client_id, secret)
            provider.revoke(issuer, form.get("token", ""), client_id[:256] if client_id else None)
        except OAuthError as exc:
            return _oauth_error(exc)
        return JSONResponse({}, headers={"cache-control": "no-store"})  # RFC 7009 2.2: 200 also for unknown tokens

    @both("GET", "/logout", "RP-initiated logout: ends the session of id_token_hint, back to post_logout_redirect_uri", **page)
    async def logout(request: Request, name: str) -> Any:
        issuer = provider.issuer(name)
        params = dict(request.query_params)
        session = provider.logout(issuer, params.get("id_token_hint", "")[:16384])
        target = params.get("post_logout_redirect_uri")
        if target:
            client_id = params.get("client_id") or (session.client_id if session else "")
            try:
                provider.check_redirect(client_id, target, logout=True)
            except OAuthError as exc:
                return _oauth_error(exc)
            return RedirectResponse(_with_query(target, {"state": params["state"]}) if params.get("state") else target, status_code=302)
        return HTMLResponse(signed_out_page(session.user.get("name") if session else None))

    return router


def _elsewhere(request: Request, issuer_override: str | None) -> str | None:
    """Why a request was sent by a page of another origin than this server's (or the configured issuer's), or None."""
    return cross_site(request.scope, ("/".join(issuer_override.split("/")[:3]),) if issuer_override else ())


def _code_redirect(params: dict[str, str], code: str) -> RedirectResponse:
    query = {"code": code, **({"state": params["state"]} if params.get("state") else {})}
    return RedirectResponse(_with_query(params.get("redirect_uri", ""), query), status_code=302)
