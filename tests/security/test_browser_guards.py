"""A web page in the developer's browser must not be able to drive the mocks: the Host allow-list stops DNS
rebinding, state-changing control calls refuse other sites, and the refusals are in each server's own format."""

from __future__ import annotations

import httpx2
import pytest

from conftest import make_s3_client, page_on_another_site
from mockpanel.testing import RunningHub, settings_for


@pytest.fixture(scope="module")
def hub():
    with RunningHub(settings_for(["auth", "s3", "webhooks"])) as running:
        yield running


def port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def test_a_foreign_host_gets_403_naming_the_setting(hub):
    auth, s3 = hub.urls["auth"], hub.urls["s3"]
    r = httpx2.get(f"{auth}/__mockpanel/requests", headers={"Host": "attacker.example"})
    assert r.status_code == 403 and "allowed_hosts" in r.json()["detail"] and "attacker.example" in r.json()["detail"]
    r = httpx2.patch(f"{auth}/__mockpanel/faults", json={"fail_next": 5}, headers={"Host": f"attacker.example:{port(auth)}"})
    assert r.status_code == 403
    assert httpx2.get(f"{auth}/__mockpanel/faults").json()["fail_next"] == 0
    r = httpx2.get(f"{s3}/", headers={"Host": "attacker.example"})
    assert r.status_code == 403 and "<Code>AccessDenied</Code>" in r.text and "allowed_hosts" in r.text
    for host in ("localhost", f"localhost:{port(auth)}", "127.0.0.1", "[::1]", "app.localhost", "host.docker.internal", "LOCALHOST."):
        assert httpx2.get(f"{auth}/health", headers={"Host": host}).status_code == 200, host


def test_virtual_host_buckets_keep_working(hub):
    s3 = hub.urls["s3"]
    make_s3_client(s3).create_bucket(Bucket="vhost-bucket")
    r = httpx2.get(f"{s3}/", headers={"Host": f"vhost-bucket.localhost:{port(s3)}"})
    assert r.status_code == 200 and "<Name>vhost-bucket</Name>" in r.text


def test_allowed_hosts_adds_names_and_star_turns_the_check_off():
    with RunningHub(settings_for(["auth"], environ={"MOCKPANEL_ALLOWED_HOSTS": "auth-mock,*.dev.test"})) as running:
        url = running.urls["auth"]
        for host, status in (("auth-mock", 200), ("api.dev.test", 200), ("dev.test", 200), ("other-mock", 403)):
            assert httpx2.get(f"{url}/health", headers={"Host": host}).status_code == status, host
    with RunningHub(settings_for(["auth"], {"mockpanel": {"allowed_hosts": "*"}})) as running:
        assert httpx2.get(running.urls["auth"] + "/health", headers={"Host": "anything.example"}).status_code == 200


def test_cross_site_state_changes_are_refused_and_nothing_changes(hub):
    auth, webhooks = hub.urls["auth"], hub.urls["webhooks"]
    httpx2.post(f"{auth}/api/auth/register", json={"email": "kept@example.com", "password": "password123", "name": "Kept"})
    for headers in ({"Origin": "http://evil.example", "Content-Type": "text/plain"}, {"Sec-Fetch-Site": "cross-site"},
                    {"Origin": "null"}):
        r = httpx2.post(f"{auth}/__mockpanel/reset", content=b"x", headers=headers)
        assert r.status_code == 403 and "cross-site" in r.json()["detail"], headers
    assert any(u["email"] == "kept@example.com" for u in httpx2.get(f"{auth}/api/auth/users").json()["users"])
    # the same call from this machine's own pages, or from a script, is fine
    assert httpx2.get(f"{auth}/__mockpanel/faults", headers={"Origin": "http://evil.example"}).status_code == 200  # reading
    r = httpx2.put(f"{auth}/__mockpanel/faults", json={}, headers={"Origin": auth})  # the server's own page
    assert r.status_code == 200
    event = httpx2.post(f"{webhooks}/webhooks/shop", json={"event_type": "x"}).json()["event_id"]
    r = httpx2.post(f"{webhooks}/webhooks/replay/{event}", params={"target_url": f"{webhooks}/webhooks/copy"},
                   headers={"Origin": "http://evil.example"})
    assert r.status_code == 403 and "cross-site" in r.json()["detail"]
    assert httpx2.get(f"{webhooks}/webhooks/events", params={"client_id": "copy"}).json()["total"] == 0


