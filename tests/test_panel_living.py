"""The panel as one lives in it (issue 12): the highlighted row is the one acted on, selection follows its item,
columns fit the terminal, keys typed fast are not lost, Storage pages and folders, requests listed by arrival."""

from __future__ import annotations

import asyncio

import httpx2
from textual import events
from textual.widgets import DataTable

from conftest import make_s3_client, until
from mockpanel.app import create_app
from mockpanel.screens.requests import RequestsPane
from mockpanel.screens.storage import StoragePane
from mockpanel.screens.webhooks import WebhooksPane
from mockpanel.testing import settings_for


def column(table: DataTable, index: int) -> list[str]:
    return [str(table.get_row_at(i)[index]) for i in range(table.row_count)]


async def requests_listed(app, pilot, count: int) -> None:
    """`count` requests to auth (GET /health?n=0, 1, …), listed in the Requests pane, shown."""
    url = app.hub.urls()["auth"]
    async with httpx2.AsyncClient() as client:
        for i in range(count):
            await client.get(f"{url}/health?n={i}")
    await pilot.press("2")
    table = app.query_one(RequestsPane).query_one(DataTable)
    await until(pilot, lambda: table.row_count == count)


async def test_enter_and_the_palette_open_the_highlighted_request_not_the_newest():
    app = create_app(settings_for(["auth"]))
    async with app.run_test(size=(120, 36)) as pilot:
        await requests_listed(app, pilot, 5)
        for follow in (True, False):
            if not follow:
                await pilot.press("f")
            await pilot.press("up", "up")
            await pilot.press("enter")
            assert app.screen.query_one("#dialog-text").text.startswith("GET /health?n=2"), follow
            await pilot.press("escape")
            await pilot.press("ctrl+p", *"requests: detail", "enter")
            assert app.screen.query_one("#dialog-text").text.startswith("GET /health?n=2"), follow
            await pilot.press("escape", "down", "down")


async def test_columns_fit_the_terminal_and_long_paths_end_with_an_ellipsis():
    app = create_app(settings_for(["s3"]))
    async with app.run_test(size=(80, 24)) as pilot:
        async with httpx2.AsyncClient() as client:
            await client.put(app.hub.urls()["s3"] + "/bkt/" + "very-long-folder-name/" * 8 + "object.bin", content=b"x")
        await pilot.press("2")
        table = app.query_one(RequestsPane).query_one(DataTable)
        await until(pilot, lambda: table.row_count == 1)
        widths = {column.label.plain: column.get_render_width(table) for column in table.columns.values()}
        assert sum(widths.values()) <= 80, widths  # time, server, method, status, ms and fault stay on screen
        assert column(table, 3)[0].endswith("…") and column(table, 4) == ["200"]
        await pilot.resize_terminal(120, 30)  # wider: the path gets the room, the others keep theirs
        await until(pilot, lambda: sum(c.get_render_width(table) for c in table.columns.values()) > 100)
        assert column(table, 4) == ["200"]


async def test_new_webhooks_leave_the_selection_on_its_event_and_the_plan_goes_to_its_client():
    app = create_app(settings_for(["webhooks"]))
    async with app.run_test(size=(120, 36)) as pilot:
        url = app.hub.urls()["webhooks"]
        async with httpx2.AsyncClient() as client:
            for name in ("first", "second", "third"):
                await client.post(f"{url}/webhooks/{name}", json={"event_type": name})
            await pilot.press("5")
            pane = app.query_one(WebhooksPane)
            table = pane.query_one(DataTable)
            await until(pilot, lambda: table.row_count == 3)
            await pilot.press("down")  # "second" (newest first)
            chosen = pane.selected()
            assert app.hub.facade("webhooks").event(chosen).client_id == "second"
            for i in range(4):
                await client.post(f"{url}/webhooks/late-{i}", json={"event_type": "late"})
            await until(pilot, lambda: table.row_count == 7)
            assert pane.selected() == chosen
            await pilot.press("p", *"503", "enter")
        assert app.hub.facade("webhooks").plan_for("second") is not None
        assert app.hub.facade("webhooks").plan_for("late-3") is None


async def test_the_header_shows_faults_set_on_all_servers_and_chaos_off_says_what_it_cleared():
    app = create_app(settings_for(["auth", "webhooks"]))
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.press("7")
        table = app.query_one("#faults-table", DataTable)
        table.move_cursor(row=table.row_count - 1)  # "(all servers)"
        await pilot.press("e", "ctrl+a", "ctrl+k", *"20", "enter")
        await until(pilot, lambda: app.sub_title == "● auth ⚡  ● webhooks ⚡")
        assert any(n.message == "every server: errors 20% 500" for n in app._notifications)
        app.hub.facade("webhooks").set_plan("shop", "500x3+200")
        await pilot.press("exclamation_mark")
        await until(pilot, lambda: app.sub_title == "● auth  ● webhooks")
        assert app.hub.facade("webhooks").plans() == {}
        assert any("response plans off for shop" in n.message for n in app._notifications)


