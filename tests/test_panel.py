"""The control panel driven by Textual's Pilot: live faults, token copying, filtering, live panes, quitting."""

from __future__ import annotations

import asyncio
import socket

import httpx2
import jwt
from textual.command import CommandList
from textual.widgets import DataTable, Input

from conftest import SEED_SECRET, make_s3_client, port_is_closed, until
from mockpanel.app import create_app
from mockpanel.screens.faults import FaultsPane
from mockpanel.screens.requests import RequestsPane
from mockpanel.screens.storage import StoragePane
from mockpanel.screens.users import UsersPane
from mockpanel.screens.webhooks import WebhooksPane
from mockpanel.testing import settings_for

ALL = ["auth", "s3", "webhooks", "client", "imageapi"]


def rows(table: DataTable) -> list[list[str]]:
    return [[str(cell) for cell in table.get_row_at(i)] for i in range(table.row_count)]


async def test_toggling_a_fault_changes_the_next_response():
    app = create_app(settings_for(ALL))
    async with app.run_test(size=(120, 36)) as pilot:
        auth = app.hub.urls()["auth"]
        async with httpx2.AsyncClient() as client:
            assert (await client.get(f"{auth}/health")).status_code == 200
            await pilot.press("7")
            table = app.query_one(FaultsPane).query_one(DataTable)
            assert rows(table)[0][0] == "auth"
            await pilot.press("n")  # fail the next 3 requests of the selected server (auth)
            assert [(await client.get(f"{auth}/health")).status_code for _ in range(4)] == [500, 500, 500, 200]
            await pilot.press("s")  # injected errors use 503
            await pilot.press("ctrl+a", "ctrl+k", *"503", "enter")
            assert app.hub["auth"].ctx.faults.policy.error_codes == [503]
            await pilot.press("s")
            await pilot.press("ctrl+a", "ctrl+k", *"99", "enter")  # refused inside the prompt, which stays open
            assert "from 400 to 599" in str(app.screen.query_one("#prompt-error").render())
            await pilot.press("escape")
            assert app.hub["auth"].ctx.faults.policy.error_codes == [503]
            await pilot.press("e", "ctrl+a", "ctrl+k", *"10", "enter")  # error rate 10 %
            assert app.hub["auth"].ctx.faults.policy.error_rate == 0.1
            assert any(n.message == "auth: errors 10% 503" for n in app._notifications)  # in words
            await pilot.press("e", "ctrl+a", "ctrl+k", *"100%", "enter")
            assert (await client.get(f"{auth}/health")).status_code == 503
            await pilot.press("1")
            servers = rows(app.query_one("#servers-table", DataTable))
            assert "errors 100% 503" in servers[0][-1]  # the change shows at once in Servers
            await pilot.press("exclamation_mark")  # all chaos off
            assert (await client.get(f"{auth}/health")).status_code == 200
            assert not any(r.ctx.faults.active for r in app.hub.runners.values())


async def test_copying_a_token_puts_a_valid_jwt_in_the_clipboard():
    app = create_app(settings_for(["auth"]))
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.press("3")
        table = app.query_one(UsersPane).query_one(DataTable)
        assert rows(table)[0][:3] == ["alice@example.com", "Alice Johnson", "test-user-123"]
        await pilot.press("down", "c")  # bob
        claims = jwt.decode(app.clipboard, SEED_SECRET, algorithms=["HS256"])
        assert claims["sub"] == "test-user-456" and claims["type"] == "access"
        dialog_text = app.screen.query_one("#dialog-text").text  # the token is also shown to select by hand
        assert dialog_text == app.clipboard
        await pilot.press("escape")
        await pilot.press("t")
        assert jwt.decode(app.clipboard, SEED_SECRET, algorithms=["HS256"])["type"] == "refresh"
        await pilot.press("escape", "i")
        await pilot.press(*"90", "enter")  # the prefilled 60 is selected: typing replaces it
        claims = jwt.decode(app.clipboard, SEED_SECRET, algorithms=["HS256"])
        assert claims["exp"] - claims["iat"] == 90 * 60


