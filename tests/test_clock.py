"""The mocks' one clock (clock.py), moved through PUT /__mockpanel/clock on any server, and seen through clients nobody
here wrote: a login token refused by /me and by PyJWT, a boto3 presigned URL expiring, lifecycle rules acting, a
webhook signed by the Standard Webhooks library going stale, openid-client refusing an ID token, a WireMock template's
`now`; the OIDC and S3 clocks as views of it; the journal keeping both times; and the refusals."""

from __future__ import annotations

import json
import os
import subprocess
import time
from datetime import datetime, timezone
from pathlib import Path

import httpx2
import jwt
import pytest

from conftest import make_s3_client, node_packages, page_on_another_site
from mockpanel.testing import Mocks, RunningHub, settings_for

NODE_CLIENTS = Path(__file__).resolve().parent / "node_clients"
SERVERS = ["auth", "s3", "webhooks", "imageapi", "partner"]


@pytest.fixture(scope="module")
def running(tmp_path_factory):
    mappings = tmp_path_factory.mktemp("partner") / "mappings"
    mappings.mkdir()
    (mappings / "now.json").write_text(json.dumps({"request": {"url": "/today"}, "response": {
        "status": 200, "transformers": ["response-template"], "body": "{{now format='yyyy-MM-dd HH:mm'}}|{{now format='unix'}}"}}))
    with Mocks(settings_for(SERVERS, stubs={"partner": {"mappings": str(mappings)}})) as hub:
        yield hub


@pytest.fixture(autouse=True)
def wall_clock(running):
    yield
    httpx2.delete(f"{running.urls['auth']}/__mockpanel/clock").raise_for_status()


def move(url: str, **change) -> dict:
    answer = httpx2.put(f"{url}/__mockpanel/clock", json=change)
    assert answer.status_code == 200, answer.text
    return answer.json()


def login(auth: str) -> str:
    answer = httpx2.post(f"{auth}/api/auth/login", json={"email": "alice@example.com", "password": "password123"})
    answer.raise_for_status()
    return answer.json()["access_token"]


def test_every_server_answers_the_one_clock(running):
    moved = move(running.urls["s3"], advance_s=3600)
    assert moved["virtual"] and not moved["frozen"] and 3599 < moved["offset_s"] < 3601
    for name in SERVERS:  # the same clock, whichever server is asked
        state = httpx2.get(f"{running.urls[name]}/__mockpanel/clock").json()
        assert 3599 < state["offset_s"] < 3601, name
    frozen = move(running.urls["webhooks"], now="2030-01-01T00:00:00Z", frozen=True)
    assert frozen["now"] == datetime(2030, 1, 1, tzinfo=timezone.utc).timestamp() and frozen["frozen"]
    assert httpx2.get(f"{running.urls['auth']}/__mockpanel/clock").json()["now"] == frozen["now"]  # frozen: it stays
    resumed = move(running.urls["auth"], frozen=False)
    assert not resumed["frozen"] and resumed["virtual"]
    back = httpx2.delete(f"{running.urls['imageapi']}/__mockpanel/clock").json()
    assert not back["virtual"] and abs(back["offset_s"]) < 1


