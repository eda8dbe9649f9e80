"""A first run with no flag: the reference image API starts when nothing answers where the client app looks (and stays
off, saying why, when something does), PORT with several servers is an error naming what to set, messages read well."""

from __future__ import annotations

import socket

import httpx2

from conftest import ServeProcess
from mockpanel.hub import Hub
from mockpanel.servers import SERVERS, image_api
from mockpanel.settings import load_settings

ALL_ON_FREE_PORTS = {(name, "port"): "0" for name in SERVERS}


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def started(environ: dict, tmp_path, only=None) -> Hub:
    hub = Hub(load_settings(SERVERS, cli=ALL_ON_FREE_PORTS, environ=environ, cwd=tmp_path, only=only), SERVERS)
    await hub.start()
    return hub


async def test_the_reference_image_api_starts_when_nothing_answers(monkeypatch, tmp_path):
    monkeypatch.setattr(image_api, "DEFAULT_IMAGE_API", f"http://localhost:{closed_port()}")
    hub = await started({}, tmp_path)
    try:
        assert hub["imageapi"].status == "running"
        async with httpx2.AsyncClient() as client:
            health = (await client.get(f"{hub.urls()['client']}/health")).json()
        assert health["image_api_url"] == hub.urls()["imageapi"]  # the client app drives the one that started
        assert not any("stays off" in n for n in hub.settings.notices)
    finally:
        await hub.stop()


async def test_an_image_api_already_there_wins_and_the_reference_stays_off(monkeypatch, tmp_path):
    with socket.socket() as theirs:
        theirs.bind(("127.0.0.1", 0))
        theirs.listen()
        url = f"http://localhost:{theirs.getsockname()[1]}"
        monkeypatch.setattr(image_api, "DEFAULT_IMAGE_API", url)
        hub = await started({}, tmp_path)
        try:
            assert "imageapi" not in hub and "imageapi" not in hub.urls()
            assert f"imageapi: something already answers at {url}: the client app drives it and the reference image API stays off " \
                   "(set IMAGE_API_URL to choose another)" in hub.settings.notices
        finally:
            await hub.stop()


async def test_an_image_api_url_or_only_keeps_it_off(tmp_path):
    hub = await started({"IMAGE_API_URL": "http://localhost:9"}, tmp_path)
    try:
        assert "imageapi" not in hub
        assert any("IMAGE_API_URL=http://localhost:9" in n for n in hub.settings.notices)
    finally:
        await hub.stop()
    hub = await started({}, tmp_path, only=["client", "s3"])
    try:
        assert "imageapi" not in hub and not any("stays off" in n for n in hub.settings.notices)
    finally:
        await hub.stop()


def test_the_client_says_how_to_fix_an_unreachable_image_api(tmp_path):
    dead = closed_port()
    with ServeProcess("--only", "client", "--client-port", "0", env={"IMAGE_API_URL": f"http://127.0.0.1:{dead}"}) as serve:
        url = serve.urls(1)["client"]
        answer = httpx2.post(f"{url}/api/upload", files={"file": ("a.png", b"\x89PNG", "image/png")})
        assert answer.status_code == 502
        assert answer.json()["detail"].endswith("start your image API there, or set IMAGE_API_URL to where it runs")


def test_port_with_several_servers_names_the_setting_to_use(tmp_path):
    with ServeProcess("--only", "auth,s3", env={"PORT": "8100"}, cwd=tmp_path) as serve:
        assert serve.proc.wait(20) == 2
        error = serve.proc.stderr.read().strip()
    assert error == ("mockpanel: PORT=8100 sets the port of one server (mockpanel serve --only auth); with 2 servers, "
                     "set the one you mean: --auth-port 8100 or MOCKPANEL_AUTH_PORT=8100")


def test_port_from_a_seed_env_file_that_matches_a_server_is_fine(tmp_path):
    (tmp_path / ".env").write_text("PORT=8000\nMOCKPANEL_S3_PORT=0\n")  # seed 000's .env: PORT is auth's own port
    settings = load_settings(SERVERS, only=["auth", "s3"], environ={}, cwd=tmp_path)
    from mockpanel.settings import check_port_variable

    check_port_variable(settings)  # no error: auth runs on 8000 anyway


def test_warnings_have_one_prefix_and_token_errors_read_well(auth_url):
    login = httpx2.post(f"{auth_url}/api/auth/login", json={"email": "alice@example.com", "password": "password123"}).json()
    answer = httpx2.post(f"{auth_url}/api/auth/refresh", json={"refresh_token": login["access_token"]})
    assert answer.status_code == 401
    assert answer.json()["detail"] == "a refresh token is required here, got an access token"
    with ServeProcess("--only", "auth", "--auth-port", "0", "--host", "0.0.0.0") as serve:
        serve.urls(1)
        serve.stop()
        errors = serve.proc.stderr.read()
    assert "warning: auth: binding 0.0.0.0" in errors and "note: warning" not in errors