async def test_filtering_the_requests_pane():
    app = create_app(settings_for(["auth", "s3"]))
    async with app.run_test(size=(120, 36)) as pilot:
        urls = app.hub.urls()
        async with httpx2.AsyncClient() as client:
            await client.get(f"{urls['auth']}/health")
            await client.post(f"{urls['auth']}/api/auth/login", json={"email": "alice@example.com", "password": "wrong-password"})
            await client.put(f"{urls['s3']}/panel-bucket/k", content=b"x")
        await pilot.press("2")
        pane = app.query_one(RequestsPane)
        table = pane.query_one(DataTable)
        await until(pilot, lambda: table.row_count == 3)
        assert [r[1:5] for r in rows(table)] == [["auth", "GET", "/health", "200"], ["auth", "POST", "/api/auth/login", "401"],
                                                ["s3", "PUT", "/panel-bucket/k", "200"]]
        await pilot.press("slash")
        await pilot.press(*"status:4xx")
        assert [r[3] for r in rows(table)] == ["/api/auth/login"]
        pane.query_one(Input).value = "server:s3"
        await until(pilot, lambda: [r[1] for r in rows(table)] == ["s3"])
        # new traffic appears live, filtered
        async with httpx2.AsyncClient() as client:
            await client.get(f"{urls['auth']}/health")
            await client.get(f"{urls['s3']}/panel-bucket/k")
        await until(pilot, lambda: table.row_count == 2)
        assert [r[2] for r in rows(table)] == ["PUT", "GET"]
        table.focus()
        await pilot.press("enter")  # the detail of the selected request
        assert "GET /panel-bucket/k" in app.screen.query_one("#dialog-text").text


async def test_a_webhook_posted_over_http_appears_in_the_webhooks_pane():
    app = create_app(settings_for(["webhooks"]))
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.press("5")
        async with httpx2.AsyncClient() as client:
            await client.post(f"{app.hub.urls()['webhooks']}/webhooks/client-123", json={"event_type": "image.processed"},
                              headers={"X-Webhook-Signature": "0" * 64})
        table = app.query_one(WebhooksPane).query_one(DataTable)
        await until(pilot, lambda: table.row_count == 1)
        assert rows(table)[0][1:5] == ["client-123", "image.processed", "invalid", "x-webhook-signature"]
        detail = str(app.query_one("#webhook-detail").render())
        assert "signature does not match" in detail and "expected:" in detail


async def test_an_object_put_with_boto3_appears_in_storage():
    app = create_app(settings_for(["s3"]))
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.press("4")
        s3 = make_s3_client(app.hub.urls()["s3"])

        def put() -> None:
            s3.create_bucket(Bucket="panel-photos")
            s3.put_object(Bucket="panel-photos", Key="cat.jpg", Body=b"meow" * 100, ContentType="image/jpeg", Metadata={"owner": "alice"})

        await asyncio.to_thread(put)
        pane = app.query_one(StoragePane)
        # both tables are drawn from the same change, but not in the same refresh: wait for each
        await until(pilot, lambda: pane.query_one("#objects-table", DataTable).row_count == 1
                    and rows(pane.query_one("#buckets-table", DataTable))[0][:3] == ["panel-photos", "1", "400 B"])
        objects = rows(pane.query_one("#objects-table", DataTable))
        assert objects[0][0] == "cat.jpg" and objects[0][1] == "400 B" and objects[0][2] == "image/jpeg" and objects[0][5] == "owner=alice"
        pane.query_one("#objects-table", DataTable).focus()
        await pilot.press("c")  # presigned URL: copied and fetchable
        async with httpx2.AsyncClient() as client:
            assert (await client.get(app.clipboard)).content == b"meow" * 100
        await pilot.press("escape", "x")  # delete asks first: n keeps it
        await pilot.press("n")
        assert app.hub.facade("s3").object_count() == 1
        await pilot.press("x", "y")
        await until(pilot, lambda: pane.query_one("#objects-table", DataTable).row_count == 0)


async def test_command_palette_copies_a_token():
    app = create_app(settings_for(["auth"]))
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.press("ctrl+p")
        await pilot.press(*"Copy token for diana")
        await until(pilot, lambda: bool(app.screen.query(CommandList)) and app.screen.query_one(CommandList).option_count == 1)
        await pilot.press("enter")
        await until(pilot, lambda: app.clipboard is not None and app.clipboard.count(".") == 2)
        assert jwt.decode(app.clipboard, SEED_SECRET, algorithms=["HS256"])["email"] == "diana@example.com"


