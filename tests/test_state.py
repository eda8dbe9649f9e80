"""Snapshots of every mock's state (state.py): saved through GET /__mockpanel/state, the mocks reset, loaded through
PUT — and every client nobody here wrote sees what it saw before: boto3 (buckets, configuration, objects large and
small, versions, delete markers), the seeds' auth calls, the WireMock admin client (mappings and a scenario's
state), openid-client (a refresh token from before the save still refreshes, signed by the same key), the webhook
receiver's events; faults, toxics and the clock too. Then the format (versioned, diffable, content-addressed), all
or nothing, a newer format refused, hostile archives, a save under traffic, --state at start, the pytest plugin,
the panel's key."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import threading
from pathlib import Path

import httpx2
import pytest

from conftest import ServeProcess, make_s3_client, node_packages, page_on_another_site
from mockpanel.testing import Mocks, settings_for

NODE_CLIENTS = Path(__file__).resolve().parent / "node_clients"
SERVERS = ["auth", "s3", "webhooks", "partner"]


@pytest.fixture
def mocks(tmp_path):
    mappings = tmp_path / "mappings"
    mappings.mkdir()
    with Mocks(settings_for(SERVERS, stubs={"partner": {"mappings": str(mappings)}})) as running:
        yield running


def tar_of(running, server: str = "auth") -> bytes:
    answer = httpx2.get(f"{running.urls[server]}/__mockpanel/state")
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/x-tar"
    return answer.content


def put_tar(running, archive: bytes, server: str = "s3") -> httpx2.Response:
    return httpx2.put(f"{running.urls[server]}/__mockpanel/state", content=archive, headers={"content-type": "application/x-tar"})


def refresh_with_openid_client(issuer: str, refresh_token: str) -> dict:
    env = {**os.environ, "ISSUER": issuer, "CLIENT_ID": "test-client", "REFRESH_TOKEN": refresh_token}
    done = subprocess.run(["node", "refresh.mjs"], cwd=NODE_CLIENTS, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def make_state(running) -> dict:
    """What a day of testing leaves in the mocks, made through their clients."""
    from wiremock.client import Mapping, MappingRequest, MappingResponse, Mappings
    from wiremock.constants import Config

    auth, s3_url, webhooks, partner = (running.urls[n] for n in SERVERS)
    assert httpx2.post(f"{auth}/api/auth/register", json={"email": "kept@example.com", "password": "password123",
                                                          "name": "Kept"}).status_code == 201
    s3 = make_s3_client(s3_url)
    s3.create_bucket(Bucket="photos")
    s3.put_bucket_tagging(Bucket="photos", Tagging={"TagSet": [{"Key": "team", "Value": "web"}]})
    s3.put_bucket_cors(Bucket="photos", CORSConfiguration={"CORSRules": [{"AllowedMethods": ["GET"], "AllowedOrigins": ["*"]}]})
    s3.put_object(Bucket="photos", Key="small.txt", Body=b"small body", Metadata={"owner": "alice"})
    big = os.urandom(700_000)  # over the in-memory threshold: a spooled file
    s3.put_object(Bucket="photos", Key="big.bin", Body=big)
    s3.put_object(Bucket="photos", Key="copy-of-small.txt", Body=b"small body")  # the same bytes: one blob
    s3.create_bucket(Bucket="history")
    s3.put_bucket_versioning(Bucket="history", VersioningConfiguration={"Status": "Enabled"})
    first = s3.put_object(Bucket="history", Key="doc", Body=b"v1")["VersionId"]
    s3.put_object(Bucket="history", Key="doc", Body=b"v2")
    s3.delete_object(Bucket="history", Key="doc")  # a delete marker on top
    httpx2.post(f"{webhooks}/webhooks/shop", json={"event_type": "order.paid", "id": 7})
    old = Config.base_url
    Config.base_url = partner + "/__admin"
    try:
        for required, new, body in (("Started", "Paid", "unpaid"), ("Paid", None, "paid")):
            Mappings.create_mapping(Mapping(scenario_name="invoice", required_scenario_state=required, new_scenario_state=new,
                                            request=MappingRequest(method="GET", url="/invoice"), response=MappingResponse(status=200, body=body)))
    finally:
        Config.base_url = old
    assert httpx2.get(f"{partner}/invoice").text == "unpaid"  # the scenario moved on to Paid
    httpx2.patch(f"{s3_url}/__mockpanel/faults", json={"delay_enabled": True, "min_delay_ms": 1, "max_delay_ms": 2}).raise_for_status()
    httpx2.post(f"{auth}/__mockpanel/toxiproxy/proxies/webhooks/toxics", json={"type": "latency", "attributes": {"latency": 5}}).raise_for_status()
    httpx2.put(f"{auth}/__mockpanel/clock", json={"now": "2031-05-06T07:08:09Z", "frozen": True}).raise_for_status()
    tokens = running.oidc_tokens("alice@example.com", "test-client")
    return {"big": big, "first_version": first, "tokens": tokens, "kid": httpx2.get(f"{auth}/jwks").json()["keys"][0]["kid"]}


def test_save_reset_load_and_every_client_sees_the_same_state(mocks):
    made = make_state(mocks)
    archive = tar_of(mocks, "webhooks")  # any server answers every mock's state
    mocks.reset()
    auth, s3_url, webhooks, partner = (mocks.urls[n] for n in SERVERS)
    httpx2.delete(f"{partner}/__admin/mappings").raise_for_status()  # a stub server's reset keeps what the admin API added
    s3 = make_s3_client(s3_url)
    assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == [] and httpx2.get(f"{partner}/invoice").status_code == 404

    answer = put_tar(mocks, archive)
    assert answer.status_code == 200, answer.text
    assert answer.json()["loaded"] == SERVERS and answer.json()["skipped"] == []

    # the seeds' calls: the registered user logs in with the same password
    login = httpx2.post(f"{auth}/api/auth/login", json={"email": "kept@example.com", "password": "password123"})
    assert login.status_code == 200
    assert httpx2.get(f"{auth}/api/auth/me", headers={"Authorization": f"Bearer {login.json()['access_token']}"}).json()["name"] == "Kept"
    # boto3: buckets, their configuration, bodies and metadata, versions and the delete marker
    assert sorted(b["Name"] for b in s3.list_buckets()["Buckets"]) == ["history", "photos"]
    assert s3.get_bucket_tagging(Bucket="photos")["TagSet"] == [{"Key": "team", "Value": "web"}]
    assert s3.get_bucket_cors(Bucket="photos")["CORSRules"][0]["AllowedOrigins"] == ["*"]
    small = s3.get_object(Bucket="photos", Key="small.txt")
    assert small["Body"].read() == b"small body" and small["Metadata"] == {"owner": "alice"}
    assert s3.get_object(Bucket="photos", Key="big.bin")["Body"].read() == made["big"]
    versions = s3.list_object_versions(Bucket="history", Prefix="doc")
    assert [v["IsLatest"] for v in versions["Versions"]] == [False, False] and versions["DeleteMarkers"][0]["IsLatest"]
    assert s3.get_object(Bucket="history", Key="doc", VersionId=made["first_version"])["Body"].read() == b"v1"
    # the WireMock admin client: the mappings, and the scenario where it was
    assert httpx2.get(f"{partner}/invoice").text == "paid"
    assert len(httpx2.get(f"{partner}/__admin/mappings").json()["mappings"]) == 2
    # the webhook receiver's events
    events = httpx2.get(f"{webhooks}/webhooks/events").json()
    assert events["total"] == 1 and httpx2.get(f"{webhooks}/webhooks/events/{events['events'][0]['id']}").json()["json"]["id"] == 7
    # faults, toxics, the clock
    assert httpx2.get(f"{s3_url}/__mockpanel/faults").json()["delay_enabled"] is True
    toxics = httpx2.get(f"{auth}/__mockpanel/toxiproxy/proxies/webhooks/toxics").json()
    assert [t["type"] for t in toxics] == ["latency"]
    assert httpx2.get(f"{auth}/__mockpanel/clock").json()["now_iso"] == "2031-05-06T07:08:09.000Z"
    # the same signing key, and openid-client refreshes with a refresh token issued before the save
    assert httpx2.get(f"{auth}/jwks").json()["keys"][0]["kid"] == made["kid"]
    node_packages(NODE_CLIENTS, "openid-client", "openid-client")
    httpx2.delete(f"{auth}/__mockpanel/clock")  # openid-client judges the new ID token by the wall clock
    refreshed = refresh_with_openid_client(auth, made["tokens"]["refresh_token"])
    assert refreshed["ok"] and refreshed["claims"]["sub"] == "test-user-123", refreshed


def test_the_directory_format_is_versioned_diffable_and_content_addressed(mocks, tmp_path):
    make_state(mocks)
    target = tmp_path / "snapshot"
    mocks.save_state(target)
    manifest = json.loads((target / "manifest.json").read_text())
    assert manifest["format"] == "mockpanel-state" and manifest["version"] == 1 and manifest["servers"] == SERVERS
    assert manifest["clock"]["frozen"] is True
    text = (target / "servers" / "s3.json").read_text()
    assert text == json.dumps(json.loads(text), indent=1, sort_keys=True, ensure_ascii=False) + "\n"  # one value a line, sorted
    blobs = sorted((target / "blobs" / "sha256").iterdir())
    assert all(hashlib.sha256(b.read_bytes()).hexdigest() == b.name for b in blobs)
    small = hashlib.sha256(b"small body").hexdigest()
    records = {o["key"]: o for b in json.loads(text)["buckets"] for o in b["objects"]}
    assert records["small.txt"]["blob"] == records["copy-of-small.txt"]["blob"] == small  # stored once
    users = json.loads((target / "servers" / "auth.json").read_text())["users"]
    assert any(u["email"] == "kept@example.com" and u["password_hash"].startswith("$2") for u in users)
    # a second save of the same state is the same text: the diff of two snapshots is what changed
    again = tmp_path / "again"
    mocks.save_state(again)
    for name in ("servers/s3.json", "servers/auth.json", "servers/partner.json"):
        assert (again / name).read_text() == (target / name).read_text(), name
    mocks.reset()
    assert mocks.load_state(target)["loaded"] == SERVERS
    assert make_s3_client(mocks.urls["s3"]).get_object(Bucket="photos", Key="small.txt")["Body"].read() == b"small body"


def test_a_snapshot_from_a_newer_format_is_refused_and_nothing_changes(mocks, tmp_path):
    from mockpanel.state import StateError

    make_state(mocks)
    target = tmp_path / "snapshot"
    mocks.save_state(target)
    manifest = json.loads((target / "manifest.json").read_text())
    (target / "manifest.json").write_text(json.dumps({**manifest, "version": 2, "mockpanel": "9.0.0"}))
    mocks.reset()
    with pytest.raises(StateError, match="format version 2, written by a newer mockpanel .9.0.0.*reads up to version 1"):
        mocks.load_state(target)
    assert len(httpx2.get(f"{mocks.urls['auth']}/api/auth/users").json()["users"]) == 5


def test_loading_is_all_or_nothing(mocks, tmp_path):
    make_state(mocks)
    target = tmp_path / "snapshot"
    mocks.save_state(target)
    # the S3 part refers to a blob torn after the save: the auth part, prepared first, must not apply
    records = json.loads((target / "servers" / "s3.json").read_text())
    torn = next(o["blob"] for b in records["buckets"] for o in b["objects"] if o["key"] == "big.bin")
    blob = target / "blobs" / "sha256" / torn
    blob.write_bytes(blob.read_bytes()[:-1] + b"!")
    assert hashlib.sha256(blob.read_bytes()).hexdigest() != torn
    mocks.reset()
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        for path in sorted(target.rglob("*")):
            if path.is_file():
                tar.add(path, arcname=path.relative_to(target).as_posix())
    answer = put_tar(mocks, archive.getvalue())
    assert answer.status_code == 422 and "does not match its name" in answer.json()["detail"]
    users = httpx2.get(f"{mocks.urls['auth']}/api/auth/users").json()["users"]
    assert [u["email"] for u in users if u["email"] == "kept@example.com"] == []  # auth was not loaded either
    assert httpx2.get(f"{mocks.urls['auth']}/__mockpanel/clock").json()["virtual"] is False
    from mockpanel.state import StateError

    with pytest.raises(StateError, match="does not match its name"):  # the directory itself: the same refusal
        mocks.load_state(target)
    assert not [p for p in mocks.run(lambda: list(mocks.hub.facade("s3").store.data_dir.iterdir()))]  # nothing staged is left


def _tar(members: list[tuple[tarfile.TarInfo, bytes]]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for info, data in members:
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def _link(name: str, target: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = tarfile.SYMTYPE, target
    return info


@pytest.mark.parametrize("archive, why", [
    (b"not a tar at all" * 100, "not a state archive"),
    (_tar([(tarfile.TarInfo("../../escape.json"), b"{}")]), "not part of a mockpanel snapshot"),
    (_tar([(tarfile.TarInfo("/etc/passwd"), b"x")]), "not part of a mockpanel snapshot"),
    (_tar([(_link("manifest.json", "/etc/passwd"), b"")]), "not part of a mockpanel snapshot"),
    (_tar([(tarfile.TarInfo("servers/../../x.json"), b"{}")]), "not part of a mockpanel snapshot"),
    (_tar([(tarfile.TarInfo("manifest.json"), b'{"format": "something-else", "version": 1}')]), "not a mockpanel snapshot"),
    (_tar([(tarfile.TarInfo("manifest.json"), b'{"format": "mockpanel-state", "version": 1, "servers": ["s3"]}'),
           (tarfile.TarInfo("hub.json"), b"{}"), (tarfile.TarInfo("servers/s3.json"), b'{"buckets": [{"name": "../x"}]}')]), "not a bucket name"),
    (_tar([(tarfile.TarInfo("manifest.json"), b"[" * 100_000)]), "not valid JSON"),
    (b"", "send a state archive"),
], ids=["not-tar", "dot-dot", "absolute", "symlink", "inner-dot-dot", "other-format", "bad-bucket", "deep-json", "empty"])
def test_a_hostile_archive_gets_a_json_422_and_nothing_changes(mocks, archive, why):
    answer = put_tar(mocks, archive)
    assert answer.status_code == 422 and why in answer.json()["detail"], answer.text
    assert len(httpx2.get(f"{mocks.urls['auth']}/api/auth/users").json()["users"]) == 5


def test_the_state_wants_the_admin_token_and_the_archive_type():
    with Mocks(settings_for(["auth"], {"mockpanel": {"admin_token": "state-token"}})) as running:
        url = f"{running.urls['auth']}/__mockpanel/state"
        assert httpx2.get(url).status_code == 401
        assert httpx2.put(url, content=b"x", headers={"content-type": "application/x-tar"}).status_code == 401
        token = {"Authorization": "Bearer state-token"}
        archive = httpx2.get(url, headers=token).content
        assert httpx2.put(url, content=archive, headers={**token, "content-type": "text/plain"}).status_code == 415
        assert httpx2.put(url, content=archive, headers={**token, "content-type": "application/x-tar"}).status_code == 200


def test_a_page_on_another_site_can_neither_read_nor_load_the_state(mocks):
    url = mocks.urls["auth"]
    httpx2.post(f"{url}/api/auth/register", json={"email": "victim@example.com", "password": "password123", "name": "V"})
    with page_on_another_site() as page:
        outcome = page.evaluate("""async (base) => {
            let read = 'unread';
            try { read = (await (await fetch(base + '/__mockpanel/state')).arrayBuffer()).byteLength; } catch (e) { read = 'blocked'; }
            try { await fetch(base + '/__mockpanel/state', {method: 'PUT', body: 'x', headers: {'content-type': 'application/x-tar'}}); }
            catch (e) { /* its preflight gets no CORS answer: the browser never sends it */ }
            await fetch(base + '/__mockpanel/state', {method: 'POST', mode: 'no-cors', body: 'x', headers: {'content-type': 'text/plain'}});
            return read;
        }""", url)
    assert outcome == "blocked"  # the password hashes and signing keys in a snapshot are not readable from a page
    users = httpx2.get(f"{url}/api/auth/users").json()["users"]
    assert any(u["email"] == "victim@example.com" for u in users)  # nothing was loaded over them


def test_a_save_during_traffic_is_consistent(mocks, tmp_path):
    """Objects overwritten and deleted while a snapshot is written: every object in it has the body its record says
    (its MD5 is its ETag), none torn, none missing."""
    s3 = make_s3_client(mocks.urls["s3"])
    s3.create_bucket(Bucket="busy")
    for i in range(40):
        s3.put_object(Bucket="busy", Key=f"k{i}", Body=os.urandom(300_000))
    stop = threading.Event()

    def churn() -> None:
        client = make_s3_client(mocks.urls["s3"])
        i = 0
        while not stop.is_set():
            client.put_object(Bucket="busy", Key=f"k{i % 40}", Body=os.urandom(300_000))
            client.delete_object(Bucket="busy", Key=f"k{(i + 7) % 40}")
            i += 1

    worker = threading.Thread(target=churn)
    worker.start()
    try:
        for n in range(3):
            target = tmp_path / f"busy-{n}"
            mocks.save_state(target)
            bucket = next(b for b in json.loads((target / "servers" / "s3.json").read_text())["buckets"] if b["name"] == "busy")
            for record in bucket["objects"]:
                body = (target / "blobs" / "sha256" / record["blob"]).read_bytes()
                assert len(body) == record["size"] and f'"{hashlib.md5(body).hexdigest()}"' == record["etag"], record["key"]
    finally:
        stop.set()
        worker.join()


def test_save_and_load_stream_bodies_instead_of_holding_them(mocks, tmp_path):
    import tracemalloc

    s3 = make_s3_client(mocks.urls["s3"])
    s3.create_bucket(Bucket="large")
    body = os.urandom(48 * 1024 * 1024)
    s3.put_object(Bucket="large", Key="video.bin", Body=body)
    expected = hashlib.md5(body).hexdigest()
    del body
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        mocks.save_state(tmp_path / "large.tar")
        mocks.reset()
        mocks.load_state(tmp_path / "large.tar")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 * 1024 * 1024, f"{peak / 1024 / 1024:.1f} MiB held for a 48 MiB object"
    assert s3.head_object(Bucket="large", Key="video.bin")["ETag"] == f'"{expected}"'


def test_serve_starts_from_a_state_file_and_refuses_a_bad_one(tmp_path):
    with Mocks(settings_for(["auth"])) as running:
        httpx2.post(f"{running.urls['auth']}/api/auth/register", json={"email": "ci@example.com", "password": "password123", "name": "CI"})
        archive = tar_of(running)
    (tmp_path / "state.tar").write_bytes(archive)
    with ServeProcess("--only", "auth", "--auth-port", "0", "--state", str(tmp_path / "state.tar"), "--quiet") as proc:
        url = proc.urls(1)["auth"]
        assert httpx2.post(f"{url}/api/auth/login", json={"email": "ci@example.com", "password": "password123"}).status_code == 200
    (tmp_path / "mockpanel.toml").write_text('[mockpanel]\nstate = "state.tar"\n')
    with ServeProcess("--only", "auth", "--auth-port", "0", "--quiet", cwd=tmp_path) as proc:  # [mockpanel] state = in the config
        url = proc.urls(1)["auth"]
        assert httpx2.post(f"{url}/api/auth/login", json={"email": "ci@example.com", "password": "password123"}).status_code == 200
    (tmp_path / "torn.tar").write_bytes(archive[:700])  # cut inside its first member (the end is a tar's zero padding)
    done = subprocess.run([sys.executable, "-m", "mockpanel", "serve", "--only", "auth", "--auth-port", "0",
                           "--state", str(tmp_path / "torn.tar")], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert done.returncode == 2 and "state " in done.stderr and "torn.tar" in done.stderr, done.stderr


def test_the_pytest_plugin_starts_every_test_from_a_snapshot(pytester, tmp_path):
    with Mocks(settings_for(["auth"])) as running:
        httpx2.post(f"{running.urls['auth']}/api/auth/register", json={"email": "fixture@example.com", "password": "password123", "name": "F"})
        running.save_state(tmp_path / "start")
    pytester.makeini(f"[pytest]\nmockpanel_servers = auth\nmockpanel_state = {tmp_path / 'start'}\n")
    pytester.makepyfile(test_from_state='''
import httpx2

def users(mockpanel):
    return [u["email"] for u in httpx2.get(mockpanel.url("auth") + "/api/auth/users").json()["users"]]

def test_first(mockpanel):
    assert "fixture@example.com" in users(mockpanel)
    httpx2.post(mockpanel.url("auth") + "/api/auth/register", json={"email": "only-here@example.com", "password": "password123", "name": "O"})

def test_second_starts_from_the_snapshot_again(mockpanel, tmp_path):
    assert "fixture@example.com" in users(mockpanel) and "only-here@example.com" not in users(mockpanel)
    saved = mockpanel.save_state(tmp_path / "mine.tar")
    assert saved["servers"] == ["auth"]
''')
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=2)


async def test_the_panels_key_saves_and_loads(tmp_path):
    import asyncio

    from conftest import until
    from mockpanel.app import create_app

    app = create_app(settings_for(["auth"]))
    async with app.run_test(size=(120, 36)) as pilot:
        auth = app.hub.urls()["auth"]
        await asyncio.to_thread(httpx2.post, f"{auth}/api/auth/register", json={"email": "pane@example.com", "password": "password123", "name": "P"})
        target = tmp_path / "panel.tar"
        await pilot.press("$", "ctrl+a", "ctrl+k", *f"save {target}", "enter")
        await until(pilot, target.exists)
        await asyncio.to_thread(httpx2.delete, f"{auth}/api/auth/users/reset")
        await pilot.press("$", "ctrl+a", "ctrl+k", *f"load {target}", "enter")
        await until(pilot, lambda: any(n.message.startswith("state loaded from") for n in app._notifications))
        users = (await asyncio.to_thread(httpx2.get, f"{auth}/api/auth/users")).json()["users"]
        assert any(u["email"] == "pane@example.com" for u in users)
        await pilot.press("$", "ctrl+a", "ctrl+k", *f"load {tmp_path / 'missing.tar'}", "enter")
        await until(pilot, lambda: any(n.title == "State not loaded" for n in app._notifications))


async def test_an_attached_panel_saves_to_its_own_machine_and_loads_from_it(tmp_path):
    import asyncio

    from conftest import until
    from mockpanel.app import attached_app

    with ServeProcess("--only", "auth", "--auth-port", "0", "--quiet") as proc:
        url = proc.urls(1)["auth"]
        await asyncio.to_thread(httpx2.post, f"{url}/api/auth/register", json={"email": "far@example.com", "password": "password123", "name": "F"})
        app = attached_app(url)
        async with app.run_test(size=(120, 36)) as pilot:
            target = tmp_path / "far"
            await pilot.press("$", "ctrl+a", "ctrl+k", *f"save {target}", "enter")
            await until(pilot, lambda: (target / "manifest.json").exists())
            await asyncio.to_thread(httpx2.delete, f"{url}/api/auth/users/reset")
            await pilot.press("$", "ctrl+a", "ctrl+k", *f"load {target}", "enter")
            await until(pilot, lambda: any(n.message.startswith("state loaded from") for n in app._notifications))
        users = httpx2.get(f"{url}/api/auth/users").json()["users"]
        assert any(u["email"] == "far@example.com" for u in users)


def test_the_docs_curl_lines_save_load_and_start_as_written(tmp_path):
    import re
    import shlex

    from conftest import documentation

    block = re.search(r"<!-- example: state-curl -->\n```bash\n(.*?)```", documentation(), re.S)
    assert block, "docs/state.md lost its curl example"
    lines = [line.split("  #")[0].strip() for line in block.group(1).strip().splitlines()]
    with Mocks(settings_for(["auth"])) as running:
        url = running.urls["auth"].removeprefix("http://")
        httpx2.post(f"{running.urls['auth']}/api/auth/register", json={"email": "bug@example.com", "password": "password123", "name": "B"})
        for line in lines[:2]:
            done = subprocess.run(shlex.split(line.replace("localhost:8000", url)), cwd=tmp_path, capture_output=True, text=True, timeout=60)
            assert done.returncode == 0, done.stderr
            if line.startswith("curl -o"):
                httpx2.delete(f"{running.urls['auth']}/api/auth/users/reset")
        assert '"loaded":["auth"]' in done.stdout
        assert any(u["email"] == "bug@example.com" for u in httpx2.get(f"{running.urls['auth']}/api/auth/users").json()["users"])
    command = shlex.split(lines[2])
    assert command[:3] == ["mockpanel", "serve", "--state"]
    with ServeProcess("--only", "auth", "--auth-port", "0", "--quiet", *command[2:], cwd=tmp_path) as proc:
        auth = proc.urls(1)["auth"]
        assert httpx2.post(f"{auth}/api/auth/login", json={"email": "bug@example.com", "password": "password123"}).status_code == 200
