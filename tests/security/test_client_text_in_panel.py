"""Client text reaches the panel as text: markup in it is shown as typed (a malformed tag used to end the app),
and control characters are shown escaped, never handed to the terminal."""

from __future__ import annotations

import asyncio

import httpx2
from textual.command import CommandList
from textual.widgets import DataTable

from conftest import make_s3_client, until
from mockpanel.app import create_app
from mockpanel.display import escape_controls
from mockpanel.screens.requests import RequestsPane
from mockpanel.screens.storage import StoragePane
from mockpanel.screens.users import UsersPane
from mockpanel.screens.webhooks import WebhooksPane
from mockpanel.testing import settings_for

MARKUP_NAME = "[bold]x[/bold] [/oops]"
MARKUP_EVENT = "[/nonexistent] bad"
MARKUP_KEY = "[/k] [link=http://evil]y[/link]"
OSC = "x\x1b]0;INJ\x07\x1b]52;c;aW5qZWN0ZWQ=\x07y"


def cells(table: DataTable) -> list[list[str]]:
    return [[str(cell) for cell in table.get_row_at(i)] for i in range(table.row_count)]


def test_escape_controls_writes_every_control_character_out():
    assert escape_controls(OSC) == "x\\x1b]0;INJ\\x07\\x1b]52;c;aW5qZWN0ZWQ=\\x07y"
    assert escape_controls("a\nb\tc\x7f\x9b") == "a\\nb\\tc\\x7f\\x9b"
    assert escape_controls("a\nb\x1b", lines=True) == "a\nb\\x1b"
    assert escape_controls("[bold]é 中") == "[bold]é 中"


async def test_markup_and_escapes_from_clients_show_as_typed_and_the_panel_keeps_running():
    app = create_app(settings_for(["auth", "s3", "webhooks"]))
    async with app.run_test(size=(160, 40)) as pilot:
        urls = app.hub.urls()
        async with httpx2.AsyncClient() as client:
            for i, name in enumerate((MARKUP_NAME, OSC)):
                r = await client.post(f"{urls['auth']}/api/auth/register", json={"email": f"evil{i}@example.com", "password": "password123", "name": name})
                assert r.status_code in (200, 201), r.text
            for event_type in (MARKUP_EVENT, OSC):
                r = await client.post(f"{urls['webhooks']}/webhooks/[b]client", json={"event_type": event_type})
                assert r.status_code == 200
            await client.get(f"{urls['auth']}/%5B%2Fpath%5D%1b%5d0%3bINJ%07")

        def put() -> None:
            s3 = make_s3_client(urls["s3"])
            s3.create_bucket(Bucket="evil")
            s3.put_object(Bucket="evil", Key=MARKUP_KEY, Body=b"1")
            s3.put_object(Bucket="evil", Key=OSC, Body=b"2")

        await asyncio.to_thread(put)

        await pilot.press("3")
        users = cells(app.query_one(UsersPane).query_one(DataTable))
        names = [row[1] for row in users]
        assert MARKUP_NAME in names and escape_controls(OSC) in names

        await pilot.press("4")
        objects = app.query_one(StoragePane).query_one("#objects-table", DataTable)
        await until(pilot, lambda: objects.row_count == 2)
        folder, rest = MARKUP_KEY.split("/", 1)  # a "/" in a key makes a folder, as in the AWS console
        assert sorted(row[0] for row in cells(objects)) == sorted([folder + "/", escape_controls(OSC)])
        app.screen.set_focus(objects)
        objects.move_cursor(row=[row[0] for row in cells(objects)].index(escape_controls(OSC)))
        await pilot.press("c")  # the presigned-URL dialog's title names the key, escaped
        assert str(app.screen.query_one("#dialog-title").render()) == f"Presigned URL for evil/{escape_controls(OSC)}"
        await pilot.press("escape")
        objects.move_cursor(row=[row[0] for row in cells(objects)].index(folder + "/"))
        await pilot.press("enter")  # into the folder: the rest of the key, as typed, up to its next "/"
        await until(pilot, lambda: [row[0] for row in cells(objects)] == ["..", rest[: rest.index("/") + 1]])

        await pilot.press("5")
        hooks = app.query_one(WebhooksPane).query_one(DataTable)
        await until(pilot, lambda: hooks.row_count == 2)
        rows = cells(hooks)
        assert {row[2] for row in rows} == {MARKUP_EVENT, escape_controls(OSC)}
        assert {row[1] for row in rows} == {"[b]client"}
        for _ in range(2):
            detail = str(app.query_one("#webhook-detail").render())
            assert MARKUP_EVENT in detail or escape_controls(OSC) in detail
            assert "\x1b" not in detail
            await pilot.press("down")
        await pilot.press("p")  # the plan prompt names the client
        await pilot.press("escape")

        await pilot.press("2")
        pane = app.query_one(RequestsPane)
        await until(pilot, lambda: any("[/path]" in row[3] for row in cells(pane.query_one(DataTable))))
        assert any(row[3].startswith("/[/path]\\x1b]0;INJ\\x07") for row in cells(pane.query_one(DataTable)))  # and its query

        await pilot.press("ctrl+p")
        await pilot.press(*"Copy presigned URL for evil")
        await until(pilot, lambda: bool(app.screen.query(CommandList)) and app.screen.query_one(CommandList).option_count == 2)
        listed = app.screen.query_one(CommandList)
        prompts = [str(listed.get_option_at_index(i).prompt) for i in range(2)]
        assert any(f"evil/{MARKUP_KEY}" in p for p in prompts) and any(f"evil/{escape_controls(OSC)}" in p for p in prompts)
        await pilot.press("escape")
        assert app.is_running and app.return_code is None
        for name in ("1", "2", "3", "4", "5", "6", "7"):
            await pilot.press(name)
        assert app.is_running


def test_the_text_log_of_serve_escapes_what_clients_sent():
    from conftest import ServeProcess

    with ServeProcess("--only", "auth", "--auth-port", "0") as serve:
        url = serve.readline().split(" at ")[1]
        httpx2.get(f"{url}/x%1b%5d0%3bINJ%07y")
        line = serve.readline()
        assert serve.stop() == 0
    assert "/x\\x1b]0;INJ\\x07y 404" in line and "\x1b" not in line