async def test_a_server_that_cannot_start_shows_failed_and_the_rest_run():
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    busy = blocker.getsockname()[1]
    try:
        app = create_app(settings_for(["auth", "webhooks"], {"auth": {"port": str(busy)}}))
        async with app.run_test(size=(120, 36)):
            servers = rows(app.query_one("#servers-table", DataTable))
            assert servers[0][0] == "auth" and servers[0][2] == f"failed: port {busy} is in use"
            assert servers[1][2] == "running"
            assert "✗ auth" in app.sub_title and "● webhooks" in app.sub_title
    finally:
        blocker.close()


async def test_quit_stops_every_server():
    app = create_app(settings_for(["auth", "s3"]))
    async with app.run_test(size=(80, 24)) as pilot:
        ports = [r.port for r in app.hub.runners.values()]
        await pilot.press("q")
        await until(pilot, lambda: all(r.status == "stopped" for r in app.hub.runners.values()))
    assert all(port_is_closed(p) for p in ports)


async def test_a_scenario_runs_in_the_panel_and_stops_from_the_palette(tmp_path):
    from mockpanel.scenario import load_scenario

    path = tmp_path / "outage.toml"
    path.write_text('name = "outage"\n[[step]]\nat = "200ms"\nserver = "auth"\nfaults = { error_rate = 1.0, error_codes = [503] }')
    journal = tmp_path / "journal.jsonl"
    app = create_app(settings_for(["auth"]), scenario=load_scenario(path, ["auth"]), journal_out=journal)
    async with app.run_test(size=(120, 36)) as pilot:
        auth = app.hub.urls()["auth"]
        await pilot.press("7")
        hint = app.query_one("#faults-hint")
        await until(pilot, lambda: "scenario outage: 1/1 steps applied" in str(hint.render()))
        assert rows(app.query_one(FaultsPane).query_one(DataTable))[0][4] == "100%"
        async with httpx2.AsyncClient() as client:
            r = await client.get(f"{auth}/health")
            assert r.status_code == 503
            await pilot.press("ctrl+p")
            await pilot.press(*"stop scenario")
            await pilot.press("enter")
            await until(pilot, lambda: app.hub["auth"].ctx.faults.policy.error_rate == 0.0)
            assert (await client.get(f"{auth}/health")).status_code == 200
        await until(pilot, lambda: rows(app.query_one(FaultsPane).query_one(DataTable))[0][4] == "0%")
    faults = [line for line in journal.read_text().splitlines()]
    assert '"fault": "error_rate:503 (scenario outage, step 1)"' in faults[0]
    assert '"fault": null' in faults[1]


async def test_a_server_that_crashes_shows_failed_and_the_others_keep_serving(monkeypatch):
    from mockpanel.runner import EmbeddedServer

    serve = EmbeddedServer.main_loop

    async def main_loop(self) -> None:
        if self.config.app.ctx.name == "auth":
            await asyncio.sleep(0.3)
            raise RuntimeError("main loop blew up")
        await serve(self)

    monkeypatch.setattr(EmbeddedServer, "main_loop", main_loop)
    app = create_app(settings_for(["auth", "webhooks"]))
    async with app.run_test(size=(120, 36)) as pilot:
        auth_port = app.hub["auth"].port
        table = app.query_one("#servers-table", DataTable)
        await until(pilot, lambda: rows(table)[0][2].startswith("failed: crashed: RuntimeError"))  # cut to fit
        assert rows(table)[1][2] == "running"
        await pilot.press("enter")  # the whole reason in the server's detail
        assert "status: failed — crashed: RuntimeError: main loop blew up" in app.screen.query_one("#dialog-text").text
        await pilot.press("escape")
        assert "✗ auth" in app.sub_title and "● webhooks" in app.sub_title
        assert port_is_closed(auth_port)
        async with httpx2.AsyncClient() as client:
            assert (await client.get(app.hub.urls()["webhooks"] + "/health")).status_code == 200


