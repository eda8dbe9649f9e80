"""Every door of every server and port passes one guard (guard.Guard): the control API, attach, a stub server's
/__admin/, Toxiproxy's API on its own port. Walked route by route, so a new door cannot skip it: without the admin
token, from a page of another site, under a rebinding Host name, with a body too large or too deep."""

from __future__ import annotations

import json
import re

import httpx2
import pytest
from starlette.routing import Mount

from conftest import ServeProcess
from mockpanel.testing import RunningHub, settings_for

TOKEN = "door-token"
ALL = ["auth", "s3", "webhooks", "client", "imageapi"]


@pytest.fixture(scope="module")
def guarded(tmp_path_factory):
    mappings = tmp_path_factory.mktemp("wiremock") / "mappings"
    mappings.mkdir()
    (mappings / "hello.json").write_text(json.dumps({"request": {"url": "/hello"}, "response": {"status": 200, "body": "hi"}}))
    settings = settings_for([*ALL, "payments"], {"mockpanel": {"admin_token": TOKEN, "toxiproxy_port": "0"}},
                            stubs={"payments": {"mappings": str(mappings)}})
    with RunningHub(settings) as running:
        yield running


def _flat(routes, prefix: str = ""):
    """(path, route) of every route, those of included routers too (FastAPI includes them lazily)."""
    for route in routes:
        context = getattr(route, "include_context", None)
        if context is not None:
            yield from _flat(context.included_router.routes, prefix + context.prefix)
        else:
            yield prefix + route.path, route


def _doors(running) -> list[tuple[str, str, str]]:
    """(base URL, method, path) of every route behind a door: each server's control API and extra control prefixes,
    and Toxiproxy's API on its own port. Path parameters are filled with a name."""
    hub = running.hub
    found = []

    def add(base: str, routes, prefixes: tuple[str, ...]) -> None:
        for full, route in _flat(routes):
            path = re.sub(r"\{[^}]+\}", "x", full)
            if prefixes and not path.startswith(prefixes):
                continue
            methods = {"GET"} if isinstance(route, Mount) else set(getattr(route, "methods", None) or {"GET"}) - {"HEAD"}
            found.extend((base, method, path + ("/x" if isinstance(route, Mount) else "")) for method in sorted(methods))

    for name, runner in hub.runners.items():
        base = running.urls[name]
        middleware = runner.app
        control_routes = middleware.control.routes
        # Every route of the control app is under a guarded prefix: a route elsewhere would be a door with no guard.
        for path, _ in _flat(control_routes):
            assert path.startswith(middleware.control_prefixes), (name, path)
        add(base, control_routes, ())
        extra = tuple(p for p in middleware.control_prefixes if p != "/__mockpanel/")
        if extra:
            add(base, getattr(middleware.app, "routes", ()), extra)
    add(hub.toxiproxy_url, hub._toxiproxy.app.app.routes, ())
    return found


def test_every_route_of_every_door_refuses_a_caller_without_the_token(guarded):
    doors = _doors(guarded)
    ports = {base for base, _, _ in doors}
    assert len(ports) == len(ALL) + 2  # every mock, the stub server and Toxiproxy's own port
    assert any(path.startswith("/__admin/") for _, _, path in doors)
    assert any(path == "/__mockpanel/panel/call" for _, _, path in doors)
    assert any(base == guarded.hub.toxiproxy_url and path == "/proxies/x/toxics" for base, _, path in doors)
    with httpx2.Client(timeout=10) as http:
        for base, method, path in doors:
            r = http.request(method, base + path, content=b"{}", headers={"content-type": "application/json"})
            assert r.status_code == 401, (base, method, path, r.status_code, r.text[:200])
            assert r.headers["content-type"].startswith("application/json")
            r = http.request(method, base + path, headers={"authorization": "Bearer not-it"})
            assert r.status_code == 401, (base, method, path)


def test_every_state_changing_route_refuses_another_site_and_every_route_a_rebinding_name(guarded):
    doors = _doors(guarded)
    token = {"authorization": f"Bearer {TOKEN}"}
    with httpx2.Client(timeout=10) as http:
        for base, method, path in doors:
            r = http.request(method, base + path, headers={**token, "host": "rebind.attacker.example"})
            assert r.status_code == 403 and "not allowed" in r.text, (base, method, path, r.text[:200])
            if method in ("GET", "HEAD", "OPTIONS"):
                continue
            for site in ({"origin": "http://evil.example"}, {"sec-fetch-site": "cross-site"}):
                r = http.request(method, base + path, content=b"{}", headers={**token, **site, "content-type": "application/json"})
                assert r.status_code == 403 and "cross-site" in r.text, (base, method, path, r.text[:200])
            # a form or text body, which a page may send without asking first
            r = http.request(method, base + path, content=b"{}", headers={**token, "content-type": "text/plain"})
            assert r.status_code == 415, (base, method, path)


