"""The Stubs pane (key 0) in Pilot and in a real terminal: mappings with their hits (and those never matched), the
last unmatched requests with their near misses, reload after the files change, record/replay; and the Requests
pane's w saving a journaled exchange as a WireMock mapping."""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from pathlib import Path

import httpx2
import pytest

from conftest import Terminal, http_upstream, until
from mockpanel.app import create_app
from mockpanel.hubclient import server_urls
from mockpanel.servers import SERVERS
from mockpanel.settings import load_settings


def rows(app) -> str:
    table = app.screen.query_one("#stubs-table")
    return "\n".join(" ".join(str(c) for c in table.get_row_at(i)) for i in range(table.row_count))


def text_of(app, selector: str) -> str:
    return str(app.screen.query_one(selector).render())


def stub_project(tmp_path: Path, upstream: str | None = None) -> Path:
    mappings = tmp_path / "wiremock" / "mappings"
    mappings.mkdir(parents=True)
    (mappings / "hello.json").write_text(json.dumps({"name": "hello", "request": {"method": "GET", "url": "/hello"},
                                                     "response": {"status": 200, "body": "hi"}}))
    (mappings / "orders.json").write_text(json.dumps({"request": {"method": "POST", "urlPath": "/orders"},
                                                      "response": {"status": 201, "jsonBody": {"id": 1}}}))
    config = tmp_path / "mockpanel.toml"
    config.write_text('[stubs.partner]\nmappings = "wiremock/mappings"\n'
                      + (f'record = "{upstream}"\nmode = "replay"\n' if upstream else ""))
    return config


async def test_the_stubs_pane_shows_hits_misses_reloads_and_records(tmp_path):
    with http_upstream(b'{"live": true}') as port:
        config = stub_project(tmp_path, f"http://127.0.0.1:{port}")
        settings = load_settings(SERVERS, only=["auth", "partner"], config_path=config, cwd=tmp_path, environ={},
                                 cli={("auth", "port"): "0"})
        app = create_app(settings)
        async with app.run_test(size=(160, 40)) as pilot:
            await pilot.press("0")
            await until(pilot, lambda: app.screen.query("#stubs-table") and "hello" in rows(app))
            assert re.search(r"partner hello 200 never", rows(app))
            assert "2 mappings (2 never matched)" in text_of(app, "#stubs-summary")
            url = app.client.read(server_urls)["partner"]
            async with httpx2.AsyncClient(base_url=url) as client:
                assert (await client.get("/hello")).text == "hi"
                assert (await client.get("/helo")).status_code == 404
            await until(pilot, lambda: re.search(r"partner hello 200 1 ", rows(app)) is not None)
            await until(pilot, lambda: "GET /helo — closest: hello (url: expected /hello, got /helo)" in text_of(app, "#stubs-unmatched"))

            # A new file, then r: read again
            assert "files changed" not in text_of(app, "#stubs-summary")
            (tmp_path / "wiremock" / "mappings" / "bye.json").write_text(json.dumps(
                {"name": "bye", "request": {"url": "/bye"}, "response": {"status": 410}}))
            await until(pilot, lambda: "files changed: r reloads" in text_of(app, "#stubs-summary"))
            await pilot.press("r")
            await until(pilot, lambda: "partner bye 410 never" in rows(app))
            assert "files changed" not in text_of(app, "#stubs-summary")
            # A broken file: r says why and keeps what was there
            (tmp_path / "wiremock" / "mappings" / "broken.json").write_text("{")
            await pilot.press("r")
            await until(pilot, lambda: any("nothing reloaded: broken.json: not JSON" in n.message for n in app._notifications))
            assert "bye" in rows(app)
            (tmp_path / "wiremock" / "mappings" / "broken.json").unlink()

            # m: record the upstream; the request becomes a mapping (and a file)
            await pilot.press("m")
            await until(pilot, lambda: "RECORDING" in text_of(app, "#stubs-summary"))
            async with httpx2.AsyncClient(base_url=url) as client:
                assert (await client.get("/live")).json() == {"live": True}
            await until(pilot, lambda: "GET /live" in rows(app))
            await pilot.press("m")
            await until(pilot, lambda: "replay" in text_of(app, "#stubs-summary"))

            # The Requests pane's w: auth's /health saved as a mapping of the stub server
            async with httpx2.AsyncClient() as client:
                health = (await client.get(app.client.read(server_urls)["auth"] + "/health")).json()
            await pilot.press("2")
            await pilot.press("slash", *"server:auth /health", "enter")
            await until(pilot, lambda: app.screen.query_one("#requests-table").row_count == 1)
            await pilot.press("w")
            await pilot.pause()
            await pilot.press("ctrl+a", "ctrl+k", *"stub:partner", "enter")
            await until(pilot, lambda: any("mapping saved: GET /health" in n.message for n in app._notifications))
            async with httpx2.AsyncClient(base_url=url) as client:
                replayed = await client.get("/health")
            assert replayed.status_code == 200 and replayed.json()["status"] == health["status"]
            saved = [json.loads(p.read_text()) for p in (tmp_path / "wiremock" / "mappings").glob("get-health-*.json")]
            assert len(saved) == 1 and saved[0]["request"] == {"method": "GET", "url": "/health"}

            # w with a .json file: the mapping written where the panel runs
            await pilot.press("w")
            await pilot.pause()
            target = tmp_path / "health-mapping.json"
            await pilot.press("ctrl+a", "ctrl+k", *str(target), "enter")
            await until(pilot, target.exists)
            assert json.loads(target.read_text())["response"]["status"] == 200

            # d removes the selected mapping
            await pilot.press("0")
            await until(pilot, lambda: "GET /health" in rows(app))
            table = app.screen.query_one("#stubs-table")
            table.move_cursor(row=next(i for i in range(table.row_count) if "bye" in str(table.get_row_at(i))))
            await pilot.press("d")
            await until(pilot, lambda: "bye" not in rows(app))