def test_a_login_token_advanced_past_its_expiry_is_refused_by_me_and_by_pyjwt(running):
    auth = running.urls["auth"]
    move(auth, now=time.time() - 25 * 3600, frozen=True)  # a day and an hour ago: the seed's 24-hour token has ended by now
    token = login(auth)
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 24 * 3600 and claims["exp"] < time.time()
    assert httpx2.get(f"{auth}/api/auth/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200  # not yet, to the mock
    move(running.urls["s3"], advance_s=24 * 3600 + 1)  # any server moves every server's clock
    refused = httpx2.get(f"{auth}/api/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert refused.status_code == 401 and refused.json()["detail"] == "token has expired"
    with pytest.raises(jwt.ExpiredSignatureError):
        jwt.decode(token, running.setting("auth", "jwt_secret"), algorithms=["HS256"])


def test_a_boto3_presigned_url_expires_while_signed_calls_go_on(running):
    s3 = make_s3_client(running.urls["s3"])
    s3.create_bucket(Bucket="clocked")
    s3.put_object(Bucket="clocked", Key="report.pdf", Body=b"quarterly")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": "clocked", "Key": "report.pdf"}, ExpiresIn=900)
    assert httpx2.get(url).content == b"quarterly"
    move(running.urls["auth"], advance_s=901)
    expired = httpx2.get(url)
    assert expired.status_code == 403 and "<Code>AccessDenied</Code>" in expired.text and "Request has expired" in expired.text
    # boto3 signs with the wall clock: its requests are not "too skewed" because the mocks' time moved
    s3.put_object(Bucket="clocked", Key="later.txt", Body=b"x")
    assert s3.get_object(Bucket="clocked", Key="later.txt")["Body"].read() == b"x"


def test_lifecycle_rules_act_when_the_clock_moves_from_any_server(running):
    s3 = make_s3_client(running.urls["s3"])
    s3.create_bucket(Bucket="aging")
    s3.put_bucket_lifecycle_configuration(Bucket="aging", LifecycleConfiguration={"Rules": [
        {"ID": "week", "Status": "Enabled", "Filter": {"Prefix": "tmp/"}, "Expiration": {"Days": 7}}]})
    s3.put_object(Bucket="aging", Key="tmp/upload.bin", Body=b"1")
    s3.put_object(Bucket="aging", Key="keep.txt", Body=b"2")
    moved = move(running.urls["webhooks"], advance_s=8 * 86_400)
    assert moved["effects"]["s3"]["expired"] == 1
    assert [o["Key"] for o in s3.list_objects_v2(Bucket="aging")["Contents"]] == ["keep.txt"]
    assert httpx2.get(f"{running.urls['s3']}/__mockpanel/s3/clock").json()["offset_s"] == pytest.approx(8 * 86_400, abs=2)  # a view


def test_the_webhook_receiver_refuses_a_signature_older_than_its_tolerance(running):
    from standardwebhooks.webhooks import Webhook

    url = running.urls["webhooks"]
    secret = "whsec_" + "c2VjcmV0LWZvci10aGUtY2xvY2stdGVzdC0zMi1ieXRlcw=="
    httpx2.patch(f"{url}/__mockpanel/clients/billing", json={"secret": secret}).raise_for_status()
    payload, msg_id, now = '{"type":"invoice.paid"}', "msg_clock_1", datetime.now(timezone.utc)
    headers = {"webhook-id": msg_id, "webhook-timestamp": str(int(now.timestamp())),
               "webhook-signature": Webhook(secret).sign(msg_id, now, payload), "content-type": "application/json"}
    assert httpx2.post(f"{url}/webhooks/billing", content=payload, headers=headers).json()["signature"] == "valid"
    move(url, advance_s=301)  # the tolerance is 300 s
    stale = httpx2.post(f"{url}/webhooks/billing", content=payload, headers=headers).json()
    assert stale["signature"] == "invalid"
    reason = httpx2.get(f"{url}/webhooks/events/{stale['event_id']}").json()["signature"]["reason"]
    assert reason.startswith("timestamp is 30") and "old; tolerance is 300s" in reason


def test_openid_client_sees_an_expired_id_token(running):
    node_packages(NODE_CLIENTS, "openid-client", "openid-client")
    auth = running.urls["auth"]

    def refresh_with_openid_client() -> dict:
        tokens = running.oidc_tokens("alice@example.com", "test-client")
        env = {**os.environ, "ISSUER": auth, "CLIENT_ID": "test-client", "REFRESH_TOKEN": tokens["refresh_token"]}
        done = subprocess.run(["node", "refresh.mjs"], cwd=NODE_CLIENTS, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]
        return json.loads(done.stdout.strip().splitlines()[-1])

    fresh = refresh_with_openid_client()
    assert fresh["ok"] and fresh["claims"]["sub"] == "test-user-123"
    move(auth, now=time.time() - 2 * 3600, frozen=True)  # the issuer's ID tokens ended an hour ago, by the wall clock
    late = refresh_with_openid_client()
    assert not late["ok"] and late["code"] == "OAUTH_JWT_TIMESTAMP_CHECK_FAILED", late


def test_the_oidc_clock_is_a_view_of_the_one_clock(running):
    auth = running.urls["auth"]
    httpx2.put(f"{auth}/__mockpanel/oidc/clock", json={"now": 2_000_000_000}).raise_for_status()
    assert httpx2.get(f"{running.urls['s3']}/__mockpanel/clock").json() | {"wall": 0, "offset_s": 0} == {
        "now": 2_000_000_000, "now_iso": "2033-05-18T03:33:20.000Z", "wall": 0, "offset_s": 0, "frozen": True, "virtual": True}
    issued = httpx2.post(f"{auth}/oauth2/token", data={"grant_type": "client_credentials", "client_id": "orders"}).json()
    assert jwt.decode(issued["access_token"], options={"verify_signature": False})["iat"] == 2_000_000_000
    assert httpx2.get(f"{auth}/__mockpanel/oidc").json()["issuers"][0]["fixed_now"] == 2_000_000_000


def test_a_stub_templates_now_and_the_journal_read_the_mocks_time(running):
    partner = running.urls["partner"]
    move(partner, now="2031-02-03T04:05:00Z", frozen=True)
    assert httpx2.get(f"{partner}/today").text == f"2031-02-03 04:05|{int(datetime(2031, 2, 3, 4, 5, tzinfo=timezone.utc).timestamp())}"
    entry = httpx2.get(f"{partner}/__mockpanel/requests", params={"path": "/today"}).json()["requests"][-1]
    assert entry["mock_time"] == datetime(2031, 2, 3, 4, 5, tzinfo=timezone.utc).timestamp()
    assert abs(entry["time"] - time.time()) < 60  # wall time stays beside it
    httpx2.delete(f"{partner}/__mockpanel/clock")
    assert httpx2.get(f"{partner}/today").text.startswith(time.strftime("%Y-%m-%d", time.gmtime()))
    assert httpx2.get(f"{partner}/__mockpanel/requests", params={"path": "/today"}).json()["requests"][-1]["mock_time"] is None


def test_the_image_api_judges_tokens_by_the_mocks_clock(running):
    api = running.urls["imageapi"]
    token = jwt.encode({"sub": "u1", "exp": int(time.time()) + 60}, running.setting("imageapi", "jwt_secret"), algorithm="HS256")
    files = {"file": ("a.png", _png(), "image/png")}
    assert httpx2.post(f"{api}/api/v1/images/upload", files=files, headers={"Authorization": f"Bearer {token}"}).status_code == 202
    move(api, advance_s=120)
    late = httpx2.post(f"{api}/api/v1/images/upload", files=files, headers={"Authorization": f"Bearer {token}"})
    assert late.status_code == 401 and late.json()["detail"] == "token has expired"


def _png() -> bytes:
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (4, 4), "red").save(out, "PNG")
    return out.getvalue()


# --- refusals ---


@pytest.mark.parametrize("body", [
    {"now": 1e308}, {"now": -5}, {"advance_s": 1e12}, {"advance_s": "soon"}, {"now": "next tuesday"}, {"frozen": "yes"},
    {"now": True}, {"tick": 1}, {}, [], "x" * 100, {"now": "9" * 4000},
])
def test_a_hostile_value_gets_a_json_422_and_leaves_the_clock(running, body):
    url = running.urls["auth"]
    answer = httpx2.put(f"{url}/__mockpanel/clock", json=body)
    assert answer.status_code == 422 and answer.headers["content-type"].startswith("application/json") and answer.json()["detail"]
    assert httpx2.get(f"{url}/__mockpanel/clock").json()["virtual"] is False


def test_not_json_is_a_json_400(running):
    answer = httpx2.put(f"{running.urls['s3']}/__mockpanel/clock", content=b"{advance", headers={"content-type": "application/json"})
    assert answer.status_code == 400 and "JSON" in answer.json()["detail"]


def test_the_clock_wants_the_admin_token_when_one_is_set():
    with RunningHub(settings_for(["auth"], {"mockpanel": {"admin_token": "clock-token"}})) as hub:
        url = f"{hub.urls['auth']}/__mockpanel/clock"
        assert httpx2.put(url, json={"advance_s": 60}).status_code == 401
        assert httpx2.get(url).status_code == 401
        allowed = httpx2.put(url, json={"advance_s": 60}, headers={"Authorization": "Bearer clock-token"})
        assert allowed.status_code == 200 and allowed.json()["virtual"]


def test_a_page_on_another_site_cannot_move_the_clock(running):
    url = running.urls["auth"]
    with page_on_another_site() as page:
        outcome = page.evaluate("""async (base) => {
            const tried = [];
            for (const method of ['PUT', 'DELETE', 'POST']) {
                try {
                    await fetch(base + '/__mockpanel/clock', {method, mode: 'no-cors', body: method === 'DELETE' ? null :
                                '{"advance_s": 86400}', headers: {'content-type': 'text/plain'}});
                    tried.push(method + ' sent');
                } catch (e) { tried.push(method + ' blocked'); }
            }
            try { await (await fetch(base + '/__mockpanel/clock')).json(); tried.push('read'); } catch (e) { tried.push('unread'); }
            return tried;
        }""", url)
    assert outcome[-1] == "unread"  # no CORS: the page cannot read the mocks' time either
    assert httpx2.get(f"{url}/__mockpanel/clock").json()["virtual"] is False  # whatever it sent, nothing moved


# --- the pytest plugin, scenarios, the panel ---


def test_the_pytest_plugin_moves_the_clock_and_puts_it_back(pytester):
    pytester.makeini("[pytest]\nmockpanel_servers = auth s3\n")
    pytester.makepyfile(test_expiry='''
import datetime, httpx2, jwt, pytest

def login(mockpanel):
    answer = httpx2.post(mockpanel.url("auth") + "/api/auth/login", json={"email": "alice@example.com", "password": "password123"})
    return answer.json()["access_token"]

def test_my_client_sees_the_token_expire(mockpanel):
    token = login(mockpanel)
    me = mockpanel.url("auth") + "/api/auth/me"
    assert httpx2.get(me, headers={"Authorization": "Bearer " + token}).status_code == 200
    later = mockpanel.clock.advance(hours=24, seconds=1)
    assert later > datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=23)
    answer = httpx2.get(me, headers={"Authorization": "Bearer " + token})
    assert answer.status_code == 401 and answer.json()["detail"] == "token has expired"

def test_the_next_test_starts_on_the_wall_clock(mockpanel):
    assert mockpanel.clock.state()["virtual"] is False

def test_the_clock_fixture(mockpanel_clock):
    frozen = mockpanel_clock.set(datetime.datetime(2030, 1, 1), frozen=True)
    assert frozen.isoformat() == "2030-01-01T00:00:00+00:00" and mockpanel_clock.now() == frozen
    assert mockpanel_clock.advance(datetime.timedelta(days=1)).day == 2
    assert mockpanel_clock.resume().year == 2030
    with pytest.raises(Exception, match="between 1970 and 9999"):
        mockpanel_clock.advance(days=-365 * 80)

def test_after_the_clock_fixture(mockpanel_session):
    assert mockpanel_session.clock.state()["virtual"] is False
''')
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=4)


