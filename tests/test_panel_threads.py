"""The panel and the servers on two loops: the Hub's state is touched on the servers' thread only. A profiler on the
panel's thread records every method call while a user goes through every pane and its common keys; none may be a
method of the Hub, a runner, the journal, the fault injector or a server's domain facade."""

from __future__ import annotations

import asyncio
import sys
import threading

import httpx2

from conftest import make_s3_client, until
from mockpanel.app import create_app
from mockpanel.hubclient import server_urls
from mockpanel.testing import settings_for

ALL = ["auth", "s3", "webhooks", "client", "imageapi"]


def on_servers(app, fn):
    """`fn(hub)` on the servers' thread: what a test looks at directly (the panel itself runs only panel operations)."""
    return app.client.thread.run(fn, app.hub)


def owned_classes(app) -> tuple[type, ...]:
    def collect(hub):
        from mockpanel.faults import FaultInjector
        from mockpanel.journal import Journal, ServerJournal
        from mockpanel.otlp import SpanStore

        classes = {type(hub), Journal, ServerJournal, SpanStore, FaultInjector}
        for runner in hub.runners.values():
            classes.add(type(runner))
            if runner.facade is not None:
                classes.add(type(runner.facade))
        accounts = hub.facade("auth")
        if accounts is not None and accounts.oidc is not None:
            classes.add(type(accounts.oidc))
        return tuple(classes)

    return on_servers(app, collect)


async def test_the_panels_thread_never_runs_a_hub_or_facade_method():
    app = create_app(settings_for(ALL, {"imageapi": {"enabled": "true"}}))
    async with app.run_test(size=(120, 36)) as pilot:
        urls = app.client.read(server_urls)
        s3 = make_s3_client(urls["s3"])
        await asyncio.to_thread(lambda: (s3.create_bucket(Bucket="seen"), s3.put_object(Bucket="seen", Key="a.txt", Body=b"x")))
        async with httpx2.AsyncClient() as client:
            await client.post(f"{urls['auth']}/api/auth/login", json={"email": "alice@example.com", "password": "password123"})
            await client.post(f"{urls['webhooks']}/webhooks/shop", json={"event_type": "order.paid"})
        owned = owned_classes(app)
        calls: list[str] = []
        panel_thread = threading.current_thread()
        assert panel_thread is not app.client.thread.thread

        def profile(frame, event, arg):
            if event == "call":
                owner = frame.f_locals.get("self")
                if owner is not None and isinstance(owner, owned):
                    calls.append(f"{type(owner).__name__}.{frame.f_code.co_name}")

        sys.setprofile(profile)
        try:
            for key in "12345678":
                await pilot.press(key)
                await pilot.pause()
            await pilot.press("7", "n")  # fail the next 3 on the selected server
            await pilot.press("e", "ctrl+a", "ctrl+k", *"5", "enter")
            await pilot.press("exclamation_mark")
            await pilot.press("3", "c", "escape")  # copy a token
            await pilot.press("4")
            await until(pilot, lambda: "a.txt" in str(app.screen.query_one("#objects-table").get_row_at(0)) if app.screen.query("#objects-table") and app.screen.query_one("#objects-table").row_count else False)
            await pilot.press("5", "2", "1")
            await pilot.pause()
        finally:
            sys.setprofile(None)
        assert calls == [], sorted(set(calls))
        assert on_servers(app, lambda hub: hub["auth"].ctx.faults.policy.error_rate) == 0  # ! turned it off, on the servers' loop


async def test_a_stall_of_either_loop_is_named_apart(monkeypatch):
    import time

    from mockpanel.screens.traces import TracesPane

    app = create_app(settings_for(["auth"]))
    async with app.run_test(size=(120, 36)) as pilot:
        original = TracesPane.refresh_view

        def slow(self) -> None:  # a pane that draws too long holds the panel's loop, not the servers'
            time.sleep(0.5)
            original(self)

        # On a loaded machine either loop may also stall of its own before the stall a step makes (a thread starved
        # of the GIL while the other draws), unnamed or named otherwise: wait for the stall the step caused, by name.
        def stalls(loop: str, seen: set) -> list[str]:
            return [n.message for n in app._notifications if n.identity not in seen and f"the {loop} loop stalled" in n.message]

        seen = {n.identity for n in app._notifications}
        monkeypatch.setattr(TracesPane, "refresh_view", slow)
        await pilot.press("8")
        await until(pilot, lambda: any("drawing the Traces pane" in m for m in stalls("panel's", seen)))
        monkeypatch.setattr(TracesPane, "refresh_view", original)
        async with httpx2.AsyncClient() as client:
            assert (await client.get(app.client.read(server_urls)["auth"] + "/health")).status_code == 200
        seen = {n.identity for n in app._notifications}
        on_servers(app, lambda hub: time.sleep(0.5))  # the servers' loop held, as a runaway parser would
        await until(pilot, lambda: any("during auth GET /health" in m for m in stalls("servers'", seen)))
        assert not any("drawing" in m for m in stalls("servers'", seen))  # the servers' stall is not the panel's


async def test_start_up_notes_are_one_line_a_key_away_and_the_help_comes_from_the_bindings():
    from mockpanel.screens.help import HelpScreen

    app = create_app(settings_for(ALL, {"imageapi": {"enabled": "true"}}))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        shown = [n.message for n in app._notifications]
        assert "5 development secrets in use — N shows them" in shown
        assert not any("\n" in message for message in shown)  # one line, not half the screen
        await pilot.press("N")
        await pilot.pause()
        text = app.screen.query_one("#dialog-text").text
        assert "jwt_secret is the development default" in text and "S3_ACCESS_KEYS" in text
        await pilot.press("escape", "question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        help_text = app.screen.query_one("#help-text").render().plain
        assert "1 … 0" in help_text and "Faults, Traces, Proxies, Stubs" in help_text and "N " in help_text and "start-up notes" in help_text
