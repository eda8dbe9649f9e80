"""One domain interface per server, every change an event: what the panel, the control API and the browser see
when a change comes from somewhere else."""

from __future__ import annotations

import ast
import os
import socket
import threading
from pathlib import Path

import httpx2
import pytest
from textual.widgets import DataTable

from conftest import CHROMIUM, CHROMIUM_ARGS
from mockpanel.app import create_app
from mockpanel.screens.faults import FaultsPane
from mockpanel.screens.webhooks import WebhooksPane
from mockpanel.settings import SettingsError
from mockpanel.testing import RunningHub, settings_for

PACKAGE = Path(__file__).resolve().parent.parent / "mockpanel"
FACADES = {"Accounts", "Storage", "Receiver", "UploadHistory", "ImageJobs", "Stubs"}


def _imports(path: Path) -> list[ast.ImportFrom]:
    """Relative imports of a module, at any depth, except those only for type checkers."""
    tree = ast.parse(path.read_text())
    skip = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
            for n in ast.walk(node)}
    return [n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level and id(n) not in skip]


def test_panes_reach_servers_only_through_their_facades():
    for path in (PACKAGE / "screens").glob("*.py"):
        for node in _imports(path):
            if node.level == 2 and (node.module or "").startswith("servers"):
                assert {alias.name for alias in node.names} <= FACADES, f"{path.name} imports {ast.unparse(node)}"


def test_no_import_circle_among_the_modules_and_packages():
    """Nodes are mockpanel/*.py and the servers and screens packages as wholes (lazy imports count too)."""
    graph: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        node_name = parts[0]
        package = parts[:-1] if parts[-1] != "__init__" else parts[:-1]
        for node in _imports(path):
            base = package[: len(package) - (node.level - 1)] if node.level > 1 else package
            target = (*base, *(node.module.split(".") if node.module else ()))
            names = [target[0]] if target else [alias.name for alias in node.names]
            graph.setdefault(node_name, set()).update(n for n in names if n != node_name)
        for node in ast.walk(ast.parse(path.read_text())):  # absolute imports of the package's own modules count too
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module] if isinstance(node, ast.ImportFrom) and not node.level and node.module else []
            for module in modules:
                parts_of = module.split(".")
                if parts_of[0] == "mockpanel" and len(parts_of) > 1 and parts_of[1] != node_name:
                    graph.setdefault(node_name, set()).add(parts_of[1])

    def reaches(start: str, goal: str, seen: frozenset[str]) -> bool:
        return any(n == goal or (n not in seen and reaches(n, goal, seen | {n})) for n in graph.get(start, ()))

    assert "spec" in graph["servers"] and "hub" not in graph["servers"]
    circles = sorted(name for name in graph if reaches(name, name, frozenset({name})))
    assert circles == [], f"on an import circle: {circles}"


async def test_a_fault_change_through_the_control_api_shows_in_the_header_and_faults_pane_in_one_flush():
    app = create_app(settings_for(["auth", "s3"]))
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.press("7")
        table = app.query_one(FaultsPane).query_one(DataTable)
        app.flush()
        assert "⚡" not in app.sub_title
        served = app.hub["auth"].ctx.stats.total
        async with httpx2.AsyncClient() as client:
            r = await client.patch(app.hub.urls()["auth"] + "/__mockpanel/faults", json={"error_rate": 0.3})
            assert r.status_code == 200
        app.flush()  # exactly one flush: the change is an event, no request needed to reveal it
        assert app.sub_title == "● auth ⚡  ● s3"
        assert table.get_row_at(0)[4] == "30%"
        assert app.hub["auth"].ctx.stats.total == served  # nothing else was asked of the server
        async with httpx2.AsyncClient() as client:
            await client.delete(app.hub.urls()["s3"] + "/__mockpanel/faults")
            await client.delete(app.hub.urls()["auth"] + "/__mockpanel/faults")
        app.flush()
        assert "⚡" not in app.sub_title and table.get_row_at(0)[4] == "0%"


async def test_resetting_users_in_the_panel_sends_the_same_event_as_the_http_reset():
    app = create_app(settings_for(["auth"]))
    async with app.run_test(size=(120, 36)) as pilot:
        seen = []
        app.hub.bus.subscribe(lambda item: seen.append((item.server, item.kind, item.data)) if hasattr(item, "kind") else None)
        await pilot.press("3", "x", "y")  # x asks first; y confirms
        from_panel = [e for e in seen if e[1] == "users_reset"]
        seen.clear()
        async with httpx2.AsyncClient() as client:
            assert (await client.delete(app.hub.urls()["auth"] + "/api/auth/users/reset")).status_code == 200
        from_http = [e for e in seen if e[1] == "users_reset"]
        assert from_panel == from_http == [("auth", "users_reset", {"users": 5})]