async def test_export_and_scenario_from_the_panel(tmp_path, monkeypatch):
    import json

    monkeypatch.chdir(tmp_path)
    (tmp_path / "slow.toml").write_text('name = "slow"\n[[step]]\nserver = "auth"\nfaults = { fail_next = 1, fail_next_code = 502 }')
    (tmp_path / "bad.toml").write_text('[[step]]\nserver = "s3"\nfaults = { fail_next = 1 }')
    app = create_app(settings_for(["auth"]))
    async with app.run_test(size=(120, 36)) as pilot:
        auth = app.hub.urls()["auth"]
        await pilot.press("7", "S")
        await pilot.press(*"bad.toml", "enter")  # refused with the reason; nothing runs
        await until(pilot, lambda: any("server 's3' is not running" in n.message for n in app._notifications))
        assert app.hub.scenario_run is None
        await pilot.press("S")
        await pilot.press(*"slow.toml", "enter")
        await until(pilot, lambda: app.hub["auth"].ctx.faults.source == "scenario slow, step 1")
        async with httpx2.AsyncClient() as client:
            assert (await client.get(f"{auth}/health")).status_code == 502
            assert (await client.get(f"{auth}/api/auth/users")).status_code == 200
        await pilot.press("2")
        await until(pilot, lambda: len(rows(app.query_one("#requests-table", DataTable))) == 2)
        await pilot.press("slash", *"status:5xx", "enter")  # enter: from the filter back to the table
        await pilot.press("w")
        await pilot.press("ctrl+a", "ctrl+k", *"errors.har", "enter")  # home, delete to the end: the default name goes
        await until(pilot, lambda: (tmp_path / "errors.har").exists())
        entries = json.loads((tmp_path / "errors.har").read_text())["log"]["entries"]
        assert [(e["request"]["url"], e["response"]["status"], e["_fault"]) for e in entries] == [
            (f"{auth}/health", 502, "fail_next:502 (scenario slow, step 1)")]
        await pilot.press("ctrl+p", *"export the journal as json", "enter")
        await until(pilot, lambda: list(tmp_path.glob("mockpanel-journal-*.jsonl")))
        lines = next(tmp_path.glob("mockpanel-journal-*.jsonl")).read_text().splitlines()
        assert [json.loads(line)["path"] for line in lines] == ["/health", "/api/auth/users"]


async def test_the_palette_reaches_every_pane_action():
    from mockpanel.app import PANES, PanelCommands

    app = create_app(settings_for(["auth", "s3", "webhooks"]))
    async with app.run_test(size=(120, 36)) as pilot:
        s3 = make_s3_client(app.hub.urls()["s3"])
        await asyncio.to_thread(s3.create_bucket, Bucket="docs")
        await asyncio.to_thread(s3.put_object, Bucket="docs", Key="report.pdf", Body=b"%PDF")
        names = [name for name, _, _ in PanelCommands(app.screen).commands()]
        for pane in PANES:
            for binding in pane.BINDINGS:
                assert any(name.startswith(f"{pane.TITLE}: {binding.description}") for name in names), binding
        # one object, by name: the URL downloads it
        await pilot.press("ctrl+p", *"presigned url for docs/report", "enter")
        await until(pilot, lambda: "report.pdf" in (app.clipboard or ""))
        async with httpx2.AsyncClient() as client:
            assert (await client.get(app.clipboard)).content == b"%PDF"
        await pilot.press("escape")
        # a webhook client's response plan, from the palette, on the selected event
        async with httpx2.AsyncClient() as client:
            await client.post(app.hub.urls()["webhooks"] + "/webhooks/shop", json={"type": "order.paid"})
            await pilot.press("5")
            await until(pilot, lambda: app.query_one(WebhooksPane).query_one(DataTable).row_count == 1)
            await pilot.press("ctrl+p", *"webhooks: response plan", "enter")
            await pilot.press(*"503+200", "enter")
            await until(pilot, lambda: app.hub.facade("webhooks").plan_for("shop") is not None)
            statuses = [(await client.post(app.hub.urls()["webhooks"] + "/webhooks/shop", json={"n": 2})).status_code for _ in range(2)]
        assert statuses == [503, 200]


async def test_adding_a_user_checks_what_the_api_checks():
    app = create_app(settings_for(["auth"]))
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.press("3", "n", *"frank@example.com short Frank Castle", "enter")
        await until(pilot, lambda: any("password: String should have at least 8 characters" in n.message for n in app._notifications))
        await pilot.press("n", *("frank@example.com " + "x" * 80 + " Frank"), "enter")
        await until(pilot, lambda: any("72" in n.message for n in app._notifications))
        await pilot.press("n", *"frank@example.com password123 Frank Castle", "enter")
        table = app.query_one(UsersPane).query_one(DataTable)
        await until(pilot, lambda: any("frank@example.com" in row for row in rows(table)))
        async with httpx2.AsyncClient() as client:
            r = await client.post(app.hub.urls()["auth"] + "/api/auth/login", json={"email": "frank@example.com", "password": "password123"})
            assert r.status_code == 200


