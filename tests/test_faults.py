"""Fault injection through the control API, seen by a real HTTP client."""

from __future__ import annotations

import httpx2
import pytest


def set_faults(client, **policy):
    r = client.patch("/__mockpanel/faults", json=policy)
    assert r.status_code == 200, r.text
    return r.json()


def journal(client, **params):
    return client.get("/__mockpanel/requests", params=params).json()["requests"]


def test_policy_round_trips_as_flat_json(client):
    policy = client.get("/__mockpanel/faults").json()
    assert set(policy) == {
        "delay_enabled", "min_delay_ms", "max_delay_ms", "error_rate", "error_codes",
        "fail_next", "fail_next_code", "drop_rate", "hang_rate", "seed",
    }
    r = client.put("/__mockpanel/faults", json={"error_rate": 0.25, "error_codes": [502, 503]})
    assert r.status_code == 200
    assert client.get("/__mockpanel/faults").json() | {} == r.json()
    assert r.json()["error_rate"] == 0.25 and r.json()["delay_enabled"] is False  # PUT replaces: the rest are defaults


@pytest.mark.parametrize(
    "body",
    [
        {"error_rate": 7},
        {"error_rate": "lots"},
        {"min_delay_ms": 500, "max_delay_ms": 100},
        {"error_codes": [200]},
        {"error_codes": []},
        {"fail_next": -1},
        {"no_such_field": 1},
        ["not", "an", "object"],
    ],
)
def test_invalid_policy_is_422_and_changes_nothing(client, body):
    before = client.get("/__mockpanel/faults").json()
    r = client.patch("/__mockpanel/faults", json=body)
    assert r.status_code == 422
    assert r.json()["detail"]
    assert client.get("/__mockpanel/faults").json() == before


