"""`mockpanel attach`: the panel on mocks in another process — `serve`, `mockpanel start` — through the control API and
its event stream. Every pane shows the other process's state, keys change it, closing the panel leaves it running."""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import sys

import httpx2
import jwt
import pytest

from conftest import ServeProcess, Terminal, make_s3_client, until
from mockpanel.app import attached_app

ALL_ON_FREE_PORTS = ("--auth-port", "0", "--s3-port", "0", "--webhooks-port", "0", "--client-port", "0", "--demo", "--imageapi-port", "0")
SEED_SECRET = "dev-secret-key-change-in-production"


def cells(app, selector: str) -> str:
    """Every cell of a pane's table as one text (what the user reads)."""
    table = app.screen.query_one(selector)
    return "\n".join(" ".join(str(c) for c in table.get_row_at(i)) for i in range(table.row_count))


def has_rows(app, selector: str) -> bool:
    found = app.screen.query(selector)
    return bool(found) and found.first().row_count > 0


@pytest.fixture
def serve():
    with ServeProcess(*ALL_ON_FREE_PORTS, "--quiet") as proc:
        yield proc, proc.urls(5)


async def test_every_pane_works_attached_to_serve_in_another_process(serve):
    proc, urls = serve
    app = attached_app(urls["s3"])  # any server's URL attaches
    async with app.run_test(size=(140, 40)) as pilot:
        assert "attached to" in app.title and urls["s3"] in app.title
        # 1 Servers: the other process's five servers, running
        await until(pilot, lambda: has_rows(app, "#servers-table"))
        shown = cells(app, "#servers-table")
        assert all(name in shown for name in urls) and shown.count("running") == 5
        # traffic to the other process reaches this panel through the event stream
        async with httpx2.AsyncClient() as client:
            await client.post(f"{urls['auth']}/api/auth/register", json={"email": "far@example.com", "password": "password123", "name": "Far Away"})
            await client.post(f"{urls['webhooks']}/webhooks/shop", json={"event_type": "order.paid"})
            await client.get(f"{urls['auth']}/health", headers={"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"})
        s3 = make_s3_client(urls["s3"])
        await asyncio.to_thread(lambda: (s3.create_bucket(Bucket="far"), s3.put_object(Bucket="far", Key="away.txt", Body=b"x")))
        await pilot.press("2")
        await until(pilot, lambda: has_rows(app, "#requests-table") and "/api/auth/register" in cells(app, "#requests-table"))
        # 3 Users: the new user; c copies a token minted by the other process, signed with its secret
        await pilot.press("3")
        await until(pilot, lambda: has_rows(app, "#users-table") and "far@example.com" in cells(app, "#users-table"))
        await pilot.press("c")
        await until(pilot, lambda: bool(app.clipboard))
        assert jwt.decode(app.clipboard, SEED_SECRET, algorithms=["HS256"])["email"]
        await pilot.press("escape")
        # 4 Storage, 5 Webhooks, 6 Client, 8 Traces
        await pilot.press("4")
        await until(pilot, lambda: has_rows(app, "#buckets-table") and "far" in cells(app, "#buckets-table"))
        await pilot.press("5")
        await until(pilot, lambda: has_rows(app, "#webhooks-table") and "order.paid" in cells(app, "#webhooks-table"))
        await pilot.press("6")
        await pilot.pause()
        assert app.screen.query("#pane-client")
        await pilot.press("8")
        await until(pilot, lambda: has_rows(app, "#traces-table") and "4bf92f3577b34da6a3ce929d0e0e4736" in
                    [key.value for key in app.screen.query_one("#traces-table").rows])
        # 9 Proxies: one made from the attached panel listens in the other process
        await pilot.press("9")
        await pilot.pause()
        await pilot.press("a")
        await pilot.pause()
        await pilot.press(*f"far-proxy 0 {urls['auth'].removeprefix('http://')}", "enter")
        await until(pilot, lambda: has_rows(app, "#proxies-table") and "far-proxy" in cells(app, "#proxies-table"))
        listen = cells(app, "#proxies-table").split()[1]
        assert httpx2.get(f"http://{listen}/health", headers={"Host": "localhost"}).status_code == 200
        # 7 Faults: a key here changes the other process's policy; real clients see it
        await pilot.press("7")
        await until(pilot, lambda: has_rows(app, "#faults-table"))
        table = app.screen.query_one("#faults-table")
        table.move_cursor(row=table.get_row_index("auth"))
        await pilot.press("n")
        await until(pilot, lambda: "auth off 50 200 0% 500 3 " in cells(app, "#faults-table"))  # the fail-next column
        async with httpx2.AsyncClient() as client:
            assert (await client.get(f"{urls['auth']}/__mockpanel/faults")).json()["fail_next"] == 3
            assert (await client.get(f"{urls['auth']}/health")).status_code == 500
            await pilot.press("exclamation_mark")  # all chaos off, from the attached panel
            await until(pilot, lambda: "auth off 50 200 0% 500 0 " in cells(app, "#faults-table"))
            assert (await client.get(f"{urls['auth']}/__mockpanel/faults")).json()["fail_next"] == 0
        await pilot.press("q")
    # closing the panel leaves the mocks running
    assert proc.proc.poll() is None
    assert httpx2.get(f"{urls['auth']}/health").status_code == 200