async def test_a_tick_while_the_panel_is_torn_down_does_nothing():
    # CI once saw the flush timer fire after the panes were removed at exit (NoMatches from active_pane).
    from textual.widgets import TabbedContent

    app = create_app(settings_for(["auth"]))
    async with app.run_test(size=(80, 24)) as pilot:
        await app.query_one(TabbedContent).remove()
        await pilot.pause()
        assert app.active_pane() is None
        app._pending.append(object())
        app.flush()
        app.refresh_all()


async def test_a_tick_while_a_pane_is_being_removed_does_nothing():
    # CI saw the flush timer fire at exit while the Servers pane was still in the DOM but its table already gone
    # (Textual removes a subtree bottom-up): NoMatches from ServersPane.refresh_view.
    from mockpanel.journal import DomainEvent
    from mockpanel.screens.servers import ServersPane

    app = create_app(settings_for(["auth"]))
    async with app.run_test(size=(80, 24)) as pilot:
        pane = app.query_one(ServersPane)
        assert app.active_pane() is pane
        await pane.query_one(DataTable).remove()
        removal = pane.remove()  # begun, not finished: the pane is still in the DOM
        app._pending.append(DomainEvent(server="auth", kind="faults_changed", data={"active": False, "faults": []}))
        app.flush()
        app.refresh_all()
        await removal
        await pilot.pause()


async def test_the_requests_tails_timer_while_its_pane_is_being_removed_does_nothing():
    # Under a flood the tail's rows wait for a timer; it may fire in the same window as above.
    from mockpanel.screens.requests import RequestsPane

    app = create_app(settings_for(["auth"]))
    async with app.run_test(size=(80, 24)) as pilot, httpx2.AsyncClient() as client:
        await pilot.press("2")
        await client.get(app.hub.urls()["auth"] + "/health")
        pane = app.query_one(RequestsPane)
        # The request drawn first: else the app's flush may bring it in the window below (the table gone, the pane's
        # removal not yet begun), which Textual's own teardown never makes (it marks the pane before any widget goes).
        await until(pilot, lambda: pane.query_one(DataTable).row_count == 1)
        entry = app.hub.journal.entries()[-1]
        await pane.query_one(DataTable).remove()
        removal = pane.remove()
        pane._held = [entry]
        pane._add_held()  # what the timer calls
        await removal
        await pilot.pause()


async def test_the_users_pane_drives_the_oidc_issuer():
    app = create_app(settings_for(["auth"]))
    async with app.run_test(size=(160, 40)) as pilot, httpx2.AsyncClient() as client:
        auth = app.hub.urls()["auth"]

        async def first_kid() -> str:
            return (await client.get(f"{auth}/jwks")).json()["keys"][0]["kid"]

        await pilot.press("3", "down", "C")  # bob: his claims
        await pilot.press(*'{"role": "auditor"}', "enter")
        table = app.query_one(UsersPane).query_one(DataTable)
        await until(pilot, lambda: rows(table)[1][4] == '{"role": "auditor"}')

        await pilot.press("I", *"shop", "enter")  # an ID token for the client "shop"
        await until(pilot, lambda: app.clipboard and app.clipboard.count(".") == 2)
        jwks = jwt.PyJWKClient(f"{auth}/jwks")
        issuer = auth.replace("127.0.0.1", "localhost")
        id_token = app.clipboard
        claims = await asyncio.to_thread(lambda: jwt.decode(id_token, jwks.get_signing_key_from_jwt(id_token).key,
                                                            algorithms=["RS256"], audience="shop", issuer=issuer))
        assert (claims["sub"], claims["role"]) == ("test-user-456", "auditor")
        await pilot.press("escape")

        await pilot.press("T", *'{"expired": true}', "enter")
        await until(pilot, lambda: "auth ⚡" in app.sub_title)
        await pilot.press("O", "enter")
        await until(pilot, lambda: app.clipboard != id_token)
        expired = app.clipboard
        assert jwt.decode(expired, options={"verify_signature": False})["exp"] < jwt.decode(id_token, options={"verify_signature": False})["iat"]
        await pilot.press("escape", "exclamation_mark")  # all chaos off includes token faults
        await until(pilot, lambda: "⚡" not in app.sub_title)
        assert (await client.get(f"{auth}/__mockpanel/oidc/faults")).json() == {}

        before = await first_kid()
        await pilot.press("K")
        await pilot.pause()
        assert await first_kid() != before

        await pilot.press("v", "y")  # bob's sessions: the two tokens above were issued in sessions of their own
        await until(pilot, lambda: any("2 OIDC sessions ended" in str(n.message) for n in app._notifications))
        introspected = (await client.post(f"{auth}/oauth2/introspect", data={"token": expired})).json()
        assert introspected == {"active": False}