def test_a_door_refuses_a_body_too_large_or_too_deep_in_its_own_format(guarded):
    token = {"authorization": f"Bearer {TOKEN}", "content-type": "application/json"}
    deep = b"[" * 5000 + b"]" * 5000
    nested = b'{"a":' * 100 + b"1" + b"}" * 100
    big = b'{"x": "' + b"a" * (2 * 1024 * 1024) + b'"}'
    toxiproxy = guarded.hub.toxiproxy_url
    auth = guarded.urls["auth"]
    stub = guarded.urls["payments"]
    with httpx2.Client(timeout=30) as http:
        for url in (auth + "/__mockpanel/faults", toxiproxy + "/proxies", stub + "/__admin/mappings",
                    auth + "/__mockpanel/panel/call"):
            for body in (deep, nested):
                r = http.post(url, content=body, headers=token)
                assert r.status_code == 400 and "nested deeper than 64" in r.text, (url, r.text[:200])
            r = http.post(url, content=big, headers=token)
            assert r.status_code == 413, url
        assert http.post(toxiproxy + "/proxies", content=deep, headers=token).json()["status"] == 400  # Toxiproxy's shape
        r = http.post(auth + "/__mockpanel/faults", content=b"[" * 5000, headers=token)
        assert r.status_code == 400
        # a bulk import may be larger than 1 MiB (the guard's limit there is the stub server's)
        mappings = [{"request": {"url": f"/m{i}"}, "response": {"status": 200, "body": "x" * 200}} for i in range(6000)]
        raw = json.dumps({"mappings": mappings}).encode()
        assert len(raw) > 1024 * 1024
        assert http.post(stub + "/__admin/mappings/import", content=raw, headers=token).status_code == 200
        assert http.get(stub + "/m5999").text == "x" * 200
        # and with the token, the doors work
        assert http.get(toxiproxy + "/proxies", headers=token).status_code == 200
        assert http.get(auth + "/__mockpanel/faults", headers=token).status_code == 200


