"""The auth API mock through HTTP: every example of seed 000, tokens checked with PyJWT, bad input."""

from __future__ import annotations

import base64
import json
import time

import httpx2
import jwt
import pytest

from conftest import SEED_SECRET

SEED_USERS = {
    "alice@example.com": ("test-user-123", "Alice Johnson"),
    "bob@example.com": ("test-user-456", "Bob Smith"),
    "charlie@example.com": ("test-user-789", "Charlie Brown"),
    "diana@example.com": ("test-user-abc", "Diana Prince"),
    "ethan@example.com": ("test-user-def", "Ethan Hunt"),
}


def login(client, email="alice@example.com", password="password123"):
    return client.post("/api/auth/login", json={"email": email, "password": password})


def test_register_as_in_seed(client):
    r = client.post(
        "/api/auth/register",
        headers={"Content-Type": "application/json"},
        content='{\n    "email": "newuser@example.com",\n    "password": "securepass123",\n    "name": "New User"\n  }',
    )
    assert r.status_code == 201
    body = r.json()
    assert set(body) == {"id", "email", "name", "created_at"}
    assert body["email"] == "newuser@example.com" and body["name"] == "New User"
    assert len(body["id"]) == 36  # a UUID as in the seed's example
    # The new user can log in and appears in the users list.
    assert login(client, "newuser@example.com", "securepass123").status_code == 200
    emails = [u["email"] for u in client.get("/api/auth/users").json()["users"]]
    assert "newuser@example.com" in emails


def test_register_taken_email_is_409(client):
    r = client.post("/api/auth/register", json={"email": "Alice@example.com", "password": "password123", "name": "A"})
    assert r.status_code == 409
    assert "already exists" in r.json()["detail"]


@pytest.mark.parametrize(
    "body,field",
    [
        ({"email": "not-an-email", "password": "securepass123", "name": "X"}, "email"),
        ({"email": "x@example.com", "password": "short", "name": "X"}, "password"),
        ({"email": "x@example.com", "password": "é" * 40, "name": "X"}, "password"),  # 80 bytes: over bcrypt's 72
        ({"email": "x@example.com", "name": "X"}, "password"),
        ({"email": 5, "password": "securepass123", "name": "X"}, "email"),
    ],
)
def test_register_bad_input_is_422_naming_the_field(client, body, field):
    r = client.post("/api/auth/register", json=body)
    assert r.status_code == 422
    assert any(field in d["loc"] for d in r.json()["detail"])


@pytest.mark.parametrize("email", list(SEED_USERS))
def test_login_every_seed_user(client, email):
    r = login(client, email)
    assert r.status_code == 200
    body = r.json()
    user_id, name = SEED_USERS[email]
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 86400
    assert body["user"] == {"id": user_id, "email": email, "name": name, "created_at": "2024-01-01T00:00:00"}
    # The chat API checks tokens with PyJWT and the same secret.
    claims = jwt.decode(body["access_token"], SEED_SECRET, algorithms=["HS256"])
    assert claims["sub"] == user_id and claims["email"] == email and claims["name"] == name
    assert claims["type"] == "access"
    assert claims["exp"] - claims["iat"] == 24 * 3600
    assert claims["jti"]
    refresh = jwt.decode(body["refresh_token"], SEED_SECRET, algorithms=["HS256"])
    assert refresh["type"] == "refresh" and refresh["exp"] - refresh["iat"] == 30 * 86400


def test_login_wrong_password_and_unknown_user_are_401(client):
    assert login(client, password="wrong-password").status_code == 401
    r = login(client, email="nobody@example.com")
    assert r.status_code == 401
    assert r.json() == {"detail": "invalid email or password"}


