"""The authorization code flow with PKCE, driven by a real relying-party library (authlib's OAuth2Client) and a real
browser (Chromium) through mockpanel's login page; the ID token checked with PyJWT against the JWKS."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx2
import jwt
import pytest
from authlib.common.security import generate_token
from authlib.integrations.httpx_client import OAuth2Client

from conftest import page_server
from mockpanel.testing import RunningHub, settings_for


@pytest.fixture(scope="module")
def auth():
    with RunningHub(settings_for(["auth"])) as running:
        yield running.urls["auth"]


@pytest.fixture
def callback():
    with page_server(b"<!doctype html><title>signed in</title><p>back at the app") as origin:
        yield f"{origin}/callback"


def test_code_flow_with_pkce_through_the_login_page(page, auth, callback):
    config = httpx2.get(f"{auth}/.well-known/openid-configuration").json()
    assert "S256" in config["code_challenge_methods_supported"]
    with OAuth2Client(client_id="web-app", redirect_uri=callback, scope="openid email profile", code_challenge_method="S256") as client:
        verifier, nonce = generate_token(48), generate_token(16)
        url, state = client.create_authorization_url(config["authorization_endpoint"], code_verifier=verifier, nonce=nonce)

        page.goto(url)
        page.fill("textarea[name=claims]", '{"role": "admin", "tenant": "acme"}')  # claims for this login only
        page.click("button.user:has-text('Alice Johnson')")
        page.wait_for_url(f"{callback}?*")
        returned = parse_qs(urlsplit(page.url).query)
        assert returned["state"] == [state]

        tokens = client.fetch_token(config["token_endpoint"], authorization_response=page.url, code_verifier=verifier)
        key = jwt.PyJWKClient(config["jwks_uri"]).get_signing_key_from_jwt(tokens["id_token"]).key
        id_token = jwt.decode(tokens["id_token"], key, algorithms=["RS256"], audience="web-app", issuer=config["issuer"])
        assert id_token["sub"] == "test-user-123" and id_token["email"] == "alice@example.com" and id_token["nonce"] == nonce
        assert id_token["role"] == "admin" and id_token["tenant"] == "acme" and id_token["azp"] == "web-app"
        assert client.get(config["userinfo_endpoint"]).json() == {"sub": "test-user-123", "email": "alice@example.com", "name": "Alice Johnson"}

    again = httpx2.post(config["token_endpoint"], data={"grant_type": "authorization_code", "code": returned["code"][0], "client_id": "web-app",
                                                       "redirect_uri": callback, "code_verifier": verifier})
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"  # a code is good once


def test_pkce_and_client_checks_and_prompt_none(auth, callback):
    config = httpx2.get(f"{auth}/.well-known/openid-configuration").json()
    verifier = generate_token(48)
    client = OAuth2Client(client_id="web-app", redirect_uri=callback, scope="openid", code_challenge_method="S256")

    def code(**extra) -> str:
        url, _ = client.create_authorization_url(config["authorization_endpoint"], code_verifier=verifier, prompt="none", **extra)
        answer = httpx2.get(url)
        assert answer.status_code == 302, answer.text
        return parse_qs(urlsplit(answer.headers["location"]).query)

    assert code()["error"] == ["login_required"]  # prompt=none and no hint: no silent login
    got = code(login_hint="bob@example.com")["code"][0]  # prompt=none with a hint: straight back with a code
    wrong = httpx2.post(config["token_endpoint"], data={"grant_type": "authorization_code", "code": got, "client_id": "web-app",
                                                       "redirect_uri": callback, "code_verifier": "not-the-verifier"})
    assert wrong.status_code == 400 and "PKCE" in wrong.json()["error_description"]
    other = code(login_hint="bob@example.com")["code"][0]
    stolen = httpx2.post(config["token_endpoint"], data={"grant_type": "authorization_code", "code": other, "client_id": "another-app",
                                                        "redirect_uri": callback, "code_verifier": verifier})
    assert stolen.status_code == 400 and "another client" in stolen.json()["error_description"]
    fine = code(login_hint="bob@example.com")["code"][0]
    tokens = httpx2.post(config["token_endpoint"], data={"grant_type": "authorization_code", "code": fine, "client_id": "web-app",
                                                        "redirect_uri": callback, "code_verifier": verifier}).json()
    assert jwt.decode(tokens["id_token"], options={"verify_signature": False})["email"] == "bob@example.com"
    bad = httpx2.get(f"{auth}/authorize", params={"response_type": "code", "client_id": "x", "redirect_uri": "javascript:alert(1)"})
    assert bad.status_code == 400
