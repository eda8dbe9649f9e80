"""A stub server in `mockpanel serve` (how CI runs it), a panel attached to it from another process, and the Host
allow-list (DNS rebinding) on a stub server as on every mock."""

from __future__ import annotations

import json
from pathlib import Path

import httpx2
import pytest

from conftest import ServeProcess, until
from mockpanel.app import attached_app


def project(directory: Path) -> None:
    (directory / "wiremock" / "mappings").mkdir(parents=True)
    (directory / "wiremock" / "mappings" / "rates.json").write_text(json.dumps(
        {"name": "rates", "request": {"method": "GET", "urlPath": "/v1/rates"}, "response": {"jsonBody": {"EUR": 1.08}}}))
    (directory / "mockpanel.toml").write_text('[stubs.fx]\nmappings = "wiremock/mappings"\n')


def test_serve_runs_a_stub_server_named_by_only_and_logs_its_requests(tmp_path):
    project(tmp_path)
    with ServeProcess("--only", "fx", "--log-format", "json", cwd=tmp_path) as serve:
        ready = json.loads(serve.readline())
        assert ready["event"] == "ready" and ready["server"] == "fx"
        url = ready["url"]
        assert httpx2.get(f"{url}/v1/rates").json() == {"EUR": 1.08}
        line = json.loads(serve.readline())
        assert (line["event"], line["server"], line["path"], line["status"]) == ("request", "fx", "/v1/rates", 200)
        rebinding = httpx2.get(f"{url}/v1/rates", headers={"host": "evil.example"})
        assert rebinding.status_code == 403 and "not allowed" in rebinding.json()["detail"]
        assert httpx2.get(f"{url}/__admin/mappings", headers={"host": "evil.example"}).status_code == 403
        assert serve.stop() == 0


async def test_the_stubs_pane_attached_to_serve_in_another_process(tmp_path):
    project(tmp_path)
    with ServeProcess("--only", "fx", "--quiet", cwd=tmp_path) as serve:
        url = serve.urls(1)["fx"]
        app = attached_app(url)
        async with app.run_test(size=(150, 36)) as pilot:
            await pilot.press("0")
            table = lambda: app.screen.query("#stubs-table")  # noqa: E731
            await until(pilot, lambda: table() and table().first().row_count == 1)
            async with httpx2.AsyncClient() as client:
                await client.get(f"{url}/v1/rates")
                await client.get(f"{url}/v2/rates")
            row = lambda: " ".join(str(c) for c in table().first().get_row_at(0))  # noqa: E731
            await until(pilot, lambda: row().startswith("fx rates 200 1 "))
            unmatched = lambda: str(app.screen.query_one("#stubs-unmatched").render())  # noqa: E731
            await until(pilot, lambda: "GET /v2/rates — closest: rates" in unmatched())
            await pilot.press("d")  # a key changes the other process's stub server
            await until(pilot, lambda: table().first().row_count == 0)
        assert httpx2.get(f"{url}/v1/rates").status_code == 404
        assert serve.stop() == 0


def test_the_journal_names_what_answered_and_a_missing_directory_is_an_error(tmp_path):
    from mockpanel.settings import SettingsError
    from mockpanel.testing import RunningHub, settings_for

    project(tmp_path)
    (tmp_path / "petstore.yaml").write_text((Path(__file__).parent / "data" / "petstore.yaml").read_text())
    config = tmp_path / "mockpanel.toml"
    config.write_text('[stubs.fx]\nmappings = "wiremock/mappings"\nopenapi = "petstore.yaml"\n')
    with RunningHub(settings_for(["fx"], config=config)) as running:
        url = running.urls["fx"]
        for path in ("/v1/rates?x=1", "/v1/rates", "/pets/7", "/pets/8", "/nowhere"):
            httpx2.get(url + path)
        httpx2.get(url + "/pets", params={"limit": "many"})
        stats = httpx2.get(f"{url}/__mockpanel/stats").json()["endpoints"]
        assert stats == {"GET /v1/rates": 2, "GET /pets/{petId}": 2, "GET /pets": 1, "GET (no mapping matched)": 1}
        from mockpanel.screens.stubs import stub_views

        view = running.run(stub_views, running.hub)[0]
        operations = {o["label"]: (o["hits"], o["refused"]) for o in view["operations"]}
        assert operations == {"GET /pets": (0, 1), "POST /pets": (0, 0), "GET /pets/{petId}": (2, 0)}
    config.write_text('[stubs.fx]\nmappings = "wiremock/mapings"\n')
    with pytest.raises(SettingsError, match=r"the mappings directory .*wiremock/mapings does not exist"):
        RunningHub(settings_for(["fx"], config=config)).start()