def test_a_scenario_step_moves_the_clock(running):
    url = running.urls["s3"]
    with running.scenario('[[step]]\nat = 0\nclock = { now = "2040-06-01T12:00:00Z", frozen = true }\n'
                          '[[step]]\nat = "50ms"\nclock = { advance_s = 3600 }\n') as run:
        assert httpx2.get(f"{url}/__mockpanel/clock").json()["now_iso"] == "2040-06-01T12:00:00.000Z"  # a step at 0 is in force
        deadline = time.monotonic() + 20
        while running.run(lambda: len(run.done_steps)) < 2 and time.monotonic() < deadline:  # the second step's event
            time.sleep(0.02)
        assert httpx2.get(f"{url}/__mockpanel/clock").json()["now_iso"] == "2040-06-01T13:00:00.000Z"


@pytest.mark.parametrize("step, why", [
    ('[[step]]\nclock = { advance_s = 60 }\nserver = "auth"\n', "a clock step has only at and clock"),
    ('[[step]]\nclock = { advance_s = "soon" }\n', "clock: advance_s must be a number of seconds"),
    ('[[step]]\nclock = { tick = 1 }\n', "unknown clock field"),
])
def test_a_clock_step_that_does_not_fit_says_why(step, why):
    from mockpanel.scenario import ScenarioError, parse_scenario, tomllib

    with pytest.raises(ScenarioError, match=why):
        parse_scenario(tomllib.loads(step), ["auth"])


