"""The OIDC provider's edges, as a client that reads the RFCs literally (or an attacker) meets them: exchanged tokens
belong to the subject's session, an ID token is no access token, extra claims cannot change who a token is for, a
reused code revokes what it granted, a client revokes only its own tokens, a public client gets no client token, the
login page cannot be framed. Driven over HTTP against the live server; tokens read with PyJWT."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx2
import jwt
from test_oidc_sessions import CALLBACK, auth, discover, hub, introspect, login  # noqa: F401 - fixtures

EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS = "urn:ietf:params:oauth:token-type:access_token"


def exchange(config: dict, token: str, token_type: str = ACCESS) -> httpx2.Response:
    return httpx2.post(config["token_endpoint"], data={"grant_type": EXCHANGE, "client_id": "gateway", "subject_token": token,
                                                      "subject_token_type": token_type, "audience": "orders"})


def userinfo(config: dict, token: str) -> httpx2.Response:
    return httpx2.get(config["userinfo_endpoint"], headers={"authorization": f"Bearer {token}"})


def test_an_exchanged_token_ends_with_its_subjects_session(auth):
    config = discover(auth)
    tokens = login(config)
    exchanged = exchange(config, tokens["access_token"]).json()["access_token"]
    assert jwt.decode(exchanged, options={"verify_signature": False})["sid"] == jwt.decode(tokens["id_token"], options={"verify_signature": False})["sid"]
    assert introspect(config, exchanged)["active"] is True
    httpx2.get(config["end_session_endpoint"], params={"id_token_hint": tokens["id_token"]})  # the user logs out
    assert introspect(config, exchanged)["active"] is False
    assert exchange(config, exchanged).status_code == 400  # and it cannot be exchanged again to live on
    # the same through the control API's revocation of a user
    tokens = login(config)
    again = exchange(config, tokens["access_token"]).json()["access_token"]
    httpx2.post(f"{auth}/__mockpanel/oidc/revoke", params={"user": "alice@example.com"}).raise_for_status()
    assert introspect(config, again)["active"] is False and userinfo(config, again).status_code == 401


def test_an_id_token_is_not_an_access_token(auth):
    config = discover(auth)
    tokens = login(config)
    assert userinfo(config, tokens["access_token"]).status_code == 200
    refused = userinfo(config, tokens["id_token"])
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_token"
    assert introspect(config, tokens["id_token"]) == {"active": False}
    assert exchange(config, tokens["id_token"], ACCESS).status_code == 400  # said to be an access token: it is not
    assert exchange(config, tokens["id_token"], "urn:ietf:params:oauth:token-type:id_token").status_code == 200  # said as it is


def test_extra_claims_cannot_change_subject_audience_or_actor(auth):
    config = discover(auth)
    for claim in ("sub", "aud", "act", "azp", "client_id", "scope"):
        r = httpx2.put(f"{auth}/__mockpanel/oidc/claims/users/alice@example.com", json={claim: "someone-else", "role": "x"})
        assert r.status_code == 422 and claim in r.json()["detail"], claim
    answer = httpx2.get(config["authorization_endpoint"], params={"response_type": "code", "client_id": "web-app", "redirect_uri": CALLBACK})
    form = {"client_id": "web-app", "redirect_uri": CALLBACK, "user": "alice@example.com", "scope": "openid",
            "claims": '{"sub": "admin", "aud": "billing", "act": {"sub": "root"}}'}
    page = httpx2.post(f"{auth}/authorize/login", data=form, headers={"origin": auth})
    assert answer.status_code == 200 and page.status_code == 400 and "sub" in page.text  # the login page says why
    # a client named like a user gets a client's token, not that user's subject or claims
    httpx2.put(f"{auth}/__mockpanel/oidc/claims/users/test-user-123", json={"role": "admin"}).raise_for_status()
    token = httpx2.post(config["token_endpoint"], data={"grant_type": "client_credentials", "client_id": "test-user-123"}).json()["access_token"]
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["sub"] == "test-user-123" and "role" not in claims and "email" not in claims


def test_a_reused_code_revokes_the_tokens_it_granted(auth):
    config = discover(auth)
    answer = httpx2.get(config["authorization_endpoint"], params={"response_type": "code", "client_id": "web-app", "redirect_uri": CALLBACK,
                                                                 "scope": "openid", "prompt": "none", "login_hint": "alice@example.com"})
    code = parse_qs(urlsplit(answer.headers["location"]).query)["code"][0]
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK, "client_id": "web-app"}
    first = httpx2.post(config["token_endpoint"], data=form).json()
    assert introspect(config, first["access_token"])["active"] is True
    second = httpx2.post(config["token_endpoint"], data=form)
    assert second.status_code == 400 and second.json()["error"] == "invalid_grant"
    assert introspect(config, first["access_token"])["active"] is False
    assert introspect(config, first["refresh_token"])["active"] is False


def test_a_client_revokes_only_its_own_tokens_and_a_public_client_gets_no_client_token(auth):
    config = discover(auth)
    tokens = login(config, client_id="web-app")
    other = httpx2.post(config["revocation_endpoint"], data={"token": tokens["refresh_token"], "client_id": "intruder"})
    assert other.status_code == 400 and other.json()["error"] == "unauthorized_client"
    assert introspect(config, tokens["refresh_token"])["active"] is True
    assert httpx2.post(config["revocation_endpoint"], data={"token": tokens["access_token"], "client_id": "intruder"}).status_code == 400
    assert introspect(config, tokens["access_token"])["active"] is True
    assert httpx2.post(config["revocation_endpoint"], data={"token": tokens["refresh_token"], "client_id": "web-app"}).status_code == 200
    assert introspect(config, tokens["refresh_token"])["active"] is False

    httpx2.put(f"{auth}/__mockpanel/oidc/clients/spa", json={"redirect_uris": [CALLBACK]}).raise_for_status()  # public: no secret
    httpx2.put(f"{auth}/__mockpanel/oidc/clients/worker", json={"secret": "s3cret", "redirect_uris": []}).raise_for_status()
    public = httpx2.post(config["token_endpoint"], data={"grant_type": "client_credentials", "client_id": "spa"})
    assert public.status_code == 400 and public.json()["error"] == "unauthorized_client"
    confidential = httpx2.post(config["token_endpoint"], data={"grant_type": "client_credentials", "client_id": "worker", "client_secret": "s3cret"})
    assert confidential.status_code == 200


def test_the_login_page_cannot_be_framed(auth, page):
    config = discover(auth)
    login_url = httpx2.URL(config["authorization_endpoint"], params={"response_type": "code", "client_id": "web-app", "redirect_uri": CALLBACK})
    shown = httpx2.get(login_url)
    assert shown.headers["content-security-policy"] == "frame-ancestors 'none'" and shown.headers["x-frame-options"] == "DENY"
    page.route("http://evil.example/", lambda route: route.fulfill(status=200, content_type="text/html",
                                                                      body=f'<iframe id="f" src="{login_url}"></iframe>'))
    page.goto("http://evil.example/")
    frame = page.wait_for_selector("#f").content_frame()
    page.wait_for_load_state("load")
    assert frame is None or "alice" not in (frame.content() or "").lower()  # Chromium shows nothing of the login page