@pytest.mark.skipif(shutil.which("tmux") is None and not os.environ.get("CI"), reason="needs tmux (apt-get install tmux)")
def test_the_stubs_pane_in_a_real_terminal(tmp_path):
    stub_project(tmp_path)
    mockpanel = Path(sys.executable).parent / "mockpanel"
    ports = tmp_path / "ports.json"
    with Terminal("stubs", 150, 36) as term:
        term.send(f"cd {tmp_path} && {mockpanel} --only partner --ports-file {ports}", "Enter")
        term.wait_for(lambda s: "0 Stubs" in s and "running" in s, "the panel")
        term.send("0")
        term.wait_for(lambda s: re.search(r"partner\s+hello\s+200\s+never", s), "the mappings")
        url = json.loads(ports.read_text())["partner"]
        assert httpx2.get(f"{url}/hello").text == "hi"
        assert httpx2.get(f"{url}/hullo").status_code == 404
        term.wait_for(lambda s: re.search(r"partner\s+hello\s+200\s+1\s", s) and "GET /hullo — closest: hello" in s, "the hit and the miss")
        term.send("q")


async def test_an_openapi_stub_lists_its_operations_with_their_hits(tmp_path):
    (tmp_path / "petstore.yaml").write_text((Path(__file__).parent / "data" / "petstore.yaml").read_text())
    config = tmp_path / "mockpanel.toml"
    config.write_text('[stubs.petstore]\nopenapi = "petstore.yaml"\n')
    settings = load_settings(SERVERS, only=["petstore"], config_path=config, cwd=tmp_path, environ={})
    app = create_app(settings)
    async with app.run_test(size=(150, 36)) as pilot:
        await pilot.press("0")
        await until(pilot, lambda: app.screen.query("#stubs-table") and "GET /pets/{petId}" in rows(app))
        assert "petstore GET /pets/{petId} example never" in rows(app)
        assert "3 operations (3 never matched)" in text_of(app, "#stubs-summary")
        url = app.client.read(server_urls)["petstore"]
        async with httpx2.AsyncClient(base_url=url) as client:
            await client.get("/pets/1")
            await client.get("/pets", params={"limit": 1000})
        await until(pilot, lambda: "petstore GET /pets/{petId} example 1 " in rows(app) and "GET /pets example never (1 refused)" in rows(app))
        table = app.screen.query_one("#stubs-table")
        table.move_cursor(row=0)
        await pilot.press("d")
        await until(pilot, lambda: any("comes from the document" in n.message for n in app._notifications))