async def test_the_panels_key_moves_the_clock_and_the_header_shows_it():
    import asyncio

    from conftest import until
    from mockpanel.app import create_app

    app = create_app(settings_for(["auth", "s3"]))
    async with app.run_test(size=(120, 36)) as pilot:
        url = app.hub.urls()["auth"]
        assert "⏱" not in app.sub_title  # the wall clock is not shown

        async def clock() -> dict:
            return (await asyncio.to_thread(httpx2.get, f"{url}/__mockpanel/clock")).json()

        await pilot.press("@", "ctrl+a", "ctrl+k", *"+2h", "enter")
        await until(pilot, lambda: "⏱" in app.sub_title and app.sub_title.endswith("+2h"))
        assert 7199 < (await clock())["offset_s"] < 7201
        await pilot.press("@", "ctrl+a", "ctrl+k", *"freeze", "enter")
        await until(pilot, lambda: app.sub_title.endswith("+2h frozen"))
        assert (await clock())["frozen"]
        await pilot.press("@", "ctrl+a", "ctrl+k", *"next week", "enter")
        assert any(n.title == "Clock not moved" and "+1h, -2d" in n.message for n in app._notifications)
        await pilot.press("@", "ctrl+a", "ctrl+k", *"2030-01-01T00:00:00Z", "enter")
        await until(pilot, lambda: "⏱ 2030-01-01 00:00:00Z" in app.sub_title)
        await pilot.press("@", "ctrl+a", "ctrl+k", *"wall", "enter")
        await until(pilot, lambda: "⏱" not in app.sub_title)
        assert (await clock())["virtual"] is False


