"""The attach routes (/__mockpanel/panel/call and /events) from an attacker's side: a page on another site, a hostile
call, a flood of calls. Each refusal is JSON, and nothing changes."""

from __future__ import annotations

import httpx2
import pytest

from conftest import page_on_another_site
from mockpanel import wire
from mockpanel.testing import RunningHub, settings_for

CALL = "/__mockpanel/panel/call"
EVENTS = "/__mockpanel/panel/events"


@pytest.fixture(scope="module")
def hub():
    with RunningHub(settings_for(["auth", "s3"])) as running:
        yield running


def call(url: str, op: str, *args, headers: dict | None = None, raw: bytes | None = None) -> httpx2.Response:
    body = raw if raw is not None else wire.dumps({"op": op, "args": list(args)}).encode()
    return httpx2.post(url + CALL, content=body, headers={"content-type": "application/json", **(headers or {})})


def fail_next(url: str) -> int:
    return httpx2.get(url + "/__mockpanel/faults").json()["fail_next"]


def test_a_call_runs_a_named_panel_operation_and_nothing_else(hub):
    auth = hub.urls["auth"]
    r = call(auth, "mockpanel.screens.faults:change_faults", ["auth"], {"fail_next": 2})
    assert r.status_code == 200 and wire.loads(r.content)["result"][0].fail_next == 2
    assert fail_next(auth) == 2
    call(auth, "mockpanel.screens.faults:clear_faults", ["auth"])
    for op, why in (("os:system", "UnknownOperation"), ("mockpanel.hubclient:_subscribe", "UnknownOperation"),
                    ("mockpanel.screens.app_ops:write_journal", "UnknownOperation"), ("builtins:eval", "UnknownOperation")):
        r = call(auth, op, "/tmp/owned", False)
        assert r.status_code == 404 and r.json()["error"] == why, op
    # an operation that takes a method name takes only its own
    r = call(auth, "mockpanel.screens.storage:storage_call", "__class__")
    assert r.status_code == 400 and "not a storage operation" in r.json()["detail"]
    r = call(auth, "mockpanel.screens.users:oidc_call", "_private_key")
    assert r.status_code == 400 and "not an OIDC operation" in r.json()["detail"]
    # wrong arguments are the caller's error, in JSON, not a 500
    r = call(auth, "mockpanel.screens.faults:change_faults", ["nope"], {})
    assert r.status_code == 400 and r.json()["error"] == "BadCall"
    r = call(auth, "mockpanel.hubclient:server_names", 1, 2, 3)
    assert r.status_code == 400 and r.json()["error"] == "BadCall"


def test_a_call_constructs_no_object_and_bounds_its_size_and_depth(hub):
    auth = hub.urls["auth"]
    policy = b'{"$o": "FaultPolicy", "v": {"fail_next": 9}}'  # a record type, named by the caller: not built
    r = call(auth, "", raw=b'{"op": "mockpanel.screens.faults:change_faults", "args": [["auth"], ' + policy + b"]}")
    assert r.status_code == 400 and "unknown tag" in r.json()["detail"]
    assert fail_next(auth) == 0
    r = call(auth, "", raw=b"[" * 100_000 + b"]" * 100_000)
    assert r.status_code == 400 and "nested deeper than 64 levels" in r.json()["detail"]  # refused at the door, by the guard
    r = call(auth, "", raw=b'{"op": "x", "args": ["' + b"a" * (2 * 1024 * 1024) + b'"]}')
    assert r.status_code == 413
    r = call(auth, "", raw=b"not json")
    assert r.status_code == 400 and "not valid JSON" in r.json()["detail"]
    assert httpx2.get(auth + "/health").status_code == 200


def test_a_page_on_another_site_can_neither_call_nor_listen(hub):
    auth = hub.urls["auth"]
    body = wire.dumps({"op": "mockpanel.screens.faults:change_faults", "args": [["auth"], {"fail_next": 5}]}).encode()
    for headers in ({"Origin": "http://evil.example", "Content-Type": "text/plain"}, {"Origin": "http://evil.example", "Content-Type": "application/json"},
                    {"Sec-Fetch-Site": "cross-site", "Content-Type": "application/json"}, {"Content-Type": "text/plain"}):
        r = httpx2.post(auth + CALL, content=body, headers=headers)
        assert r.status_code in (403, 415), headers
    assert fail_next(auth) == 0
    r = httpx2.get(auth + EVENTS, headers={"Origin": "http://evil.example"})
    assert r.status_code == 403 and "cross-site" in r.json()["detail"]
    r = httpx2.post(auth + CALL, content=body, headers={"Content-Type": "application/json", "Host": "attacker.example"})
    assert r.status_code == 403 and "allowed_hosts" in r.json()["detail"]


