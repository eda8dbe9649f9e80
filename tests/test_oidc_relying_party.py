"""A real relying party: a Starlette app using authlib's OAuth client (server metadata from discovery, PKCE, ID token
and nonce checked by authlib against the JWKS) signs a user in through mockpanel's login page in Chromium, reads
userinfo, refreshes, and logs out (RP-initiated); after the logout its refresh token no longer works."""

from __future__ import annotations

import httpx2
import pytest
from authlib.integrations.starlette_client import OAuth
from starlette.applications import Starlette
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse
from starlette.routing import Route

from conftest import serving
from mockpanel.testing import RunningHub, settings_for


def shop_app(issuer: str) -> Starlette:
    """What a user's web app does with authlib: nothing here knows it talks to a mock."""
    oauth = OAuth()
    oauth.register("idp", server_metadata_url=f"{issuer}/.well-known/openid-configuration", client_id="shop", client_secret="shop-secret",
                   client_kwargs={"scope": "openid email profile", "code_challenge_method": "S256"})
    tokens: dict[str, dict] = {}  # server-side session store: JWTs are too big for a cookie

    async def login(request: Request):
        return await oauth.idp.authorize_redirect(request, str(request.url_for("callback")))

    async def callback(request: Request):
        token = await oauth.idp.authorize_access_token(request)  # checks the ID token's signature, iss, aud, nonce
        request.session["id"] = sid = token["userinfo"]["sid"]
        tokens[sid] = token
        info = await oauth.idp.userinfo(token=token)
        return HTMLResponse(f"<h1 id=hello>Hello {info['name']} ({info['email']})</h1>")

    async def refresh(request: Request):
        token = tokens[request.session["id"]]
        new = await oauth.idp.fetch_access_token(grant_type="refresh_token", refresh_token=token["refresh_token"])
        tokens[request.session["id"]] = {**token, **new}
        return JSONResponse({"rotated": new["refresh_token"] != token["refresh_token"], "old": token["refresh_token"], "new": new["refresh_token"]})

    async def logout(request: Request):
        metadata = await oauth.idp.load_server_metadata()
        token = tokens[request.session.pop("id")]
        back = str(request.url_for("goodbye"))
        url = httpx2.URL(metadata["end_session_endpoint"], params={"id_token_hint": token["id_token"], "post_logout_redirect_uri": back})
        return RedirectResponse(str(url))

    async def goodbye(request: Request):
        return HTMLResponse("<h1 id=bye>Signed out of the shop</h1>")

    app = Starlette(routes=[Route("/login", login), Route("/callback", callback, name="callback"), Route("/refresh", refresh),
                            Route("/logout", logout), Route("/goodbye", goodbye, name="goodbye")])
    app.add_middleware(SessionMiddleware, secret_key="test-only")
    return app


@pytest.fixture(scope="module")
def auth():
    with RunningHub(settings_for(["auth"])) as running:
        yield running.urls["auth"]


def test_a_starlette_app_with_authlib_signs_in_refreshes_and_logs_out(page, auth):
    with serving(shop_app(auth)) as shop:
        httpx2.put(f"{auth}/__mockpanel/oidc/clients/shop", json={"secret": "shop-secret", "redirect_uris": [f"{shop}/callback"],
                                                               "post_logout_redirect_uris": [f"{shop}/goodbye"]}).raise_for_status()
        page.goto(f"{shop}/login")
        page.click("button.user:has-text('Bob Smith')")
        page.wait_for_selector("#hello")
        assert page.inner_text("#hello") == "Hello Bob Smith (bob@example.com)"

        page.goto(f"{shop}/refresh")
        rotated = page.evaluate("JSON.parse(document.body.innerText)")
        assert rotated["rotated"] is True

        page.goto(f"{shop}/logout")
        page.wait_for_selector("#bye")
        assert page.url == f"{shop}/goodbye"
        after = httpx2.post(f"{auth}/oauth2/token", data={"grant_type": "refresh_token", "refresh_token": rotated["new"]},
                           auth=("shop", "shop-secret"))
        assert after.status_code == 400 and after.json()["error"] == "invalid_grant"  # the logout ended the session