async def test_two_panels_watch_one_set_of_mocks_and_a_panel_leaves_when_they_stop(serve):
    proc, urls = serve
    first, second = attached_app(urls["auth"]), attached_app(urls["webhooks"])
    async with first.run_test(size=(120, 36)) as one:
        async with second.run_test(size=(120, 36)) as two:
            await one.press("2")
            await two.press("2")
            httpx2.get(f"{urls['auth']}/health?from=both")
            for app, pilot in ((first, one), (second, two)):
                await until(pilot, lambda: has_rows(app, "#requests-table") and "from=both" in cells(app, "#requests-table"))
            await two.press("q")
        httpx2.get(f"{urls['auth']}/health?after=second-left")  # the first still follows, the mocks still serve
        await until(one, lambda: "after=second-left" in cells(first, "#requests-table"))
        assert proc.stop() == 0  # the mocks stop: the attached panel says so and closes (they were not its to stop)
        await until(one, lambda: not first.is_running, limit=30)
    assert first.return_code == 1


def test_mockpanel_attach_opens_the_panel_on_what_mockpanel_start_runs(tmp_path):
    """A real terminal: `mockpanel start` in the background, `mockpanel attach` (no URL) on it; a key flips a fault
    the background servers apply; q closes the panel, the servers keep running."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOCKPANEL_")}
    env["MOCKPANEL_STATE_DIR"] = str(tmp_path / "state")
    mockpanel = [sys.executable, "-m", "mockpanel"]
    import subprocess

    started = subprocess.run([*mockpanel, "start", *ALL_ON_FREE_PORTS], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert started.returncode == 0, started.stderr
    try:
        urls = json.loads((tmp_path / "state" / "ports.json").read_text())
        command = " ".join(shlex.quote(p) for p in [*(f"{k}={v}" for k, v in env.items() if k in ("MOCKPANEL_STATE_DIR", "PATH", "HOME", "LANG")),
                                                       *mockpanel, "attach"])
        with Terminal("attach", 120, 34) as term:
            term.send(f"cd {shlex.quote(str(tmp_path))} && env TERM=xterm-256color {command}; echo panel-closed-$?", "Enter")
            term.wait_for(lambda s: "attached to" in s and "Servers" in s, "the attached panel")
            term.send("7")
            term.wait_for(lambda s: "auth     off" in s or "auth  off" in s or ("Fail next" in s and "auth" in s), "the Faults pane")
            term.send("n")
            term.wait_for(lambda s: "auth: fail next 3" in s, "the fault it set")
            assert httpx2.get(f"{urls['auth']}/__mockpanel/faults").json()["fail_next"] == 3
            term.send("q")
            term.wait_for(lambda s: "panel-closed-0" in s, "the panel closing")
        status = subprocess.run([*mockpanel, "status"], env=env, capture_output=True, text=True, timeout=30)
        assert status.returncode == 0 and "auth" in status.stdout
        assert httpx2.get(f"{urls['auth']}/health").status_code == 500  # still running, the fault still set: 3 fail
    finally:
        subprocess.run([*mockpanel, "stop"], env=env, capture_output=True, timeout=60)


def test_attach_without_mocks_says_what_to_do(tmp_path):
    import subprocess

    env = {k: v for k, v in os.environ.items() if not k.startswith("MOCKPANEL_")} | {"MOCKPANEL_STATE_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "mockpanel", "attach"], env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode == 2 and "mockpanel start" in done.stderr
    done = subprocess.run([sys.executable, "-m", "mockpanel", "attach", "http://127.0.0.1:9"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "cannot attach to http://127.0.0.1:9" in done.stderr and "Traceback" not in done.stderr
