"""A page on another site cannot log the user in behind their back: the login form only takes posts from its own
page, and a silent login (prompt=none) from another site shows the login page instead of handing out a code."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx2
import pytest

from mockpanel.testing import RunningHub, settings_for

CALLBACK = "http://evil.example/steal"


@pytest.fixture(scope="module")
def auth():
    with RunningHub(settings_for(["auth"])) as running:
        yield running.urls["auth"]


def login_form(**extra: str) -> dict:
    return {"response_type": "code", "client_id": "web-app", "redirect_uri": CALLBACK, "scope": "openid", "user": "test-user-123", **extra}


@pytest.mark.parametrize("headers", [{"origin": "http://evil.example"}, {"origin": "null"}, {"sec-fetch-site": "cross-site"}])
def test_the_login_form_refuses_posts_from_another_site(auth, headers):
    answer = httpx2.post(f"{auth}/authorize/login", data=login_form(), headers=headers)
    assert answer.status_code == 403 and answer.json()["error"] == "access_denied"
    assert "location" not in answer.headers


def test_the_login_form_takes_its_own_pages_post(auth):
    answer = httpx2.post(f"{auth}/authorize/login", data=login_form(), headers={"origin": auth, "sec-fetch-site": "same-origin"})
    assert answer.status_code == 302 and "code" in parse_qs(urlsplit(answer.headers["location"]).query)


def test_a_silent_login_from_another_site_shows_the_login_page(auth):
    params = {"response_type": "code", "client_id": "web-app", "redirect_uri": CALLBACK, "prompt": "none", "login_hint": "alice@example.com"}
    elsewhere = httpx2.get(f"{auth}/authorize", params=params, headers={"sec-fetch-site": "cross-site"})
    assert elsewhere.status_code == 200 and "Sign in" in elsewhere.text and "location" not in elsewhere.headers
    same_site = httpx2.get(f"{auth}/authorize", params=params, headers={"sec-fetch-site": "same-site"})  # localhost:5000 -> :8000
    assert same_site.status_code == 302 and "code=" in same_site.headers["location"]


def test_a_get_makes_no_issuer_and_the_default_one_always_answers():
    """An <img> list on any page sends GETs: each once made an issuer (an RSA key on the shared loop), and after 100
    the default issuer itself answered 422, even after a reset."""
    with RunningHub(settings_for(["auth"])) as running:
        auth = running.urls["auth"]
        for n in range(120):
            r = httpx2.get(f"{auth}/issuers/img-{n}/jwks")
            assert r.status_code == 404 and "oidc_issuers" in r.json()["detail"]
        assert [i["name"] for i in httpx2.get(f"{auth}/__mockpanel/oidc").json()["issuers"]] == ["default"]
        httpx2.post(f"{auth}/__mockpanel/reset").raise_for_status()
        config = httpx2.get(f"{auth}/.well-known/openid-configuration")
        assert config.status_code == 200
        assert httpx2.get(config.json()["jwks_uri"]).json()["keys"]