def test_me_with_header_and_query_token_as_in_seed(client):
    token = login(client).json()["access_token"]
    # The seed's example sends both the header and ?token=.
    r = client.get(f"/api/auth/me?token={token}", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200 and r.json()["id"] == "test-user-123"
    assert client.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"}).json()["email"] == "alice@example.com"
    assert client.get("/api/auth/me", params={"token": token}).json()["name"] == "Alice Johnson"


def test_refresh_gives_a_new_access_token(client):
    tokens = login(client).json()
    r = client.post("/api/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert r.status_code == 200
    new = r.json()["access_token"]
    assert new != tokens["access_token"]
    assert jwt.decode(new, SEED_SECRET, algorithms=["HS256"])["type"] == "access"
    assert client.get("/api/auth/me", headers={"Authorization": f"Bearer {new}"}).status_code == 200


def test_refresh_with_an_access_token_is_401(client):
    access = login(client).json()["access_token"]
    r = client.post("/api/auth/refresh", json={"refresh_token": access})
    assert r.status_code == 401
    assert "refresh token is required" in r.json()["detail"]


def test_me_with_a_refresh_token_is_401(client):
    refresh = login(client).json()["refresh_token"]
    r = client.get("/api/auth/me", headers={"Authorization": f"Bearer {refresh}"})
    assert r.status_code == 401 and "access token is required" in r.json()["detail"]


def _unsigned(claims: dict) -> str:
    enc = lambda d: base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()
    return f"{enc({'alg': 'none', 'typ': 'JWT'})}.{enc(claims)}."


@pytest.mark.parametrize(
    "make_token,reason",
    [
        (lambda: jwt.encode({"sub": "test-user-123", "type": "access", "exp": int(time.time()) + 60}, "another-secret-of-another-service-xyz", algorithm="HS256"), "signature is invalid"),
        (lambda: _unsigned({"sub": "test-user-123", "type": "access", "exp": int(time.time()) + 60}), "algorithm 'none' is not accepted"),
        (lambda: jwt.encode({"sub": "test-user-123", "type": "access", "exp": int(time.time()) - 10}, SEED_SECRET, algorithm="HS256"), "expired"),
        (lambda: "garbage", "malformed"),
        (lambda: jwt.encode({"sub": "test-user-123", "exp": int(time.time()) + 60}, SEED_SECRET, algorithm="HS256"), "'type' claim"),
    ],
)
def test_bad_tokens_are_refused_with_a_reason(client, make_token, reason):
    r = client.get("/api/auth/me", headers={"Authorization": f"Bearer {make_token()}"})
    assert r.status_code == 401
    assert reason in r.json()["detail"]
    assert r.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize("header", ["Basic dXNlcjpwYXNz", "Bearer", "\u00ff\u00fe garbage", "Token abc"])
def test_garbage_authorization_header_is_401(client, header):
    r = client.get("/api/auth/me", headers={"Authorization": header.encode("latin-1")})
    assert r.status_code == 401
    assert "detail" in r.json()


def test_missing_token_is_401(client):
    r = client.get("/api/auth/me")
    assert r.status_code == 401 and "missing token" in r.json()["detail"]


@pytest.mark.parametrize(
    "content,content_type",
    [
        (b"{not json", "application/json"),
        (b'{"email": "alice@example.com"}', "application/json"),
        (b'{"email": ["x"], "password": {"a": 1}}', "application/json"),
        (b"\xff\xfe\x00binary", "application/octet-stream"),
        (b"[]", "application/json"),
        (b"", "application/json"),
    ],
)
def test_malformed_login_bodies_are_4xx_json(client, content, content_type):
    r = client.post("/api/auth/login", content=content, headers={"Content-Type": content_type})
    assert 400 <= r.status_code < 500
    assert "detail" in r.json()


def test_ten_megabyte_body_is_413_json(client):
    r = client.post("/api/auth/register", content=b"{" + b" " * (10 * 1024 * 1024) + b"}", headers={"Content-Type": "application/json"})
    assert r.status_code == 413
    assert "larger than the limit" in r.json()["detail"]


def test_chunked_oversized_body_is_413_json(client):
    def chunks():
        for _ in range(40):
            yield b" " * 65536

    r = client.post("/api/auth/login", content=chunks(), headers={"Content-Type": "application/json"})
    assert r.status_code == 413
    assert "larger than the limit" in r.json()["detail"]


def test_health_as_in_seed(client):
    login(client)
    login(client, password="nope")
    r = client.get("/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "healthy" and body["service"] == "auth-api-mock"
    assert body["timestamp"]
    m = body["metrics"]
    assert m["total_requests"] == 2 and m["total_errors"] == 1 and m["error_rate"] == 0.5
    assert m["endpoints"] == {"POST /api/auth/login": 2}
    assert client.get("/api/auth/metrics").json()["total_requests"] == 3  # the /health call counted


def test_users_and_reset_as_in_seed(client):
    client.post("/api/auth/register", json={"email": "temp@example.com", "password": "password123", "name": "Temp"})
    users = client.get("/api/auth/users").json()
    assert users["total"] == 6
    r = client.delete("/api/auth/users/reset")
    assert r.status_code == 200
    users = client.get("/api/auth/users").json()["users"]
    assert sorted(u["id"] for u in users) == sorted(v[0] for v in SEED_USERS.values())
    assert all("password" not in json.dumps(u) for u in users)


def test_docs_and_redoc_are_served(client):
    assert "swagger" in client.get("/docs").text.lower()
    assert "redoc" in client.get("/redoc").text.lower()
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/api/auth/register", "/api/auth/login", "/api/auth/refresh", "/api/auth/me", "/health"} <= set(paths)


def test_cors_allows_all_origins(client):
    r = client.options(
        "/api/auth/login",
        headers={"Origin": "http://localhost:5173", "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"},
    )
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] in ("*", "http://localhost:5173")
    r = login(client)
    assert "access-control-allow-origin" not in r.headers  # no Origin sent
    r = client.post("/api/auth/login", json={"email": "alice@example.com", "password": "password123"}, headers={"Origin": "http://x.test"})
    assert r.headers["access-control-allow-origin"] == "*"


def test_domain_events_are_published(auth_hub, client):
    seen = []
    unsubscribe = auth_hub.run(auth_hub.hub.bus.subscribe, lambda item: seen.append(item))
    try:
        client.post("/api/auth/register", json={"email": "evt@example.com", "password": "password123", "name": "Evt"})
    finally:
        auth_hub.run(unsubscribe)
    kinds = [getattr(i, "kind", None) for i in seen]
    assert "user_registered" in kinds
    event = next(i for i in seen if getattr(i, "kind", None) == "user_registered")
    assert event.server == "auth" and event.data["email"] == "evt@example.com"


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
def test_custom_secret_and_expiry():
    from mockpanel.testing import RunningHub, settings_for

    settings = settings_for(["auth"], environ={"JWT_SECRET": "a-custom-secret-for-this-test-run-which-is-long-enough-for-hs512-keys-0123456789", "JWT_EXPIRY_HOURS": "168", "JWT_ALGORITHM": "HS512"})
    with RunningHub(settings) as running:
        body = httpx2.post(f"{running.urls['auth']}/api/auth/login", json={"email": "bob@example.com", "password": "password123"}).json()
    claims = jwt.decode(body["access_token"], "a-custom-secret-for-this-test-run-which-is-long-enough-for-hs512-keys-0123456789", algorithms=["HS512"])
    assert claims["exp"] - claims["iat"] == 168 * 3600
    assert body["expires_in"] == 168 * 3600
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(body["access_token"], SEED_SECRET, algorithms=["HS512"])


def test_a_password_bcrypt_cannot_hash_is_a_422_not_a_500(client):
    r = client.post("/api/auth/register", content=b'{"email": "nul@example.com", "password": "abcd\\u0000efgh", "name": "N"}',
                    headers={"content-type": "application/json"})
    assert r.status_code == 422
    assert "NUL" in r.json()["detail"][0]["msg"]
