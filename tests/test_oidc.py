"""The auth mock as an OpenID Connect provider, verified by PyJWT's PyJWKClient as a service would: discovery, JWKS,
client credentials, rotation, named issuers, a fixed clock, and each token fault refused for the reason it names."""

from __future__ import annotations

import httpx2
import jwt
import pytest

from mockpanel.testing import RunningHub, settings_for


@pytest.fixture(scope="module")
def auth():
    with RunningHub(settings_for(["auth"])) as running:
        yield running.urls["auth"]


@pytest.fixture(autouse=True)
def no_faults(auth):
    yield
    httpx2.delete(f"{auth}/__mockpanel/oidc/faults")
    httpx2.delete(f"{auth}/__mockpanel/oidc/clock")


def discover(base: str) -> dict:
    return httpx2.get(f"{base}/.well-known/openid-configuration").json()


def token(config: dict, client_id: str = "orders-service", **extra) -> str:
    answer = httpx2.post(config["token_endpoint"], data={"grant_type": "client_credentials", "client_id": client_id, **extra})
    assert answer.status_code == 200, answer.text
    return answer.json()["access_token"]


def verify(config: dict, access_token: str, audience: str = "orders-service") -> dict:
    """What a service does: the key from jwks_uri by kid, then PyJWT's checks of signature, exp, nbf, aud and iss."""
    key = jwt.PyJWKClient(config["jwks_uri"], cache_keys=False).get_signing_key_from_jwt(access_token)
    return jwt.decode(access_token, key.key, algorithms=["RS256"], audience=audience, issuer=config["issuer"])


def test_a_service_verifies_client_credentials_tokens_from_the_jwks(auth):
    config = discover(auth)
    assert config["issuer"] == auth and config["jwks_uri"] == f"{auth}/jwks" and "client_credentials" in config["grant_types_supported"]
    claims = verify(config, token(config, scope="orders:read"))
    assert claims["sub"] == "orders-service" and claims["scope"] == "orders:read" and claims["exp"] - claims["iat"] == 3600
    assert jwt.get_unverified_header(token(config))["typ"] == "at+jwt"
    basic = httpx2.post(config["token_endpoint"], data={"grant_type": "client_credentials", "audience": "billing"}, auth=("billing-job", "secret"))
    assert verify(config, basic.json()["access_token"], audience="billing")["sub"] == "billing-job"


def test_named_issuers_have_their_own_keys(auth):
    assert httpx2.get(f"{auth}/issuers/tenant-a/.well-known/openid-configuration").status_code == 404  # not declared yet
    declared = httpx2.post(f"{auth}/__mockpanel/oidc/issuers", json={"name": "tenant-a"})
    assert declared.status_code == 200 and declared.json()["algorithm"] == "RS256"
    default, tenant = discover(auth), discover(f"{auth}/issuers/tenant-a")
    assert tenant["issuer"] == f"{auth}/issuers/tenant-a"
    issued = token(tenant)
    assert verify(tenant, issued)["iss"] == tenant["issuer"]
    with pytest.raises(jwt.PyJWKClientError):
        verify(default, issued)  # its kid is not in the default issuer's JWKS
    assert httpx2.get(f"{auth}/issuers/bad name!/jwks").status_code == 404


def test_rotation_keeps_old_tokens_valid_until_the_old_key_is_removed(auth):
    config = discover(auth)
    old = token(config)
    rotated = httpx2.post(f"{auth}/__mockpanel/oidc/rotate").json()
    new = token(config)
    assert jwt.get_unverified_header(new)["kid"] == rotated["kid"] != jwt.get_unverified_header(old)["kid"]
    assert verify(config, old)["sub"] == verify(config, new)["sub"] == "orders-service"
    assert httpx2.delete(f"{auth}/__mockpanel/oidc/keys/retired").json()["removed"] >= 1
    verify(config, new)
    with pytest.raises(jwt.PyJWKClientError):
        verify(config, old)


@pytest.mark.parametrize("fault, error", [
    ({"expired": True}, jwt.ExpiredSignatureError),
    ({"not_yet_valid": True}, jwt.ImmatureSignatureError),
    ({"clock_skew_s": -7200}, jwt.ExpiredSignatureError),
    ({"audience": "someone-else"}, jwt.InvalidAudienceError),
    ({"issuer": "https://evil.example"}, jwt.InvalidIssuerError),
    ({"unknown_kid": True}, jwt.PyJWKClientError),
    ({"foreign_key": True}, jwt.InvalidSignatureError),
    ({"alg": "RS512"}, jwt.InvalidAlgorithmError),
])
def test_each_token_fault_is_refused_for_its_reason(auth, fault, error):
    config = discover(auth)
    assert httpx2.patch(f"{auth}/__mockpanel/oidc/faults", json=fault).json() == fault
    with pytest.raises(error):
        verify(config, token(config))
    assert httpx2.delete(f"{auth}/__mockpanel/oidc/faults").json() == {}
    verify(config, token(config))  # fault off: valid again


def test_a_fixed_clock_sets_and_advances_the_tokens_time(auth):
    config = discover(auth)
    httpx2.put(f"{auth}/__mockpanel/oidc/clock", json={"now": 2_000_000_000})
    assert jwt.decode(token(config), options={"verify_signature": False})["iat"] == 2_000_000_000
    httpx2.put(f"{auth}/__mockpanel/oidc/clock", json={"advance_s": 90})
    assert jwt.decode(token(config), options={"verify_signature": False})["iat"] == 2_000_000_090


def test_refusals_say_why(auth):
    config = discover(auth)
    grant = httpx2.post(config["token_endpoint"], data={"grant_type": "password", "client_id": "x"})
    assert grant.status_code == 400 and grant.json()["error"] == "unsupported_grant_type"
    anonymous = httpx2.post(config["token_endpoint"], data={"grant_type": "client_credentials"})
    assert anonymous.status_code == 401 and anonymous.json()["error"] == "invalid_client"
    unknown = httpx2.patch(f"{auth}/__mockpanel/oidc/faults", json={"explode": True})
    assert unknown.status_code == 422 and "unknown token fault" in unknown.json()["detail"]
    wrong_type = httpx2.patch(f"{auth}/__mockpanel/oidc/faults", json={"clock_skew_s": "soon"})
    assert wrong_type.status_code == 422
    clock = httpx2.put(f"{auth}/__mockpanel/oidc/clock", json={"now": "tomorrow"})
    assert clock.status_code == 422


def test_the_reset_clears_token_faults():
    with RunningHub(settings_for(["auth"])) as running:
        url = running.urls["auth"]
        httpx2.patch(f"{url}/__mockpanel/oidc/faults", json={"expired": True})
        httpx2.post(f"{url}/__mockpanel/reset")
        assert httpx2.get(f"{url}/__mockpanel/oidc/faults").json() == {}
