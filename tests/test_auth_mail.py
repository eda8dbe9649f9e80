"""Across services (auth.mail = true, beyond the seed): register → the verification mail arrives at the mail server →
its link verifies, in a real browser; forgot-password → the mailed token → reset-password → the new password logs in.
With it off, the seed's answers are as before."""

from __future__ import annotations

import re

import httpx2
import pytest

from mockpanel.testing import Mocks, settings_for


@pytest.fixture
def mocks():
    with Mocks(settings_for(["auth", "mail"], {"auth": {"mail": "true"}, "mail": {"smtp_port": "0"}})) as running:
        yield running


def test_register_mails_a_link_that_verifies_in_a_browser(mocks, page):
    auth = mocks.urls["auth"]
    traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    created = httpx2.post(f"{auth}/api/auth/register", json={"email": "ada@example.com", "password": "password123", "name": "Ada"},
                          headers={"traceparent": traceparent})
    assert created.status_code == 201 and set(created.json()) == {"id", "email", "name", "created_at"}  # the seed's answer
    message = mocks.mail.wait_for(to="ada@example.com", subject="Verify your email address")
    assert message["From"]["Address"] == "noreply@mockpanel.localhost"
    link = next(link for link in mocks.mail.links(message) if "/api/auth/verify-email?token=" in link)
    assert link.startswith(auth)
    page.goto(link)
    assert page.locator("h1").inner_text() == "Email verified" and "ada@example.com" in page.content()
    again = httpx2.get(link)  # a link works once
    assert again.status_code == 422 and "already used" in again.json()["detail"]
    # the mail joined the trace of the register request that sent it
    hops = mocks.trace("0af7651916cd43dd8448eb211c80319c")
    assert [(h.server, h.method) for h in hops] == [("auth", "POST"), ("mail", "SMTP")]


def test_forgot_and_reset_password_through_the_mailed_token(mocks):
    auth = mocks.urls["auth"]
    unknown = httpx2.post(f"{auth}/api/auth/forgot-password", json={"email": "nobody@example.com"})
    known = httpx2.post(f"{auth}/api/auth/forgot-password", json={"email": "alice@example.com"})
    assert unknown.json() == known.json()  # the same answer: no address is revealed
    message = mocks.mail.wait_for(to="alice@example.com", subject="Reset your password")
    token = re.search(r"reset code is (\S+)", message["Text"]).group(1)
    assert mocks.mail.messages("to:nobody@example.com") == []
    reset = httpx2.post(f"{auth}/api/auth/reset-password", json={"token": token, "password": "new-password-1"})
    assert reset.status_code == 200
    assert httpx2.post(f"{auth}/api/auth/login", json={"email": "alice@example.com", "password": "new-password-1"}).status_code == 200
    assert httpx2.post(f"{auth}/api/auth/login", json={"email": "alice@example.com", "password": "password123"}).status_code == 401
    reused = httpx2.post(f"{auth}/api/auth/reset-password", json={"token": token, "password": "another-pass"})
    assert reused.status_code == 422 and "already used" in reused.json()["detail"]


def test_a_mailed_token_expires_by_the_mocks_clock(mocks):
    auth = mocks.urls["auth"]
    httpx2.post(f"{auth}/api/auth/forgot-password", json={"email": "bob@example.com"}).raise_for_status()
    token = re.search(r"reset code is (\S+)", mocks.mail.wait_for(to="bob@example.com")["Text"]).group(1)
    mocks.clock.advance(hours=1, seconds=1)
    late = httpx2.post(f"{auth}/api/auth/reset-password", json={"token": token, "password": "new-password-1"})
    assert late.status_code == 422 and "expired" in late.json()["detail"]


@pytest.mark.parametrize("body", [{"token": "x" * 500, "password": "new-password-1"}, {"token": "short", "password": "p"},
                                  {"email": "not-an-address"}, {}])
def test_hostile_values_get_a_json_422(mocks, body):
    auth = mocks.urls["auth"]
    path = "/api/auth/forgot-password" if "email" in body or not body else "/api/auth/reset-password"
    answer = httpx2.post(auth + path, json=body)
    assert answer.status_code == 422 and answer.headers["content-type"].startswith("application/json")


def test_off_by_default_the_seed_answers_as_before():
    with Mocks(settings_for(["auth", "mail"], {"mail": {"smtp_port": "0"}})) as running:
        auth = running.urls["auth"]
        assert httpx2.post(f"{auth}/api/auth/register", json={"email": "eve@example.com", "password": "password123",
                                                              "name": "Eve"}).status_code == 201
        assert httpx2.post(f"{auth}/api/auth/forgot-password", json={"email": "eve@example.com"}).status_code == 404
        assert running.mail.messages() == []  # nothing was sent