def test_toxiproxys_own_port_wants_the_admin_token_and_is_named_in_the_log():
    with ServeProcess("--only", "auth", "--auth-port", "0", "--admin-token", TOKEN, "--toxiproxy-port", "0") as proc:
        auth = proc.urls(1)["auth"]
        line = proc.readline()
        while not line.startswith("toxiproxy API: running at "):
            line = proc.readline()
        api = line.removeprefix("toxiproxy API: running at ")
        with httpx2.Client(timeout=10) as http:
            r = http.post(api + "/proxies/auth/toxics", json={"type": "timeout", "attributes": {"timeout": 0}})
            assert r.status_code == 401 and r.json()["status"] == 401 and "admin token" in r.json()["error"]
            r = http.post(api + "/proxies", json={"name": "relay", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:22"})
            assert r.status_code == 401
            assert http.post(api + "/reset").status_code == 401
            assert http.get(auth + "/health").status_code == 200  # no toxic reached auth
            token = {"authorization": f"Bearer {TOKEN}"}
            assert http.get(api + "/proxies", headers=token).json()["auth"]["toxics"] == []
            r = http.post(api + "/proxies/auth/toxics", json={"type": "latency", "name": "slow", "attributes": {"latency": 1}}, headers=token)
            assert r.status_code == 200
        line = proc.readline()
        while "toxics_changed" not in line:
            line = proc.readline()
        assert line.endswith("(by Toxiproxy's API)"), line
        assert proc.stop() == 0


def test_toxiproxys_port_beyond_loopback_is_announced_with_or_without_a_token(tmp_path):
    from mockpanel.servers import SERVERS
    from mockpanel.settings import load_settings

    for token in (None, "t"):  # without one, a token is made at start: Toxiproxy's API is never open to the network
        cli = {("mockpanel", "host"): "0.0.0.0", ("mockpanel", "toxiproxy_port"): "8474"}
        if token:
            cli[("mockpanel", "admin_token")] = token
        settings = load_settings(SERVERS, cli=cli, only=["auth"], environ={}, cwd=tmp_path)
        notice = [n for n in settings.notices if "Toxiproxy's API" in n]
        assert notice and "0.0.0.0" in notice[0] and "guarded by the admin token" in notice[0], settings.notices
        assert settings.admin_token_made is (token is None) and settings.admin_token
    settings = load_settings(SERVERS, cli={("mockpanel", "toxiproxy_port"): "8474", ("auth", "host"): "127.0.0.1"}, only=["auth"],
                             environ={}, cwd=tmp_path)
    assert settings.admin_token is None  # on loopback, nothing is made


def test_odd_but_legal_values_get_a_clear_4xx_never_a_500(guarded):
    token = {"authorization": f"Bearer {TOKEN}"}
    toxiproxy, auth = guarded.hub.toxiproxy_url, guarded.urls["auth"]
    for base in (toxiproxy, auth + "/__mockpanel/toxiproxy"):
        for listen, upstream in (("127.0.0.1:²", "127.0.0.1:1"), ("²", "127.0.0.1:1"), ("127.0.0.1:0", "127.0.0.1:²")):
            r = httpx2.post(base + "/proxies", json={"name": "odd", "listen": listen, "upstream": upstream}, headers=token)
            assert r.status_code == 400 and "error" in r.json(), (base, listen, upstream, r.text)
    from mockpanel.attach import RemoteHubClient
    from mockpanel.screens.app_ops import issue_token
    from mockpanel.spec import DomainError

    user = guarded.run(lambda: guarded.hub.facade("auth").users()[0].id)
    with RemoteHubClient(auth, TOKEN) as panel:
        for ttl in (1e300, -5, 0):
            with pytest.raises(DomainError, match="lifetime"):
                panel.read(issue_token, user, "access", ttl)
        token_text, _ = panel.read(issue_token, user, "access", 60)
    assert token_text.count(".") == 2


def test_a_bulk_import_is_all_or_none_and_larger_than_the_guards_default(guarded):
    """5,000 mappings through /__admin/mappings/import: checked in a thread, then added (all or none)."""
    token = {"authorization": f"Bearer {TOKEN}"}
    stub = guarded.urls["payments"]
    mappings = [{"request": {"urlPathPattern": f"/bulk/{i}/[a-z]+", "method": "GET", "headers": {"x-k": {"matches": "v[0-9]+"}}},
                 "response": {"status": 200, "jsonBody": {"n": i}}} for i in range(5000)]
    r = httpx2.post(stub + "/__admin/mappings/import", json={"mappings": mappings}, headers=token, timeout=60)
    assert r.status_code == 200
    assert httpx2.get(stub + "/bulk/4999/abc", headers={"x-k": "v1"}).json() == {"n": 4999}
    # all or none: one bad mapping among them adds nothing
    bad = [*mappings[:10], {"request": {"url": 5}, "response": {}}]
    total = httpx2.get(stub + "/__admin/mappings?limit=1", headers=token).json()["meta"]["total"]
    r = httpx2.post(stub + "/__admin/mappings/import", json={"mappings": bad}, headers=token)
    assert r.status_code in (400, 422) and httpx2.get(stub + "/__admin/mappings?limit=1", headers=token).json()["meta"]["total"] == total


def test_a_bulk_import_does_not_stall_serve(tmp_path):
    """5,000 mappings through /__admin/mappings/import stalled every mock 1.3 s when parsed and checked on the loop.
    Measured in `serve`, a process of its own as users run it (in this test process the client's own threads share
    the interpreter with the mocks' loop)."""
    (tmp_path / "mappings").mkdir()
    (tmp_path / "mockpanel.toml").write_text('[stubs.payments]\nport = 0\nmappings = "mappings"\n')
    mappings = [{"request": {"urlPathPattern": f"/bulk/{i}/[a-z]+", "method": "GET", "headers": {"x-k": {"matches": "v[0-9]+"}}},
                 "response": {"status": 200, "jsonBody": {"n": i}}} for i in range(5000)]
    with ServeProcess("--only", "payments", cwd=tmp_path) as proc:
        stub = proc.urls(1)["payments"]
        with httpx2.Client(timeout=60) as http:
            for _ in range(2):
                assert http.post(stub + "/__admin/mappings/import", json={"mappings": mappings}).status_code == 200
                assert http.get(stub + "/bulk/4999/abc", headers={"x-k": "v1"}).json() == {"n": 4999}
                assert http.delete(stub + "/__admin/mappings").status_code == 200
            loop = http.get(stub + "/__mockpanel/stats").json()["loop"]
        assert loop["worst_stall_ms"] <= 250, loop
        assert proc.stop() == 0