async def test_a_key_typed_right_after_a_pane_number_reaches_that_pane():
    app = create_app(settings_for(["auth", "webhooks"]))
    async with app.run_test(size=(120, 36)) as pilot:
        for _ in range(5):
            app.copy_to_clipboard("")
            await pilot.press("1")
            for key in "3c":  # one burst, as a terminal delivers "3c" typed fast
                app.post_message(events.Key(key, key))
            await until(pilot, lambda: app.clipboard.count(".") == 2)  # the access token of the selected user
            await pilot.press("escape")


async def test_storage_pages_past_1000_objects_and_browses_folders():
    app = create_app(settings_for(["s3"]))
    async with app.run_test(size=(120, 36)) as pilot:
        s3 = make_s3_client(app.hub.urls()["s3"])

        def fill() -> None:
            s3.create_bucket(Bucket="many")
            for i in range(1500):
                s3.put_object(Bucket="many", Key=f"item-{i:04d}", Body=b"")
            s3.put_object(Bucket="many", Key="photos/2024/cat.jpg", Body=b"meow")

        await asyncio.to_thread(fill)
        await pilot.press("4")
        pane = app.query_one(StoragePane)
        objects = pane.query_one("#objects-table", DataTable)
        status = pane.query_one("#objects-status")
        await until(pilot, lambda: objects.row_count == 1000)
        assert "1,000 of 1,501 objects shown" in str(status.render())
        app.screen.set_focus(objects)
        await pilot.press("m")
        await until(pilot, lambda: objects.row_count == 1501)  # every object at the top, and the folder
        assert column(objects, 0)[0] == "photos/" and column(objects, 2)[0] == "folder"  # folders first
        assert column(objects, 0)[-1] == "item-1499"
        objects.move_cursor(row=0)
        await pilot.press("enter", "enter")  # photos/, then 2024/
        await until(pilot, lambda: column(objects, 0) == ["..", "cat.jpg"])
        assert "s3://many/photos/2024/" in str(status.render())
        await pilot.press("backspace")
        await until(pilot, lambda: column(objects, 0) == ["..", "2024/"])
        assert objects.cursor_row == 1  # on the folder just left


async def test_requests_list_by_arrival_even_when_the_first_ends_last():
    app = create_app(settings_for(["s3", "webhooks", "client", "imageapi"]))
    async with app.run_test(size=(120, 36)) as pilot:
        from PIL import Image
        import io

        image = io.BytesIO()
        Image.new("RGB", (4, 4), "blue").save(image, "PNG")
        async with httpx2.AsyncClient(timeout=30) as client:  # the client app calls the image API inside its request
            r = await client.post(app.hub.urls()["client"] + "/api/upload", files={"file": ("a.png", image.getvalue(), "image/png")})
            assert r.status_code == 202
        await pilot.press("2")
        table = app.query_one(RequestsPane).query_one(DataTable)
        await until(pilot, lambda: {"client", "imageapi"} <= set(column(table, 1)))
        servers = column(table, 1)
        assert servers.index("client") < servers.index("imageapi")
        times = column(table, 0)
        assert times == sorted(times)


async def test_the_servers_status_column_narrows_again_after_a_failure_is_gone():
    import socket

    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    busy = blocker.getsockname()[1]
    app = create_app(settings_for(["auth", "webhooks"], {"auth": {"port": str(busy)}}))
    async with app.run_test(size=(80, 24)) as pilot:
        table = app.query_one("#servers-table", DataTable)
        status = list(table.columns.values())[2]
        assert column(table, 2)[0] == f"failed: port {busy} is in use" and status.width > len("running")
        blocker.close()
        await pilot.press("s")  # start auth again: its port is free now
        await until(pilot, lambda: column(table, 2)[0] == "running")
        assert list(table.columns.values())[2].width == len("running")