def test_policy_changes_need_a_json_content_type(client):
    # A form or text/plain body is what a page on another site can send without asking: refused, with the fix named.
    r = client.patch("/__mockpanel/faults", content=b'{"fail_next": 1}', headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 415 and "content-type: application/json" in r.json()["detail"]
    assert client.get("/__mockpanel/faults").json()["fail_next"] == 0
    r = client.patch("/__mockpanel/faults", content=b'{"fail_next": 1}', headers={"Content-Type": "application/json; charset=utf-8"})
    assert r.status_code == 200 and r.json()["fail_next"] == 1


def test_fail_next_n_then_recovers(client):
    set_faults(client, fail_next=3, fail_next_code=503)
    statuses = [client.get("/health").status_code for _ in range(5)]
    assert statuses == [503, 503, 503, 200, 200]
    assert client.get("/__mockpanel/faults").json()["fail_next"] == 0
    failed = [e for e in journal(client) if e["status"] == 503]
    assert [e["fault"] for e in failed] == ["fail_next:503"] * 3


def test_injected_error_body_is_json(client):
    set_faults(client, fail_next=1, fail_next_code=500)
    r = client.post("/api/auth/login", json={"email": "alice@example.com", "password": "password123"})
    assert r.status_code == 500
    assert r.json() == {"detail": "injected fault: fail_next:500"}


def test_error_rate_with_seed_is_near_its_setting_and_reproducible(client):
    def run() -> list[int]:
        set_faults(client, error_rate=0.3, error_codes=[500, 503], seed=42)
        return [client.get("/health").status_code for _ in range(400)]

    first = run()
    errors = [s for s in first if s != 200]
    assert 0.22 <= len(errors) / 400 <= 0.38
    assert set(errors) == {500, 503}
    assert run() == first  # same seed, same sequence


def test_delay_within_bounds(client):
    set_faults(client, delay_enabled=True, min_delay_ms=30, max_delay_ms=60, seed=1)
    for _ in range(8):
        assert client.get("/health").status_code == 200
    entries = journal(client, path="/health")
    assert len(entries) == 8
    for e in entries:
        label = e["fault"]
        assert label.startswith("delay:")
        delay = int(label.removeprefix("delay:").removesuffix("ms"))
        assert 30 <= delay <= 60
        assert e["duration_ms"] >= delay - 1  # the request really waited


def test_drop_closes_the_connection_without_a_response(client):
    set_faults(client, drop_rate=1.0)
    with pytest.raises(httpx2.RemoteProtocolError):
        client.get("/health")
    set_faults(client, drop_rate=0.0)
    assert client.get("/health").status_code == 200
    dropped = journal(client, path="/health")[0]
    assert dropped["fault"] == "drop" and dropped["status"] == 0


def test_hang_holds_the_request_until_the_client_gives_up(client):
    set_faults(client, hang_rate=1.0)
    with pytest.raises(httpx2.ReadTimeout):
        client.get("/health", timeout=0.5)
    set_faults(client, hang_rate=0.0)
    assert client.get("/health").status_code == 200
    hung = journal(client, path="/health")[0]
    assert hung["fault"] == "hang"


@pytest.mark.parametrize("code", [401, 409, 500, 503])
def test_simulate_error_query_on_any_request(client, code):
    r = client.post(f"/api/auth/login?simulate_error={code}", json={"email": "alice@example.com", "password": "password123"})
    assert r.status_code == code
    assert "simulate_error" in r.json()["detail"]
    assert journal(client)[-1]["fault"] == f"simulate_error:{code}"


@pytest.mark.parametrize("value", ["abc", "200", "999", ""])
def test_simulate_error_with_a_bad_code_is_400(client, value):
    r = client.get(f"/health?simulate_error={value}")
    if value == "":
        assert r.status_code == 200  # an empty value is no request for an error
    else:
        assert r.status_code == 400 and "simulate_error" in r.json()["detail"]


def test_control_api_is_exempt_from_faults(client):
    set_faults(client, error_rate=1.0, drop_rate=0.0)
    assert client.get("/health").status_code == 500
    for _ in range(5):
        assert client.get("/__mockpanel/faults").status_code == 200
    assert client.delete("/__mockpanel/faults").json()["error_rate"] == 0
    assert client.get("/health").status_code == 200


def test_journal_records_every_request(client):
    client.post("/api/auth/login?x=1", json={"email": "alice@example.com", "password": "wrong-password"})
    (entry,) = journal(client)
    assert entry["server"] == "auth" and entry["method"] == "POST" and entry["path"] == "/api/auth/login"
    assert entry["query"] == "x=1" and entry["status"] == 401
    assert entry["request_size"] == len(b'{"email":"alice@example.com","password":"wrong-password"}')
    assert "wrong-password" in entry["request_body_preview"]
    assert entry["response_body_preview"] == '{"detail":"invalid email or password"}'
    assert ["content-type", "application/json"] in entry["request_headers"]
    assert entry["duration_ms"] > 0 and entry["fault"] is None
    # filters: method, status, path, since, limit
    client.get("/health")
    assert [e["path"] for e in journal(client, method="GET")] == ["/health"]
    assert [e["status"] for e in journal(client, status=401)] == [401]
    assert len(journal(client, since=entry["id"])) == 1
    assert len(journal(client, limit=1)) == 1


def test_journal_is_a_bounded_ring_buffer():
    from mockpanel.testing import RunningHub, settings_for

    with RunningHub(settings_for(["auth"], {"mockpanel": {"journal_size": "5"}})) as running:
        url = running.urls["auth"]
        for _ in range(12):
            httpx2.get(f"{url}/health")
        entries = httpx2.get(f"{url}/__mockpanel/requests", params={"limit": 100}).json()["requests"]
    assert len(entries) == 5
    assert [e["id"] for e in entries] == list(range(8, 13))


def test_reset_puts_seed_data_back(client):
    client.post("/api/auth/register", json={"email": "gone@example.com", "password": "password123", "name": "Gone"})
    assert client.post("/__mockpanel/reset").json() == {"server": "auth", "reset": True}
    emails = [u["email"] for u in client.get("/api/auth/users").json()["users"]]
    assert "gone@example.com" not in emails and len(emails) == 5


def test_stats_show_counters_latency_and_active_faults(client):
    for _ in range(5):
        client.get("/health")
    set_faults(client, error_rate=0.5, error_codes=[503], seed=3)
    stats = client.get("/__mockpanel/stats").json()
    assert stats["server"] == "auth" and stats["total_requests"] == 5 and stats["total_errors"] == 0
    assert 0 < stats["p50_ms"] <= stats["p95_ms"]
    assert stats["faults"] == ["errors 50% 503"]
