"""Stub servers from an attacker's side: a recording that stops at its caps before writing anything, a page of
another site that cannot relay through a recording stub, one regex budget per request for matching and the
near-miss report, and templates whose output is bounded (refused when the mapping is read if it cannot fit)."""

from __future__ import annotations

import json

import httpx2
import pytest

from conftest import page_on_another_site
from mockpanel.settings import SettingsError
from mockpanel.testing import RunningHub, settings_for
from test_stubs_record import BIG, config_for, partner


def files_in(path) -> list:
    return sorted(p for p in path.rglob("*") if p.is_file()) if path.exists() else []


def test_a_recording_at_its_mapping_cap_writes_no_orphan_body_file(tmp_path):
    from mockpanel.servers.stubs.mappings import MAX_MAPPINGS

    with partner() as upstream:
        base = f"http://127.0.0.1:{upstream.server_address[1]}"
        with RunningHub(settings_for(["partner"], config=config_for(tmp_path, base))) as running:
            url = running.urls["partner"]
            filler = [{"request": {"url": f"/filler/{i}"}, "response": {"status": 204}} for i in range(MAX_MAPPINGS - 1)]
            assert httpx2.post(url + "/__admin/mappings/import", json={"mappings": filler}, timeout=120).status_code == 200
            assert httpx2.get(url + "/api/v1/big?n=1").content == BIG  # the last place: recorded, its body in __files
            before = files_in(tmp_path / "recorded")
            for n in range(2, 5):  # relayed, never recorded: no mapping file, no body file
                assert httpx2.get(url + f"/api/v1/big/{n}").content == BIG
            assert files_in(tmp_path / "recorded") == before
            assert running.run(lambda: len(running.hub.facade("partner").mappings)) == MAX_MAPPINGS


def test_a_recording_writes_at_most_its_byte_budget(tmp_path, monkeypatch):
    import mockpanel.servers.stubs.server as stub_server

    monkeypatch.setattr(stub_server, "MAX_RECORDED_BYTES", 3 * len(BIG))  # the budget, small enough for a test
    with partner() as upstream:
        base = f"http://127.0.0.1:{upstream.server_address[1]}"
        with RunningHub(settings_for(["partner"], config=config_for(tmp_path, base))) as running:
            url = running.urls["partner"]
            for n in range(6):
                assert httpx2.get(url + f"/api/v1/big/{n}").content == BIG
            written = sum(p.stat().st_size for p in files_in(tmp_path / "recorded"))
            assert written <= 3 * len(BIG)
            assert len(files_in(tmp_path / "recorded" / "mappings")) == 2  # the third would pass the budget
            # a new recording starts a new budget
            assert httpx2.post(url + "/__admin/recordings/stop").status_code == 200
            assert httpx2.post(url + "/__admin/recordings/start", json={}).status_code == 200
            httpx2.get(url + "/api/v1/big/new")
            assert len(files_in(tmp_path / "recorded" / "mappings")) == 3


def _page_tries(page, url: str) -> list[str]:
    return page.evaluate("""async (url) => {
        const out = [];
        try { const r = await fetch(url + '/api/v1/items?from=page'); out.push('read ' + r.status + ' ' + (await r.text()).slice(0, 30)); }
        catch (e) { out.push('blocked'); }
        await fetch(url + '/api/v1/items?from=no-cors', {mode: 'no-cors'});
        await fetch(url + '/api/v1/items', {mode: 'no-cors', method: 'POST', body: '{"name": "x"}', headers: {'content-type': 'text/plain'}});
        try { await fetch(url + '/api/v1/items', {method: 'PUT', body: '{}', headers: {'content-type': 'application/json'}}); out.push('preflight passed'); }
        catch (e) { out.push('preflight refused'); }
        return out;
    }""", url)


def test_a_page_of_another_site_cannot_relay_through_a_recording_stub(tmp_path):
    with partner() as upstream:
        base = f"http://127.0.0.1:{upstream.server_address[1]}"
        with RunningHub(settings_for(["partner"], config=config_for(tmp_path, base))) as running:
            url = running.urls["partner"]
            with page_on_another_site() as page:
                assert _page_tries(page, url) == ["blocked", "preflight refused"]
            assert upstream.seen == []  # nothing reached the real service
            assert files_in(tmp_path / "recorded") == []
            assert httpx2.get(url + "/api/v1/items").status_code == 200  # a script (no Origin) records as before
            assert len(upstream.seen) == 1


def test_a_recording_stub_with_cors_origins_named_serves_those_pages(tmp_path):
    with partner() as upstream:
        base = f"http://127.0.0.1:{upstream.server_address[1]}"
        config = config_for(tmp_path, base)
        config.write_text(config.read_text() + 'cors_origins = ["http://evil.example"]\n')
        with RunningHub(settings_for(["partner"], config=config)) as running:
            with page_on_another_site() as page:
                tries = _page_tries(page, running.urls["partner"])
            assert tries[0].startswith("read 200") and tries[1] == "preflight passed"
            assert any(path == "/api/v1/items?from=page" for _, path, _ in upstream.seen)


def _stub(tmp_path, *mappings: dict):
    directory = tmp_path / "mappings"
    directory.mkdir(exist_ok=True)
    for i, mapping in enumerate(mappings):
        (directory / f"m{i}.json").write_text(json.dumps(mapping))
    return RunningHub(settings_for(["payments"], stubs={"payments": {"mappings": str(directory)}}))


def test_one_regex_budget_per_request_for_matching_and_near_misses(tmp_path):
    """20 ordinary patterns and one 40 KB path took 2.5 s of the loop (7.4 s with catastrophic ones): now the request
    stops at its budget and says which mappings were not compared."""
    mappings = [{"request": {"urlPattern": f"/api/.*/.*/.*/items{i}"}, "response": {"status": 200}} for i in range(20)]
    mappings += [{"request": {"urlPathPattern": f"/(x+x+)+y{i}"}, "response": {"status": 200}} for i in range(5)]
    with _stub(tmp_path, *mappings) as running:
        url = running.urls["payments"]
        worst_before = running.run(lambda: running.hub.watchdog.worst_ms())
        for path in ("/api/" + "a/" * 20_000 + "b", "/" + "x" * 5000):
            r = httpx2.get(url + path, timeout=60)
            assert r.status_code == 404 and "regex budget of 100 ms for one request ran out" in r.json()["detail"], r.text[-300:]
        assert httpx2.get(url + "/api/a/b/c/items7").status_code == 200  # an ordinary request still matches
        worst = running.run(lambda: running.hub.watchdog.worst_ms())
        assert worst <= max(worst_before, 250), running.run(lambda: [s.describe() for s in running.hub.watchdog.stalls])


def test_template_output_is_bounded_when_read_and_when_rendered(tmp_path):
    bomb = {"request": {"url": "/bomb"}, "response": {"body": "{{randomValue length=10000}}" * 2000, "transformers": ["response-template"]}}
    with pytest.raises(SettingsError, match="20000000 characters before any request value"):
        _stub(tmp_path, bomb).start()
    echo = {"request": {"url": "/echo", "method": "POST"},
            "response": {"body": "{{{request.body}}}" * 4, "transformers": ["response-template"]}}
    with _stub(tmp_path, echo) as running:
        url = running.urls["payments"]
        assert httpx2.post(url + "/echo", content=b"ab").text == "abababab"
        r = httpx2.post(url + "/echo", content=b"z" * 300_000)  # four copies pass the 1 MiB a response renders
        assert r.status_code == 422 and "more than 1024 KiB" in r.json()["detail"]
        assert httpx2.post(url + "/echo", content=b"ok").text == "okokokok"