async def test_help_shows_the_panes_keys_first_fits_80x24_and_works_in_a_dialog():
    from mockpanel.screens.help import HelpScreen

    app = create_app(settings_for(["auth"]))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("3", "question_mark")
        assert isinstance(app.screen, HelpScreen)
        text = str(app.screen.query_one("#help-text").render())
        assert text.index("Users pane") < text.index("Everywhere") < text.index("In a list")
        assert "Copy a fresh access token of the selected user" in text and "g / G" in text
        box = app.screen.query_one("Vertical")
        assert box.region.height <= 24 and box.region.width <= 80
        await pilot.press("question_mark")  # ? again closes it
        assert not isinstance(app.screen, HelpScreen)
        await pilot.press("c")  # a token dialog
        await until(pilot, lambda: app.screen.query("#dialog-text"))
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen) and "In a dialog" in str(app.screen.query_one("#help-text").render())
        await pilot.press("escape", "escape")
        assert app.screen is app.screen_stack[0]
        await pilot.press("j")  # vim keys move the list
        assert app.query_one("#users-table", DataTable).cursor_row == 1
        await pilot.press("G")
        assert app.query_one("#users-table", DataTable).cursor_row == 4
        await pilot.press("g", "k")
        assert app.query_one("#users-table", DataTable).cursor_row == 0