def test_the_admin_token_guards_attach_too():
    with RunningHub(settings_for(["auth"], environ={"MOCKPANEL_ADMIN_TOKEN": "s3cret"})) as running:
        auth = running.urls["auth"]
        assert call(auth, "mockpanel.hubclient:server_names").status_code == 401
        assert httpx2.get(auth + EVENTS).status_code == 401
        r = call(auth, "mockpanel.hubclient:server_names", headers={"Authorization": "Bearer s3cret"})
        assert r.status_code == 200 and wire.loads(r.content)["result"] == ("auth",)
        from mockpanel.attach import Disconnected, RemoteHubClient
        from mockpanel.hubclient import server_names

        with RemoteHubClient(auth) as anonymous, pytest.raises(Disconnected, match="admin token"):
            anonymous.read(server_names)
        with RemoteHubClient(auth, "s3cret") as panel:
            assert panel.read(server_names) == ("auth",)


def test_a_flood_keeps_an_attached_feed_bounded(hub):
    """A panel that stops reading (a stalled terminal) costs the mocks the newest few thousand items, not the flood:
    a real event stream held open unread while 3x its bound of requests arrive."""
    from mockpanel.panel_api import MAX_FEED_REQUESTS

    auth = hub.urls["auth"]
    with httpx2.Client() as unread, unread.stream("GET", auth + EVENTS) as stream:
        assert stream.status_code == 200
        feeds = hub.run(lambda: [s for s in hub.hub.bus.subscribers if type(s).__name__ == "Broadcast"])
        assert len(feeds) == 1
        with httpx2.Client() as client:
            for _ in range(MAX_FEED_REQUESTS * 3):
                client.get(auth + "/health")
        held = hub.run(lambda: len(feeds[0].requests) + len(feeds[0].events))
        assert held <= MAX_FEED_REQUESTS + 100
    assert httpx2.get(auth + "/health").status_code == 200


def test_a_browser_page_on_another_origin_cannot_drive_an_attached_mock(hub):
    auth = hub.urls["auth"]
    with page_on_another_site() as page:
        outcome = page.evaluate("""async (base) => {
            const call = JSON.stringify({op: 'mockpanel.screens.faults:change_faults', args: [['auth'], {fail_next: 7}]});
            await fetch(base + '/__mockpanel/panel/call', {method: 'POST', mode: 'no-cors', body: call,
                                                           headers: {'content-type': 'text/plain'}});
            let json = 'sent';
            try {
                await fetch(base + '/__mockpanel/panel/call', {method: 'POST', body: call, headers: {'content-type': 'application/json'}});
            } catch (e) { json = 'blocked'; }
            const heard = await new Promise((resolve) => {
                const source = new EventSource(base + '/__mockpanel/panel/events');
                source.onmessage = (m) => { source.close(); resolve('heard: ' + m.data.slice(0, 40)); };
                source.onerror = () => { source.close(); resolve('refused'); };
            });
            return [json, heard];
        }""", auth)
        assert outcome == ["blocked", "refused"]
    assert fail_next(auth) == 0


def test_every_panel_operation_answers_after_one_screen_was_imported_alone():
    """A process that imported one screen's module (a tool, a test) still answers every screen's operation: the
    operations are loaded once, all of them (it answered 404 UnknownOperation for the others)."""
    import subprocess
    import sys

    script = (
        "import httpx2, mockpanel.screens.app_ops\n"
        "from mockpanel import wire\n"
        "from mockpanel.testing import RunningHub, settings_for\n"
        "with RunningHub(settings_for(['auth'])) as running:\n"
        "    body = wire.dumps({'op': 'mockpanel.screens.faults:change_faults', 'args': [['auth'], {'fail_next': 1}]})\n"
        "    r = httpx2.post(running.urls['auth'] + '/__mockpanel/panel/call', content=body, headers={'content-type': 'application/json'})\n"
        "    print(r.status_code)\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "200", done.stderr[-2000:]