async def test_an_attached_panel_moves_the_clock_of_the_mocks_it_watches():
    import asyncio

    from conftest import ServeProcess, until
    from mockpanel.app import attached_app

    with ServeProcess("--only", "auth", "--auth-port", "0", "--quiet") as proc:
        url = proc.urls(1)["auth"]
        app = attached_app(url)
        async with app.run_test(size=(120, 36)) as pilot:
            await pilot.press("@", "ctrl+a", "ctrl+k", *"-3d", "enter")
            await until(pilot, lambda: app.sub_title.endswith("-3d"))
            state = (await asyncio.to_thread(httpx2.get, f"{url}/__mockpanel/clock")).json()
            assert -3 * 86_400 - 1 < state["offset_s"] < -3 * 86_400 + 1


def test_the_docs_pytest_example_runs_as_written(pytester):
    import re

    from conftest import documentation

    match = re.search(r"<!-- example: clock-pytest -->\n```python\n(.*?)```", documentation(), re.S)
    assert match, "docs/time.md lost its pytest example"
    pytester.makeini("[pytest]\nmockpanel_servers = auth\n")
    pytester.makepyfile(test_time=match.group(1))
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=2)


def test_the_docs_curl_line_advances_the_clock_and_lifecycle_acts(running):
    import re
    import shlex

    from conftest import documentation

    block = re.search(r"<!-- example: clock-curl -->\n```\n\$ (.*?)\n(.*?)```", documentation(), re.S)
    assert block, "docs/time.md lost its curl example"
    s3 = make_s3_client(running.urls["s3"])
    s3.create_bucket(Bucket="docs-example")
    s3.put_bucket_lifecycle_configuration(Bucket="docs-example", LifecycleConfiguration={"Rules": [
        {"ID": "week", "Status": "Enabled", "Filter": {}, "Expiration": {"Days": 7}}]})
    s3.put_object(Bucket="docs-example", Key="old.csv", Body=b"x")
    command = shlex.split(block.group(1).replace("localhost:9000", running.urls["s3"].removeprefix("http://")))
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    answer = json.loads(done.stdout)
    shown = json.loads(block.group(2).replace("\n", ""))
    assert set(answer) == set(shown) and answer["effects"] == shown["effects"]
    assert 691199 < answer["offset_s"] < 691201