def test_a_flood_on_one_server_leaves_another_servers_requests():
    # A ring per server: 2,500 requests to auth with rings of 1,000 each (the default is 10,000 each).
    with RunningHub(settings_for(["auth", "webhooks"], {"mockpanel": {"journal_size": "1000"}})) as running:
        auth, webhooks = running.urls["auth"], running.urls["webhooks"]
        for i in range(3):
            httpx2.post(f"{webhooks}/webhooks/shop", json={"n": i})
        with httpx2.Client() as client:
            for _ in range(2500):
                client.get(f"{auth}/health")
        kept = httpx2.get(f"{webhooks}/__mockpanel/requests").json()
        assert [r["path"] for r in kept["requests"]] == ["/webhooks/shop"] * 3
        assert httpx2.get(f"{auth}/__mockpanel/requests", params={"limit": 5000}).json()["count"] == 1000
        # clearing the journal's view keeps the latency figures and counts
        assert httpx2.delete(f"{auth}/__mockpanel/requests").status_code == 200
        stats = httpx2.get(f"{auth}/__mockpanel/stats").json()
        assert stats["total_requests"] >= 2500 and stats["p50_ms"] is not None and stats["p95_ms"] is not None
        both = running.run(lambda: running.hub.journal.query(limit=2))
        assert [e.server for e in both] == ["webhooks", "webhooks"]  # auth's are cleared; the merged view is by id


def test_dropped_and_hung_requests_count_as_errors():
    with RunningHub(settings_for(["auth"])) as running:
        url = running.urls["auth"]
        httpx2.patch(f"{url}/__mockpanel/faults", json={"drop_rate": 1.0}).raise_for_status()
        with pytest.raises(httpx2.HTTPError):
            httpx2.get(f"{url}/health", timeout=5)
        httpx2.patch(f"{url}/__mockpanel/faults", json={"drop_rate": 0.0, "hang_rate": 1.0}).raise_for_status()
        with pytest.raises(httpx2.ReadTimeout):
            httpx2.get(f"{url}/health", timeout=0.5)
        httpx2.delete(f"{url}/__mockpanel/faults").raise_for_status()
        stats = running.run(lambda: running["auth"].ctx.stats.as_dict())
        assert stats["total_errors"] == 2, stats


@pytest.mark.parametrize("plan", ["99x2+200", "200x20000000", "600", "abc", "500x", "x3", "delay=99999999", "1" * 50])
def test_invalid_response_plans_get_422_and_change_nothing(plan):
    with RunningHub(settings_for(["webhooks"])) as running:
        url = running.urls["webhooks"] + "/__mockpanel/clients/shop"
        r = httpx2.patch(url, json={"plan": plan})
        assert r.status_code == 422, r.text
        assert "plan" in str(r.json()["detail"])
        assert httpx2.get(url).json()["plan"] is None
        assert httpx2.patch(url, json={"plan": {"statuses": [99], "then": 200}}).status_code == 422
        assert httpx2.patch(url, json={"plan": "503x2+200"}).json()["plan"]["statuses"] == [503, 503]


def test_an_invalid_plan_in_settings_is_refused_before_start():
    with pytest.raises(SettingsError, match="webhooks.plans"):
        RunningHub(settings_for(["webhooks"], {"webhooks": {"plans": "shop:99x2+200"}})).start()


def test_two_hubs_in_one_process_each_see_only_their_own_requests_and_logs():
    with RunningHub(settings_for(["auth"])) as one, RunningHub(settings_for(["auth"])) as two:
        httpx2.get(one.urls["auth"] + "/health")
        httpx2.get(two.urls["auth"] + "/nope")
        assert [e.path for e in one.run(one.hub.journal.entries)] == ["/health"]
        assert [e.path for e in two.run(two.hub.journal.entries)] == ["/nope"]
        # malformed HTTP makes uvicorn log a warning: only the Hub whose server got it hears of it
        port = int(one.urls["auth"].rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(b"NOT HTTP AT ALL\r\n\r\n")
            while sock.recv(4096):
                pass
        assert httpx2.get(one.urls["auth"] + "/health").status_code == 200
        assert any("Invalid HTTP request" in line for line in one.run(lambda: list(one.hub.log)))
        assert not any("Invalid HTTP request" in line for line in two.run(lambda: list(two.hub.log)))


def test_a_failed_start_leaves_no_thread_behind():
    before = {t for t in threading.enumerate() if t.name == "mockpanel-hub"}
    with pytest.raises(SettingsError):
        RunningHub(settings_for(["auth", "s3"], {"s3": {"buckets": "Not_A_Bucket"}})).start()
    assert {t for t in threading.enumerate() if t.name == "mockpanel-hub"} == before


async def test_clearing_webhooks_in_the_panel_empties_the_browser_dashboard():
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the browser tests: {CHROMIUM} is missing")
        pytest.skip(f"needs Chromium at {CHROMIUM} (apt-get install chromium)")
    from playwright.async_api import async_playwright

    app = create_app(settings_for(["webhooks"]))
    async with app.run_test(size=(120, 36)) as pilot, async_playwright() as p:
        url = app.hub.urls()["webhooks"]
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page()
            await page.goto(url + "/")
            await page.wait_for_selector("#live.on")
            async with httpx2.AsyncClient() as client:
                for i in range(2):
                    await client.post(f"{url}/webhooks/shop", json={"event_type": f"order.{i}"})
            await page.wait_for_function("document.querySelectorAll('#rows tr').length === 2")
            await pilot.press("5")
            table = app.query_one(WebhooksPane).query_one(DataTable)
            for _ in range(200):  # the pane shows both before its key is pressed
                if table.row_count == 2 and table.has_focus:
                    break
                await pilot.pause(0.05)
            await pilot.press("x", "y")  # clear, confirmed
            await page.wait_for_function("document.querySelectorAll('#rows tr').length === 0")
            assert await page.locator("#no-events").is_visible()
        finally:
            await browser.close()