async def test_the_traces_pane_shows_one_upload_as_a_waterfall(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    from mockpanel.screens.traces import TracesPane

    app = create_app(settings_for(ALL, {"imageapi": {"enabled": "true"}}))
    async with app.run_test(size=(160, 40)) as pilot, httpx2.AsyncClient() as client:
        urls = app.hub.urls()
        import io

        from PIL import Image

        image = io.BytesIO()
        Image.new("RGB", (120, 80), (10, 200, 90)).save(image, "PNG")
        answer = await client.post(f"{urls['client']}/api/upload", files={"file": ("a.png", image.getvalue(), "image/png")},
                                   data={"user_id": "panel"}, headers={"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"})
        assert answer.status_code == 202
        await until(pilot, lambda: any(e.server == "webhooks" for e in app.hub.journal.trace("4bf92f3577b34da6a3ce929d0e0e4736")))
        await pilot.press("8")
        pane = app.query_one(TracesPane)
        traces = pane.query_one("#traces-table", DataTable)
        await until(pilot, lambda: "4bf92f3577b34da6a3ce929d0e0e4736" in [str(k.value) for k in traces.rows])
        traces.move_cursor(row=[str(k.value) for k in traces.rows].index("4bf92f3577b34da6a3ce929d0e0e4736"))
        await pilot.pause()
        hops = pane.query_one("#hops-table", DataTable)
        labels = [str(row[0]) for row in rows(hops)]
        assert labels[0] == "client POST /api/upload" and labels[1] == "  imageapi POST /api/v1/images/upload"
        assert sum(label.startswith("    s3 PUT /") for label in labels) == 4 and labels[-1] == "    webhooks POST /webhooks/image-api"
        await pilot.press("enter")  # to the hops
        assert hops.has_focus
        await pilot.press("down", "down", "enter")  # the first S3 PUT, in full
        assert str(app.screen.title_text).endswith("(s3)") and "PUT /" in app.screen.query_one("#dialog-text").text
        await pilot.press("escape")
        pane.query_one("#traces-table", DataTable).focus()
        await pilot.press("P")  # the trace saved as a test, in the working directory
        saved = tmp_path / "test_trace_4bf92f35.py"
        await until(pilot, saved.exists)
        assert "def test_trace_4bf92f35(mockpanel_factory):" in saved.read_text()


async def test_the_storage_pane_advances_s3s_clock_and_lifecycle_rules_act():
    app = create_app(settings_for(["s3"]))
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.press("4")
        s3 = make_s3_client(app.hub.urls()["s3"])

        def setup() -> None:
            s3.create_bucket(Bucket="expiring")
            s3.put_bucket_lifecycle_configuration(Bucket="expiring", LifecycleConfiguration={"Rules": [
                {"ID": "week", "Status": "Enabled", "Filter": {"Prefix": "tmp/"}, "Expiration": {"Days": 7}}]})
            s3.put_object(Bucket="expiring", Key="tmp/old.csv", Body=b"x")
            s3.put_object(Bucket="expiring", Key="keep.csv", Body=b"x")

        await asyncio.to_thread(setup)
        pane = app.query_one(StoragePane)
        await until(pilot, lambda: pane.query_one("#objects-table", DataTable).row_count == 2)
        await pilot.press("L", "ctrl+a", "ctrl+k", *"abc", "enter")
        assert any("not a number of days" in n.message for n in app._notifications)
        await pilot.press("L", "ctrl+a", "ctrl+k", *"7", "enter")
        assert any(n.message == "the mocks' clock is 7 days ahead: 1 expired" for n in app._notifications)
        await until(pilot, lambda: app.hub.facade("s3").object_count() == 1)
        assert [o["Key"] for o in (await asyncio.to_thread(s3.list_objects_v2, Bucket="expiring"))["Contents"]] == ["keep.csv"]
