"""OIDC sessions as relying parties and resource servers meet them: refresh rotation with reuse detection,
introspection (RFC 7662), revocation (RFC 7009), revoking a user now, RP-initiated logout, token exchange (RFC 8693),
registered clients enforced, extra claims per user and client, keys kept in a directory, and the JWKS rotating
between two fetches. Tokens are checked with PyJWT's PyJWKClient, as a service would."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx2
import jwt
import pytest

from mockpanel.testing import RunningHub, settings_for

CALLBACK = "http://127.0.0.1:9/callback"  # never fetched: the tests read the redirect's Location


@pytest.fixture(scope="module")
def hub():
    with RunningHub(settings_for(["auth"])) as running:
        yield running


@pytest.fixture
def auth(hub):
    url = hub.urls["auth"]
    httpx2.post(f"{url}/__mockpanel/reset").raise_for_status()
    return url


def discover(base: str) -> dict:
    return httpx2.get(f"{base}/.well-known/openid-configuration").json()


def login(config: dict, user: str = "alice@example.com", client_id: str = "web-app", secret: str | None = None,
          scope: str = "openid email", redirect: str = CALLBACK) -> dict:
    """The code flow without a browser: prompt=none with a login hint, then the code at the token endpoint."""
    answer = httpx2.get(config["authorization_endpoint"], params={"response_type": "code", "client_id": client_id, "redirect_uri": redirect,
                                                                 "scope": scope, "prompt": "none", "login_hint": user})
    assert answer.status_code == 302, answer.text
    code = parse_qs(urlsplit(answer.headers["location"]).query)["code"][0]
    tokens = httpx2.post(config["token_endpoint"], data={"grant_type": "authorization_code", "code": code, "redirect_uri": redirect,
                                                        "client_id": client_id, **({"client_secret": secret} if secret else {})})
    assert tokens.status_code == 200, tokens.text
    return tokens.json()


def refresh(config: dict, token: str, client_id: str = "web-app") -> httpx2.Response:
    return httpx2.post(config["token_endpoint"], data={"grant_type": "refresh_token", "refresh_token": token, "client_id": client_id})


def verify(config: dict, token: str, audience: str) -> dict:
    key = jwt.PyJWKClient(config["jwks_uri"], cache_keys=False).get_signing_key_from_jwt(token)
    return jwt.decode(token, key.key, algorithms=["RS256"], audience=audience, issuer=config["issuer"])


def introspect(config: dict, token: str) -> dict:
    return httpx2.post(config["introspection_endpoint"], data={"token": token}).json()


def test_refresh_rotates_and_a_reused_refresh_token_ends_the_session(auth):
    config = discover(auth)
    first = login(config)
    second = refresh(config, first["refresh_token"])
    assert second.status_code == 200 and second.headers["cache-control"] == "no-store"
    rotated = second.json()
    assert rotated["refresh_token"] != first["refresh_token"]
    assert verify(config, rotated["id_token"], "web-app")["sub"] == "test-user-123"
    assert introspect(config, rotated["access_token"])["active"] is True

    replay = refresh(config, first["refresh_token"])  # a stolen copy used after the rotation
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant" and "reuse" in replay.json()["error_description"]
    assert refresh(config, rotated["refresh_token"]).json()["error"] == "invalid_grant"  # the successor is revoked too
    assert introspect(config, rotated["access_token"]) == {"active": False}
    assert httpx2.get(config["userinfo_endpoint"], headers={"authorization": f"Bearer {rotated['access_token']}"}).status_code == 401


def test_a_refresh_token_is_bound_to_its_client_and_lifetime(auth):
    config = discover(auth)
    tokens = login(config)
    stolen = refresh(config, tokens["refresh_token"], client_id="another-app")
    assert stolen.status_code == 400 and "another client" in stolen.json()["error_description"]
    httpx2.put(f"{auth}/__mockpanel/oidc/clock", json={"advance_s": 31 * 86400})
    expired = refresh(config, tokens["refresh_token"])
    assert expired.status_code == 400 and "expired" in expired.json()["error_description"]
    assert refresh(config, "made-up").json()["error"] == "invalid_grant"


def test_introspection_and_revocation(auth):
    config = discover(auth)
    tokens = login(config)
    active = introspect(config, tokens["access_token"])
    assert active["active"] is True and active["sub"] == "test-user-123" and active["client_id"] == "web-app"
    assert introspect(config, tokens["refresh_token"])["token_type"] == "refresh_token"
    assert introspect(config, "not-a-token") == {"active": False}

    assert httpx2.post(config["revocation_endpoint"], data={"token": tokens["access_token"]}).status_code == 200
    assert introspect(config, tokens["access_token"]) == {"active": False}
    assert introspect(config, tokens["refresh_token"])["active"] is True  # an access token's revocation leaves the session
    assert httpx2.post(config["revocation_endpoint"], data={"token": tokens["refresh_token"]}).status_code == 200
    assert refresh(config, tokens["refresh_token"]).json()["error"] == "invalid_grant"
    assert httpx2.post(config["revocation_endpoint"], data={"token": "unknown"}).status_code == 200  # RFC 7009 2.2


def test_revoking_a_user_now_ends_every_session_of_that_user(auth):
    config = discover(auth)
    alice, alice_again, bob = login(config), login(config, client_id="mobile"), login(config, user="bob@example.com")
    ended = httpx2.post(f"{auth}/__mockpanel/oidc/revoke", params={"user": "alice@example.com"}).json()
    assert ended == {"user": "alice@example.com", "sessions_ended": 2}
    assert refresh(config, alice["refresh_token"]).json()["error"] == "invalid_grant"
    assert refresh(config, alice_again["refresh_token"], client_id="mobile").json()["error"] == "invalid_grant"
    assert introspect(config, alice["access_token"]) == {"active": False}
    assert refresh(config, bob["refresh_token"]).status_code == 200
    fresh = login(config)  # a new login after the revocation works
    assert introspect(config, fresh["access_token"])["active"] is True


def test_logout_ends_the_session_and_returns_to_the_app(auth):
    config = discover(auth)
    tokens = login(config)
    back = httpx2.get(config["end_session_endpoint"], params={"id_token_hint": tokens["id_token"], "state": "s1",
                                                             "post_logout_redirect_uri": "http://127.0.0.1:9/bye"})
    assert back.status_code == 302 and back.headers["location"] == "http://127.0.0.1:9/bye?state=s1"
    assert refresh(config, tokens["refresh_token"]).json()["error"] == "invalid_grant"
    page = httpx2.get(config["end_session_endpoint"])
    assert page.status_code == 200 and "signed out" in page.text
    bad = httpx2.get(config["end_session_endpoint"], params={"post_logout_redirect_uri": "javascript:alert(1)"})
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_request"


def test_token_exchange_for_another_audience(auth):
    config = discover(auth)
    assert "urn:ietf:params:oauth:grant-type:token-exchange" in config["grant_types_supported"]
    user = login(config)
    service = httpx2.post(config["token_endpoint"], data={"grant_type": "client_credentials", "client_id": "orders"}).json()
    exchanged = httpx2.post(config["token_endpoint"], data={
        "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange", "client_id": "orders", "audience": "billing",
        "subject_token": user["access_token"], "subject_token_type": "urn:ietf:params:oauth:token-type:access_token",
        "actor_token": service["access_token"], "actor_token_type": "urn:ietf:params:oauth:token-type:access_token"})
    assert exchanged.status_code == 200, exchanged.text
    assert exchanged.json()["issued_token_type"] == "urn:ietf:params:oauth:token-type:access_token"
    claims = verify(config, exchanged.json()["access_token"], "billing")
    assert claims["sub"] == "test-user-123" and claims["email"] == "alice@example.com"
    assert claims["azp"] == "orders" and claims["act"] == {"sub": "orders"}
    refused = httpx2.post(config["token_endpoint"], data={"grant_type": "urn:ietf:params:oauth:grant-type:token-exchange", "client_id": "orders",
                                                         "subject_token": "forged", "subject_token_type": "urn:ietf:params:oauth:token-type:access_token"})
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"


def test_registered_clients_are_enforced_and_unregistering_opens_again(auth):
    config = discover(auth)
    registered = httpx2.put(f"{auth}/__mockpanel/oidc/clients/web-app", json={"secret": "s3cret", "redirect_uris": [CALLBACK]})
    assert registered.json() == {"client_id": "web-app", "confidential": True, "redirect_uris": [CALLBACK], "post_logout_redirect_uris": []}
    elsewhere = httpx2.get(config["authorization_endpoint"], params={"response_type": "code", "client_id": "web-app", "redirect_uri": "http://evil.example/cb"})
    assert elsewhere.status_code == 400 and "not registered" in elsewhere.json()["error_description"]  # no redirect to it
    stranger = httpx2.post(config["token_endpoint"], data={"grant_type": "client_credentials", "client_id": "stranger"})
    assert stranger.status_code == 401 and stranger.json()["error"] == "invalid_client"
    wrong = httpx2.post(config["token_endpoint"], data={"grant_type": "client_credentials"}, auth=("web-app", "guess"))
    assert wrong.status_code == 401 and "secret" in wrong.json()["error_description"]
    assert login(config, secret="s3cret")["token_type"] == "Bearer"
    assert httpx2.delete(f"{auth}/__mockpanel/oidc/clients/web-app").json() == {"removed": "web-app", "enforced": False}
    assert httpx2.post(config["token_endpoint"], data={"grant_type": "client_credentials", "client_id": "stranger"}).status_code == 200
    bad = httpx2.put(f"{auth}/__mockpanel/oidc/clients/x", json={"redirect_uris": ["javascript:alert(1)"]})
    assert bad.status_code == 422


def test_extra_claims_per_user_and_per_client(auth):
    config = discover(auth)
    assert httpx2.put(f"{auth}/__mockpanel/oidc/claims/users/alice@example.com", json={"role": "admin", "groups": ["ops"]}).status_code == 200
    assert httpx2.put(f"{auth}/__mockpanel/oidc/claims/clients/web-app", json={"tenant": "acme"}).status_code == 200
    tokens = login(config)
    for token in (tokens["access_token"], tokens["id_token"]):
        claims = verify(config, token, "web-app")
        assert (claims["role"], claims["groups"], claims["tenant"]) == ("admin", ["ops"], "acme")
    info = httpx2.get(config["userinfo_endpoint"], headers={"authorization": f"Bearer {tokens['access_token']}"}).json()
    assert info["role"] == "admin"
    assert "role" not in verify(config, login(config, user="bob@example.com")["id_token"], "web-app")
    assert httpx2.get(f"{auth}/__mockpanel/oidc/claims/users/test-user-123").json() == {"role": "admin", "groups": ["ops"]}
    protected = httpx2.put(f"{auth}/__mockpanel/oidc/claims/users/alice@example.com", json={"exp": 1})
    assert protected.status_code == 422 and "exp" in protected.json()["detail"]
    assert httpx2.put(f"{auth}/__mockpanel/oidc/claims/users/nobody", json={"a": 1}).status_code == 404


def test_tokens_without_a_flow_from_the_control_api(auth):
    config = discover(auth)
    tokens = httpx2.post(f"{auth}/__mockpanel/oidc/tokens", json={"user": "bob@example.com", "client_id": "cli"}).json()
    assert verify(config, tokens["id_token"], "cli")["email"] == "bob@example.com"
    assert refresh(config, tokens["refresh_token"], client_id="cli").status_code == 200
    own = httpx2.post(f"{auth}/__mockpanel/oidc/tokens", json={"client_id": "batch", "audience": "api"}).json()
    assert verify(config, own["access_token"], "api")["sub"] == "batch" and "id_token" not in own


def test_the_jwks_can_rotate_between_two_fetches(auth):
    config = discover(auth)
    httpx2.patch(f"{auth}/__mockpanel/oidc/faults", json={"rotate_on_fetch": True})
    first = {k["kid"] for k in httpx2.get(config["jwks_uri"]).json()["keys"]}
    second = {k["kid"] for k in httpx2.get(config["jwks_uri"]).json()["keys"]}
    assert second - first  # a new key each fetch, the old ones still published
    httpx2.delete(f"{auth}/__mockpanel/oidc/faults")


def test_keys_in_a_directory_survive_a_restart(tmp_path):
    settings = {"auth": {"oidc_keys_dir": str(tmp_path)}}
    with RunningHub(settings_for(["auth"], settings)) as first:
        config = discover(first.urls["auth"])
        token = httpx2.post(config["token_endpoint"], data={"grant_type": "client_credentials", "client_id": "svc"}).json()["access_token"]
    assert (tmp_path / "default.jwks.json").stat().st_mode & 0o077 == 0  # private keys: the owner's only
    with RunningHub(settings_for(["auth"], settings)) as second:
        url = second.urls["auth"]
        key = jwt.PyJWKClient(f"{url}/jwks").get_signing_key_from_jwt(token)
        assert jwt.decode(token, key.key, algorithms=["RS256"], audience="svc")["sub"] == "svc"


def test_settings_declare_clients_claims_and_issuers():
    settings = {"auth": {"oidc_clients": {"web-app": {"secret": "s", "redirect_uris": [CALLBACK]}},
                         "oidc_user_claims": {"alice@example.com": {"role": "admin"}},
                         "oidc_issuers": {"edge": {"algorithm": "ES256"}}}}
    with RunningHub(settings_for(["auth"], settings)) as running:
        url = running.urls["auth"]
        config = discover(url)
        claims = verify(config, login(config, secret="s")["id_token"], "web-app")
        assert claims["role"] == "admin"
        assert httpx2.post(config["token_endpoint"], data={"grant_type": "client_credentials", "client_id": "other"}).status_code == 401
        httpx2.post(f"{url}/__mockpanel/reset")  # the settings' clients and claims come back after a reset
        assert httpx2.get(f"{url}/__mockpanel/oidc").json()["enforced"] is True
        assert httpx2.get(f"{url}/issuers/edge/jwks").json()["keys"][0]["kty"] == "EC"


def test_a_bad_oidc_setting_stops_the_start_with_one_line():
    from mockpanel.settings import SettingsError

    with pytest.raises(SettingsError, match="oidc"):
        with RunningHub(settings_for(["auth"], {"auth": {"oidc_user_claims": {"nobody@example.com": {"a": 1}}}})):
            pass


def test_the_plugins_mocks_give_tokens_and_token_fault_blocks():
    from mockpanel.spec import Invalid
    from mockpanel.testing import Mocks

    with Mocks(settings_for(["auth"])) as mocks:
        config = discover(mocks.url("auth"))
        tokens = mocks.oidc_tokens("alice@example.com", "orders")
        assert verify(config, tokens["id_token"], "orders")["email"] == "alice@example.com"
        assert verify(config, mocks.oidc_tokens(client_id="batch")["access_token"], "batch")["sub"] == "batch"
        with mocks.token_faults(expired=True) as faults:
            assert faults == {"expired": True}
            with pytest.raises(jwt.ExpiredSignatureError):
                verify(config, mocks.oidc_tokens(client_id="batch")["access_token"], "batch")
        verify(config, mocks.oidc_tokens(client_id="batch")["access_token"], "batch")
        with pytest.raises(Invalid, match="unknown token fault"):
            with mocks.token_faults(explode=True):
                pass
        tenant = mocks.oidc_tokens(client_id="batch", issuer="tenant-a")["access_token"]
        assert verify(discover(mocks.url("auth") + "/issuers/tenant-a"), tenant, "batch")["iss"].endswith("/issuers/tenant-a")


def test_the_readme_oidc_settings_start_and_apply(tmp_path):
    import re
    from mockpanel.scenario import tomllib

    from conftest import documentation

    block = re.search(r"<!-- example: oidc-toml -->\n```toml\n(.*?)```", documentation(), re.S).group(1)
    auth = tomllib.loads(block)["auth"]
    auth["oidc_keys_dir"] = str(tmp_path / "keys")
    with RunningHub(settings_for(["auth"], {"auth": auth})) as running:
        url = running.urls["auth"]
        config = discover(url)
        tokens = login(config, client_id="shop", secret="shop-secret", redirect="http://localhost:5000/callback")
        claims = verify(config, tokens["access_token"], "shop")
        assert (claims["role"], claims["tenant"]) == ("admin", "acme")
        assert httpx2.get(f"{url}/issuers/partners/jwks").json()["keys"][0]["alg"] == "ES256"
    assert (tmp_path / "keys" / "default.jwks.json").exists()
