"""mockpanel's image, built from this checkout and run by Docker as any test suite would run it: healthy, answering the
seeds' examples through ports published on 127.0.0.1, its control API behind a token it prints, stopped mid-upload
with nothing acknowledged lost, and started again on the same volume."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid

import httpx2
import pytest

from conftest import make_s3_client
from containers import Container, admin_token, built_image, docker

pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="session")
def image(tmp_path_factory):
    base = tmp_path_factory.getbasetemp()
    return built_image(base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base)  # one build for all workers


@pytest.fixture
def volume():
    name = f"mockpanel-test-{uuid.uuid4().hex[:10]}"
    docker("volume", "create", name)
    yield name
    docker("volume", "rm", "-f", name, check=False)


def curl(*args: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run(["curl", "-s", "-S", *args], capture_output=True, cwd=cwd, timeout=60)


def test_the_image_answers_the_seeds_examples_through_published_ports(image, tmp_path):
    with Container(image) as box:
        box.wait_healthy()
        auth, s3, webhooks, client = (box.url(port) for port in (8000, 9000, 4000, 3000))
        # seed 000: register, log in, who am I
        made = httpx2.post(f"{auth}/api/auth/register", json={"email": "newuser@example.com", "password": "securepass123", "name": "New User"})
        assert made.status_code in (200, 201) and made.json()["email"] == "newuser@example.com"
        login = httpx2.post(f"{auth}/api/auth/login", json={"email": "alice@example.com", "password": "password123"}).json()
        token = login["access_token"]
        me = httpx2.get(f"{auth}/api/auth/me", params={"token": token}, headers={"Authorization": f"Bearer {token}"})
        assert me.json()["email"] == "alice@example.com"
        # seed 002: the S3 mock with curl, as written there
        photo = os.urandom(3000)
        (tmp_path / "test_image.jpg").write_bytes(photo)
        put = curl("-X", "PUT", f"{s3}/test-bucket/image.jpg", "-F", "file=@test_image.jpg", "-w", "%{http_code}", cwd=tmp_path)
        assert put.stdout.endswith(b"200"), put
        curl(f"{s3}/test-bucket/image.jpg", "-o", "downloaded.jpg", cwd=tmp_path)
        assert (tmp_path / "downloaded.jpg").read_bytes() == photo
        # the webhook receiver and the client app
        sent = httpx2.post(f"{webhooks}/webhooks/client-123", json={"event_type": "image.processed", "image_id": "uuid-123"})
        assert sent.status_code == 200
        events = httpx2.get(f"{webhooks}/webhooks/events", params={"client_id": "client-123"}).text
        assert "image.processed" in events
        assert httpx2.get(f"{client}/api/generate-token", params={"user_id": "test-user-123"}).json()["user_id"] == "test-user-123"

        # who can reach what: the control API needs the token the container made and printed
        assert httpx2.get(f"{auth}/__mockpanel/faults").status_code == 401
        made_token = admin_token(box.logs())
        assert httpx2.get(f"{auth}/__mockpanel/faults", headers={"Authorization": f"Bearer {made_token}"}).status_code == 200
        assert docker("exec", box.name, "id", "-u").stdout.strip() == "10001"  # not root
        assert "Traceback" not in box.logs()


def _upload_in_flight(url: str, length: int, sent: int) -> socket.socket:
    """A PUT whose headers and first `sent` bytes are on the wire, the rest never coming."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)))
    sock.sendall(f"PUT /kept/torn.bin HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Length: {length}\r\n\r\n".encode() + b"x" * sent)
    return sock


def _rest(sock: socket.socket) -> bytes:
    sock.settimeout(60)
    got = b""
    try:
        while chunk := sock.recv(65536):
            got += chunk
    except OSError:
        pass
    return got


def test_docker_stop_mid_upload_loses_nothing_acknowledged_and_a_restart_finds_it_all(image, volume):
    servers = ("serve", "--only", "auth,s3")
    with Container(image, *servers, ports=(8000, 9000), volumes=(f"{volume}:/data",)) as box:
        box.wait_healthy()
        s3 = make_s3_client(box.url(9000))
        s3.create_bucket(Bucket="kept")
        bodies = {f"object-{i}": os.urandom(40_000 + i) for i in range(12)}
        for key, body in bodies.items():
            s3.put_object(Bucket="kept", Key=key, Body=body)  # each acknowledged: 200
        jwks = httpx2.get(f"{box.url(8000)}/jwks").json()
        assert jwks["keys"]
        in_flight = _upload_in_flight(box.url(9000), 4 << 20, 1 << 20)
        state = box.stop()
        assert state["ExitCode"] == 0 and not state["OOMKilled"], state  # SIGTERM ended it itself (137: killed)
        assert b" 200 " not in _rest(in_flight).split(b"\r\n", 1)[0]  # the unfinished upload was never acknowledged
        in_flight.close()
        assert "Traceback" not in box.logs()

    with Container(image, *servers, ports=(8000, 9000), volumes=(f"{volume}:/data",)) as again:
        again.wait_healthy()
        s3 = make_s3_client(again.url(9000))
        listed = [o["Key"] for o in s3.list_objects_v2(Bucket="kept").get("Contents", [])]
        assert sorted(listed) == sorted(bodies)  # every acknowledged object, and not the torn one
        for key, body in bodies.items():
            assert s3.get_object(Bucket="kept", Key=key)["Body"].read() == body
        # the OIDC signing keys live on the volume too: tokens signed before the restart still verify
        assert httpx2.get(f"{again.url(8000)}/jwks").json() == jwks