async def test_empty_panes_teach_with_a_command_that_works_here():
    import subprocess

    app = create_app(settings_for(["auth", "webhooks"]))
    async with app.run_test(size=(160, 36)) as pilot:
        await pilot.press("2")
        status = str(app.query_one("#requests-status").render())
        assert f"curl {app.hub.urls()['auth']}/health" in status
        await pilot.press("5")
        assert "No webhooks yet" in str(app.query_one("#webhook-detail").render())
        await pilot.press("c")
        command = app.clipboard
        await pilot.press("escape")
        done = await asyncio.to_thread(subprocess.run, ["bash", "-c", command], capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, done.stderr
        await until(pilot, lambda: app.query_one(WebhooksPane).query_one(DataTable).row_count == 1)


async def test_the_token_dialog_shows_the_claims_and_expiry_and_the_webhook_detail_its_headers():
    app = create_app(settings_for(["auth", "webhooks"]))
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.press("3", "c")
        await until(pilot, lambda: app.screen.query("#dialog-details"))
        details = str(app.screen.query_one("#dialog-details").render())
        assert '  sub: "test-user-123"' in details and '"alg": "HS256"' in details and "expires" in details and "(in " in details
        assert app.screen.query_one("#dialog-text").text == app.clipboard  # only the token is copied
        await pilot.press("escape")
        async with httpx2.AsyncClient() as client:
            await client.post(app.hub.urls()["webhooks"] + "/webhooks/shop", json={"event_type": "order.paid"},
                              headers={"X-Shop-Domain": "example.myshopify.com"})
        await pilot.press("5")
        await until(pilot, lambda: "x-shop-domain: example.myshopify.com" in str(app.query_one("#webhook-detail").render()))


async def test_a_client_app_upload_opens_with_its_job():
    import io

    from PIL import Image

    app = create_app(settings_for(["s3", "webhooks", "client", "imageapi"]))
    async with app.run_test(size=(120, 36)) as pilot:
        image = io.BytesIO()
        Image.new("RGB", (4, 4), "green").save(image, "PNG")
        async with httpx2.AsyncClient(timeout=30) as client:
            r = await client.post(app.hub.urls()["client"] + "/api/upload", files={"file": ("leaf.png", image.getvalue(), "image/png")})
            job_id = r.json()["job_id"]
        await pilot.press("6")
        table = app.query_one("#client-table", DataTable)
        await until(pilot, lambda: table.row_count == 1 and column(table, 5) == ["completed"])
        await pilot.press("enter")
        text = app.screen.query_one("#dialog-text").text
        assert "Upload through the client app" in text and f'"job_id": "{job_id}"' in text and '"status": "completed"' in text


async def test_a_clients_response_plan_shows_beside_its_webhooks_and_in_faults():
    app = create_app(settings_for(["webhooks"]))
    async with app.run_test(size=(120, 36)) as pilot:
        app.hub.facade("webhooks").set_plan("shop", "503x2+200")
        async with httpx2.AsyncClient() as client:
            assert (await client.post(app.hub.urls()["webhooks"] + "/webhooks/shop", json={"event_type": "a"})).status_code == 503
        await pilot.press("5")
        await until(pilot, lambda: "response plan for shop:" in str(app.query_one("#webhook-detail").render()))
        table = app.query_one(WebhooksPane).query_one(DataTable)
        assert column(table, 6) == ["503"]
        await pilot.press("7")
        assert "Webhook response plans: shop" in str(app.query_one("#faults-hint").render())


async def test_letters_typed_in_the_filter_are_text_and_escape_returns_to_the_list():
    from textual.widgets import Input

    app = create_app(settings_for(["auth"]))
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.press("2", "slash", *"/jkgG?x", "escape")  # j k g G ? x are keys elsewhere; here they are text
        assert app.query_one(RequestsPane).query_one(Input).value == "/jkgG?x"
        assert app.focused is app.query_one(RequestsPane).query_one(DataTable)


async def test_keys_typed_in_one_burst_apply_in_the_order_typed():
    """A key's own binding runs only once the key has bubbled up to the app, while the keys typed behind it go at
    once to what has focus: with keys in a burst (fast typing, or the loop busy serving requests), text typed right
    behind `/` went to the list's keys, text behind ctrl+u was wiped with the old (seen in tmux), a key behind Enter
    stayed in the filter. In the panel every key applies in the order it was typed."""
    from textual.widgets import Input

    def burst(*keys: str) -> None:  # as a terminal delivers keys typed fast: no wait between them
        for key in keys:
            app.post_message(events.Key(key, key if len(key) == 1 else None))

    app = create_app(settings_for(["auth"]))
    async with app.run_test(size=(120, 36)) as pilot:
        await requests_listed(app, pilot, 3)
        field = app.query_one(RequestsPane).query_one(Input)
        burst("slash", *"status:abc")  # s, t, a, ... are keys of the list too
        await until(pilot, lambda: field.value == "status:abc")
        burst("ctrl+u", *"!server:nopx", "backspace", "e", "home", "x")
        await until(pilot, lambda: field.value.endswith("nope"))
        assert field.value == "x!server:nope"
        burst("end", "ctrl+u", *"/health", "enter", "up", "enter")  # the filter, back to the list, the request above the newest
        await until(pilot, lambda: app.screen.query("#dialog-text"))
        assert app.screen.query_one("#dialog-text").text.startswith("GET /health?n=1")
        assert field.value == "/health"

        await pilot.press("escape", "7", "e")  # a prompt: the error rate of auth, in %
        burst("ctrl+a", "ctrl+k", "1", "0", "backspace", "5", "enter")
        await until(pilot, lambda: app.hub["auth"].ctx.faults.policy.error_rate > 0)
        assert app.hub["auth"].ctx.faults.policy.error_rate == 0.15


async def test_the_live_tail_stays_bounded_keeps_the_newest_and_the_row_being_read():
    # The oldest rows go in one rebuild once TRIM_SLACK more have come (a row at a time cost a flood 25 ms a flush).
    from mockpanel.screens.requests import MAX_ROWS, TRIM_SLACK

    app = create_app(settings_for(["auth"]))
    async with app.run_test(size=(120, 36)) as pilot, httpx2.AsyncClient() as client:
        url = app.hub.urls()["auth"]
        await pilot.press("2")
        pane = app.query_one(RequestsPane)
        table = pane.query_one(DataTable)
        sent = 0

        async def send(count: int) -> None:
            nonlocal sent
            for _ in range(count):
                await client.get(f"{url}/health?n={sent}")
                sent += 1
            newest = f"/health?n={sent - 1}"
            await until(pilot, lambda: table.row_count and column(table, 3)[-1] == newest)

        await send(60)
        await pilot.press("up", "up")  # reading n=57: following stops while it is not the last row
        assert column(table, 3)[table.cursor_row] == "/health?n=57"
        while sent < MAX_ROWS + TRIM_SLACK + 40:
            await send(40)
            assert table.row_count <= MAX_ROWS + TRIM_SLACK
            assert len(pane.shown) == table.row_count
        paths = column(table, 3)
        assert MAX_ROWS <= len(paths) <= MAX_ROWS + TRIM_SLACK
        assert paths == [f"/health?n={n}" for n in range(sent - len(paths), sent)]  # the newest, in order, none lost
        # n=57 was trimmed away with the oldest: the cursor stays where the reader was, not on the newest row
        assert table.cursor_row < table.row_count - 1


async def test_after_a_flood_the_tail_still_ends_with_the_last_request():
    # Under a flood (100+ requests a batch) the tail moves once a second; what arrived last must still be listed when
    # the traffic stops, with no request after it to carry it in.
    app = create_app(settings_for(["auth"]))
    async with app.run_test(size=(120, 36)) as pilot, httpx2.AsyncClient(limits=httpx2.Limits(max_connections=50)) as client:
        url = app.hub.urls()["auth"]
        await pilot.press("2")
        table = app.query_one(RequestsPane).query_one(DataTable)
        for burst in range(3):
            await asyncio.gather(*(client.get(f"{url}/health?burst={burst}&n={n}") for n in range(150)))
            await until(pilot, lambda: table.row_count and column(table, 3)[-1].startswith(f"/health?burst={burst}&"))
        assert len(set(column(table, 3))) == table.row_count  # no row listed twice
        assert table.cursor_row == table.row_count - 1  # still following