def test_delete_objects_needs_a_digest_a_form_cannot_send(hub):
    s3 = hub.urls["s3"]
    client = make_s3_client(s3)
    client.create_bucket(Bucket="keepers")
    client.put_object(Bucket="keepers", Key="a", Body=b"1")
    body = b"<Delete><Object><Key>a</Key></Object></Delete>"
    r = httpx2.post(f"{s3}/keepers?delete", content=body, headers={"Content-Type": "text/plain", "Origin": "http://evil.example"})
    assert r.status_code == 400 and "Content-MD5" in r.text
    r = httpx2.post(f"{s3}/keepers?delete", content=body, headers={"x-amz-checksum-crc32": "AAAAAA=="})
    assert r.status_code == 400 and "<Code>BadDigest</Code>" in r.text
    assert client.get_object(Bucket="keepers", Key="a")["Body"].read() == b"1"
    client.delete_objects(Bucket="keepers", Delete={"Objects": [{"Key": "a"}]})  # boto3 sends its checksum: allowed
    assert client.list_objects_v2(Bucket="keepers")["KeyCount"] == 0


def test_the_admin_token_can_cover_the_seeds_admin_endpoints():
    env = {"MOCKPANEL_ADMIN_TOKEN": "tok", "MOCKPANEL_ADMIN_TOKEN_SCOPE": "all"}
    with RunningHub(settings_for(["auth", "s3"], environ=env)) as running:
        auth, s3 = running.urls["auth"], running.urls["s3"]
        assert httpx2.delete(f"{auth}/api/auth/users/reset").status_code == 401
        assert httpx2.delete(f"{s3}/admin/reset").status_code == 401
        assert httpx2.get(f"{s3}/admin/buckets").status_code == 401
        assert httpx2.delete(f"{auth}/api/auth/users/reset", headers={"Authorization": "Bearer tok"}).status_code == 200
        assert httpx2.get(f"{auth}/health").status_code == 200  # the mock itself stays open
    settings = settings_for(["auth", "s3"], environ={"MOCKPANEL_ADMIN_TOKEN": "tok"})
    open_ones = [n for n in settings.notices if "guards the control API only" in n]
    assert any("auth: " in n and "DELETE /api/auth/users/reset" in n for n in open_ones)
    assert any("s3: " in n and "DELETE /admin/reset" in n for n in open_ones)


def test_cors_origins_narrows_what_browsers_may_call():
    with RunningHub(settings_for(["auth"], {"auth": {"cors_origins": "http://localhost:5173"}})) as running:
        url = running.urls["auth"]
        ok = httpx2.get(f"{url}/health", headers={"Origin": "http://localhost:5173"})
        assert ok.headers.get("access-control-allow-origin") == "http://localhost:5173"
        other = httpx2.get(f"{url}/health", headers={"Origin": "http://localhost:9999"})
        assert "access-control-allow-origin" not in other.headers


def test_a_page_on_another_site_cannot_reset_or_read_and_a_rebinding_page_is_refused(hub):
    auth = hub.urls["auth"]
    httpx2.post(f"{auth}/api/auth/register", json={"email": "victim@example.com", "password": "password123", "name": "V"})
    httpx2.get(f"{auth}/health", headers={"Authorization": "Bearer secret-in-the-journal"})
    with page_on_another_site("--host-resolver-rules=MAP attacker.example 127.0.0.1") as page:
        # 1. a page on another site fires simple cross-site requests at the mock on 127.0.0.1
        outcome = page.evaluate("""async (base) => {
            await fetch(base + '/__mockpanel/reset', {method: 'POST', mode: 'no-cors', body: 'x',
                                                      headers: {'content-type': 'text/plain'}});
            await fetch(base + '/__mockpanel/reset', {method: 'POST', mode: 'no-cors'});  // no body: only Origin tells
            let read = 'unread';
            try { read = await (await fetch(base + '/__mockpanel/requests')).text(); } catch (e) { read = 'blocked'; }
            return read;
        }""", auth)
        assert outcome == "blocked"  # no CORS on the control API: the journal (with tokens in it) is not readable
        # 2. DNS rebinding: attacker.example now resolves to 127.0.0.1, so to the browser the mock *is* the
        # attacker's origin; what the browser sends then carries the attacker's name in Host, and is refused
        rebinding = f"http://attacker.example:{port(auth)}"
        response = page.goto(rebinding + "/__mockpanel/requests")
        text = page.content()
        assert response.status == 403 and "allowed_hosts" in text and "secret-in-the-journal" not in text
    users = httpx2.get(f"{auth}/api/auth/users").json()["users"]
    assert any(u["email"] == "victim@example.com" for u in users)  # nothing was reset