def compose_command() -> list[str]:
    """Compose v2 (`docker compose`) where the CLI has it, else v1 (`docker-compose`, Debian's package)."""
    import shutil

    if subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if os.environ.get("CI"):
        pytest.fail("CI runs the compose test: neither `docker compose` nor docker-compose is installed")
    pytest.skip("neither `docker compose` nor docker-compose is installed")


def test_the_compose_file_comes_up_answers_and_attach_opens_the_panel_on_it(image, tmp_path):
    from conftest import Terminal
    from containers import ROOT

    compose = [*compose_command(), "-f", str(ROOT / "compose.yaml"), "-p", f"mockpanel-test-{uuid.uuid4().hex[:8]}"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOCKPANEL_")}
    env.update(MOCKPANEL_IMAGE=image, MOCKPANEL_ADMIN_TOKEN="compose-token", **{f"MOCKPANEL_{name}_PORT": "" for name in
                                                                                  ("AUTH", "S3", "WEBHOOKS", "CLIENT", "IMAGEAPI")})

    def run(*args: str) -> str:
        done = subprocess.run([*compose, *args], env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, (args, done.stdout, done.stderr)
        return done.stdout

    try:
        run("up", "-d")
        box = Container(image, name=run("ps", "-q", "mocks").strip())
        box.wait_healthy()
        auth = "http://" + run("port", "mocks", "8000").strip()
        s3_url = "http://" + run("port", "mocks", "9000").strip()
        assert auth.startswith("http://127.0.0.1:")  # published on loopback only
        login = httpx2.post(f"{auth}/api/auth/login", json={"email": "alice@example.com", "password": "password123"})
        assert login.status_code == 200 and login.json()["token_type"] == "bearer"
        s3 = make_s3_client(s3_url)
        s3.create_bucket(Bucket="from-compose")
        assert "made for this run" not in box.logs()  # the shell's token, not one made at start

        command = f"env MOCKPANEL_ADMIN_TOKEN=compose-token TERM=xterm-256color {sys.executable} -m mockpanel attach {auth}"
        with Terminal("compose-attach", 120, 34) as term:
            term.send(f"cd {tmp_path} && {command}; echo panel-closed-$?", "Enter")
            screen = term.wait_for(lambda s: "attached to" in s and s.count("running") >= 4, "the panel attached to the compose service")
            assert all(name in screen for name in ("auth", "s3", "webhooks", "client"))
            term.send("q")
            term.wait_for(lambda s: "panel-closed-0" in s, "the panel closing")
        wrong = subprocess.run([sys.executable, "-m", "mockpanel", "attach", auth], env={**env, "MOCKPANEL_ADMIN_TOKEN": "wrong"},
                               capture_output=True, text=True, timeout=60)
        assert wrong.returncode == 1 and "cannot attach" in wrong.stderr  # the token is what lets a panel in
    finally:
        subprocess.run([*compose, "down", "-v", "-t", "20"], env=env, capture_output=True, timeout=300)


def test_stub_servers_come_from_a_mounted_config_and_settings_from_the_environment(image):
    import shutil
    import tempfile
    from pathlib import Path

    import jwt

    config = Path(tempfile.mkdtemp(prefix="mockpanel-config-"))
    try:
        config.chmod(0o755)  # the container's user (uid 10001) reads it
        (config / "mockpanel.toml").write_text('[stubs.payments]\nport = 8100\nmappings = "wiremock/mappings"\n')
        (config / "wiremock" / "mappings").mkdir(parents=True)
        (config / "wiremock" / "mappings" / "customer.json").write_text(
            '{"request": {"method": "GET", "urlPath": "/v1/customers/7"},'
            ' "response": {"status": 200, "jsonBody": {"id": 7, "name": "Ada"}}}')
        for path in config.rglob("*"):
            path.chmod(0o755 if path.is_dir() else 0o644)
        with Container(image, "serve", "--only", "auth,payments", ports=(8000, 8100), volumes=(f"{config}:/config",),
                       env={"JWT_SECRET": "from-the-environment"}) as box:
            box.wait_healthy()
            assert httpx2.get(f"{box.url(8100)}/v1/customers/7").json() == {"id": 7, "name": "Ada"}
            assert httpx2.get(f"{box.url(8100)}/v1/customers/8").status_code == 404
            login = httpx2.post(f"{box.url(8000)}/api/auth/login", json={"email": "alice@example.com", "password": "password123"})
            claims = jwt.decode(login.json()["access_token"], "from-the-environment", algorithms=["HS256"], options={"verify_aud": False})
            assert claims["email"] == "alice@example.com"
    finally:
        shutil.rmtree(config, ignore_errors=True)
