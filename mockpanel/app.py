"""The control panel: a Textual app on the main thread's loop, driving the Hub — every enabled mock, on the servers'
loop in a thread of its own — through a HubClient (see hubclient.py)."""

from __future__ import annotations

import asyncio
import gc
import os
import signal
from collections import deque
from functools import partial
from typing import Any

from textual import on
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.command import Hit, Hits, Provider
from textual.content import Content
from textual.markup import escape as escape_markup
from textual.widgets import Header, TabbedContent, TabPane

from .display import escape_controls
from .hub import Hub
from .attach import GONE, Disconnected, RemoteError
from .hubclient import HubClient, HubThread, failed, notices, journal_entries, reset_all, reset_server, run_scenario, server_names, server_urls, stop_scenario
from .servers import SERVERS
from .spec import DomainError
from .keybar import KeyBar
from .journal import DomainEvent
from .settings import Settings, SettingsError
from .watchdog import Watchdog
from .screens.app_ops import change_clock, chaos_off, clock_state, load_state_from, replay_bundle, save_state_to, change_faults, header_state, issue_token, palette_state, restart, write_journal
from .screens.client import ClientPane
from .screens.faults import FaultsPane
from .screens.mail import MailPane
from .screens.proxies import ProxiesPane
from .screens.stubs import StubsPane
from .screens.requests import RequestsPane
from .screens.servers import ServersPane
from .screens.storage import StoragePane
from .screens.traces import TracesPane
from .screens.users import UsersPane
from .screens.webhooks import WebhooksPane

PANES = (ServersPane, RequestsPane, UsersPane, StoragePane, WebhooksPane, ClientPane, FaultsPane, TracesPane, ProxiesPane, StubsPane)
PANE_KEYS = "1234567890"  # the tenth pane is 0
EXTRA_PANES = (("M", MailPane),)  # panes shown only while their server runs (the mail catcher is off unless asked)
FLUSH_SECONDS = 0.25  # bus items reach the widgets in batches, a few times a second
MAX_PENDING = 20_000  # under a flood only the newest matter; older ones are still in the journal
# From this many bus items in one tick (400 a second), every other tick is skipped: a repaint of a live table costs
# tens of milliseconds of the loop the servers and the keys share, and half as many under a flood leave more to both.
FLOOD_ITEMS = 100


class PanelCommands(Provider):
    """Command palette entries for every action, named by what they do to what."""

    def commands(self) -> list[tuple[str, Any, str]]:
        app: MockPanel = self.app  # type: ignore[assignment]
        found: list[tuple[str, Any, str]] = []
        for pane in app.pane_classes():
            found.append((f"Show {pane.TITLE}", partial(app.action_show, pane.KEY), f"switch to the {pane.TITLE} pane"))
        for pane in app.pane_classes():  # every key of every pane, acting on that pane's selected row (named: " — auth")
            target = app.query_one(pane).acts_on()
            seen: set[str] = set()
            for binding in pane.BINDINGS:
                if binding.action in seen:  # a second key for the same action
                    continue
                seen.add(binding.action)
                found.append((f"{pane.TITLE}: {binding.description}" + (f" — {target}" if target else ""),
                              partial(app.run_pane_action, pane, binding.action),
                              binding.tooltip or f"key {binding.key.split(',')[0]} in the {pane.TITLE} pane"))
        found.append(("All chaos off", app.action_chaos_off, "switch every fault of every server off"))
        found.append(("Reset all mocks", app.action_reset_all, "every server back to its seed data"))
        names, objects, users = app.client.read(palette_state)
        for name in names:
            found.append((f"Toggle delays on {name}", partial(app.toggle_fault, name, "delay_enabled"), f"delays on/off for {name}"))
            found.append((f"Fail next 3 requests on {name}", partial(app.fail_next, name), f"the next 3 requests to {name} fail"))
            for field, what in (("error_rate", "Error rate"), ("drop_rate", "Drop"), ("hang_rate", "Hang")):
                found.append((f"{what}… on {name}", partial(app.ask_fault, name, field), f"{what.lower()} on {name}, in %"))
            found.append((f"All faults off on {name}", partial(app.faults_off, name), f"every fault of {name} off"))
            found.append((f"Restart {name}", partial(app.restart_server, name), f"stop and start {name} (state is kept)"))
        found.append(("Export the journal as HAR", partial(app.export_journal, None, "har"), "write every request to a .har file here"))
        found.append(("Export the journal as JSON lines", partial(app.export_journal, None, "jsonl"), "write every request to a .jsonl file here"))
        found.append(("Export the journal as HAR, credentials masked", partial(app.export_journal, None, "har", None, True),
                      "Authorization, cookies, API keys, signatures and tokens as ***"))
        found.append(("Run a scenario file…", app.ask_scenario, "a TOML fault schedule, timed from now"))
        if app.scenario is not None:
            name = app.scenario.name
            found.append((f"Run scenario {name} from the start", app.action_run_scenario, "apply its steps again, timed from now"))
            found.append((f"Stop scenario {name}", app.action_stop_scenario, "stop its schedule and undo its active steps"))
        for bucket, key in objects:
            found.append((f"Copy presigned URL for {bucket}/{key}", partial(app.query_one(StoragePane).copy_presigned, bucket, key),
                          "a GET URL valid one hour"))
        for user_id, email, name in users:
            found.append((f"Copy token for {email}", partial(app.copy_token, user_id), f"a fresh access token for {name}"))
        return found

    def entries(self) -> list[tuple[str, Any, str]]:
        # Names carry object keys and user names: shown as text (the palette parses both name and help as markup).
        return [(escape_controls(name), callback, escape_markup(escape_controls(help_text))) for name, callback, help_text in self.commands()]

    async def discover(self) -> Hits:
        for name, callback, help_text in self.entries():
            yield Hit(1.0, Content(name), callback, text=name, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, callback, help_text in self.entries():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, Content(name) if "[" in name else matcher.highlight(name), callback, text=name, help=help_text)


class MockPanel(App):
    """mockpanel's terminal UI. Build it with create_app(settings): the CLI and the tests share that factory."""

    CSS_PATH = "mockpanel.tcss"
    TITLE = "mockpanel"
    COMMANDS = App.COMMANDS | {PanelCommands}
    BINDINGS = [
        Binding("q", "quit", "Quit", id="quit", tooltip="Quit: stop every server and leave"),
        Binding("ctrl+q", "quit", "Quit", show=False, priority=True),
        Binding("question_mark", "toggle_help", "Keys", id="help", tooltip="Show or hide this help: every key of this pane"),
        Binding("f1", "toggle_help", "Keys", show=False, priority=True),
        Binding("j", "cursor('down')", "Down", show=False),
        Binding("k", "cursor('up')", "Up", show=False),
        Binding("g", "cursor('first')", "First row", show=False),
        Binding("G", "cursor('last')", "Last row", show=False),
        Binding("exclamation_mark", "chaos_off", "All chaos off", id="chaos_off",
                tooltip="All chaos off: every fault of every server, every webhook response plan, every token fault"),
        Binding("N", "notes", "Notes", id="notes", show=False, tooltip="The start-up notes in full: development secrets, warnings"),
        Binding("dollar_sign", "state", "State…", id="state", show=False,
                tooltip="Save every mock's state (users, buckets, webhooks, mappings, faults, the clock) to a file, or load one"),
        Binding("at", "clock", "Clock…", id="clock", show=False,
                tooltip="Move the mocks' one clock: +1h, -2d, a date-time, freeze, resume, wall (every server's time)"),
        *(Binding(key, f"show('{pane.KEY}')", pane.TITLE, show=False, id=f"show_{pane.KEY}") for key, pane in zip(PANE_KEYS, PANES)),
        *(Binding(key, f"show('{pane.KEY}')", pane.TITLE, show=False, id=f"show_{pane.KEY}") for key, pane in EXTRA_PANES),
    ]

    def __init__(self, settings: Settings | None, hub: Hub | None = None, start_servers: bool = True, scenario: Any = None,
                 journal_out: Any = None, freeze_gc: bool = False, redact: bool = False, ports_file: Any = None,
                 servers_loop: str = "thread", client: Any = None) -> None:
        super().__init__()
        if "TEXTUAL_ANIMATIONS" not in os.environ:
            # The tab underline's slide is ~18 frames a switch in the loop the servers share: under traffic they
            # delay the next key. TEXTUAL_ANIMATIONS=full brings it back.
            self.animation_level = "none"
        self.ports_file = ports_file  # --ports-file: {server: url} once the servers are up, as serve writes it
        self.settings = settings
        # The Hub, for tests and the caller that built it; the panel itself goes through self.client only.
        # `client`: a RemoteHubClient (mockpanel attach): the mocks run elsewhere, this process holds no Hub.
        self.attached = client is not None
        own_loop = servers_loop == "thread"  # "shared": the servers in the panel's loop, as before (bench_panel.py compares)
        if client is None:
            self.hub = hub or Hub(settings, SERVERS, loop_name="servers'" if own_loop else "event")
            client = HubClient(self.hub, HubThread().start() if own_loop else None)
        else:
            self.hub = None
        self.client = client
        self.notices: list[str] = []
        # The panel's own loop has a watchdog too: a pane that draws too long is named, apart from the servers' stalls.
        self.watchdog = Watchdog(self._panel_stalled, loop_name="panel's")
        self.freeze_gc = freeze_gc
        self.redact = redact  # --redact: the journal file and the panel's exports mask credentials
        self.scenario = scenario  # a Scenario to run once the servers are up (mockpanel --scenario FILE)
        self.journal_out = journal_out
        self.start_servers = start_servers  # False: show the Hub as it is (snapshot tests draw fixed data)
        self._pending: deque = deque(maxlen=MAX_PENDING)
        self._stopped = False
        self._unsubscribe = None
        self._held_back = False  # the last tick was skipped for a flood
        self._drawn_on_switch: str | None = None  # the pane action_show has just drawn (its TabActivated is to come)
        self._clock_shown: str | None = None  # the mocks' time in the header (None: the wall clock, not shown)
        self.replay: Any = None  # a repro bundle to show (mockpanel replay DIR): its journal, its clock at the end
        self._extra_panes: list[Any] = []  # EXTRA_PANES shown (their server runs), set as the panes are made

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False)
        with TabbedContent(id="tabs"):
            for key, pane_class in zip(PANE_KEYS, PANES):
                with TabPane(f"{key} {pane_class.TITLE}", id=pane_class.KEY):
                    yield pane_class(self.client)
            running = set(self.client.read(server_names))
            self._extra_panes = [pane for _, pane in EXTRA_PANES if set(pane.SERVERS) & running]
            for key, pane_class in EXTRA_PANES:
                if pane_class in self._extra_panes:
                    with TabPane(f"{key} {pane_class.TITLE}", id=pane_class.KEY):
                        yield pane_class(self.client)
        yield KeyBar(id="keys")

    async def on_mount(self) -> None:
        if self.journal_out is not None:
            path, redact = self.journal_out, self.redact
            self.client.command(write_journal, path, redact)
        if self.start_servers:
            try:
                await self.client.start()
            except SettingsError as exc:  # a --state snapshot that cannot be loaded: the servers stopped again
                self.exit(return_code=2, message=f"mockpanel: {exc}")
                return
            if self.ports_file is not None:
                from .export import write_ports_file

                write_ports_file(self.ports_file, self.client.read(server_urls))
        self._unsubscribe = self.client.subscribe(self._pending.append)  # deque.append: safe from the servers' thread
        if self.replay is not None:
            count = await self.client.wait(replay_bundle, str(self.replay.directory))
            self.title = f"mockpanel — replay of {self.replay.directory} ({count} requests; the clock where the run ended)"
        if self.scenario is not None:
            await self.client.wait(run_scenario, self.scenario.source, str(self.scenario.path) if self.scenario.path else None)
        self.set_interval(FLUSH_SECONDS, self.flush)
        self.set_interval(1.0, self._tick_clock)
        if self.start_servers:  # a panel drawing fixed data (the snapshot tests) has no traffic to be slow under
            self.watchdog.start()
        for name, reason in self.client.read(failed).items():
            self.notify(f"{name}: {reason}", title="Server failed to start", severity="error", timeout=10)
        self.notices = self.client.read(notices)
        if self.notices:
            self.notify(notes_line(self.notices), severity="warning", timeout=8)
        if self.attached:
            self.title = f"mockpanel — attached to {self.client.url}"
        parent = os.environ.get("MOCKPANEL_WEB_PARENT", "")
        if parent.isdigit():  # shown in a browser by `mockpanel --web`: quit once that server is gone
            self.set_interval(1.0, partial(self._quit_without_parent, int(parent)))
        try:
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, lambda: asyncio.ensure_future(self.action_quit()))
        except (NotImplementedError, RuntimeError):  # pragma: no cover - Windows, or not the main thread
            pass
        self.update_header()
        self.refresh_all(focus=True)
        if self.freeze_gc:
            # Full collections walk every long-lived object (widgets, FastAPI, pydantic) and pause the loop the servers
            # and the keys share; what exists after start-up lives as long as the app, so keep it out of their reach.
            # Process-wide, so only the panel users run (the CLI) asks for it, not every app a test builds.
            gc.collect()
            gc.freeze()

    def _panel_stalled(self, stall: Any) -> None:
        self.notify(stall.describe(), title="Panel stall", severity="warning", timeout=6)

    def doing(self, what: str) -> None:
        """What the panel's loop set out to do last: should it stall, the watchdog names it (as the servers' names
        the request the middleware last started)."""
        self.watchdog.current[0], self.watchdog.current[1] = "panel", what

    def _quit_without_parent(self, parent: int) -> None:
        if os.getppid() != parent and not self._stopped:
            asyncio.ensure_future(self.action_quit())

    def notify(self, message: str, *, title: str = "", severity: Any = "information", timeout: float | None = None,
               markup: bool = False) -> None:
        """Every notification (panes' too) shows its text as typed: messages quote client text (keys, names)."""
        super().notify(escape_controls(message, lines=True), title=escape_controls(title), severity=severity, timeout=timeout, markup=False)

    def update_header(self) -> None:
        parts = []
        servers, clock = self.client.read(header_state)
        for name, status, faulty in servers:
            mark = {"running": "●", "failed": "✗", "starting": "…"}.get(status, "○")
            parts.append(f"{mark} {name}{' ⚡' if faulty else ''}")
        self._clock_shown = clock
        self.sub_title = "  ".join(parts + ([clock] if clock else []))

    def _tick_clock(self) -> None:
        """The header's clock runs on between flushes while the mocks' time is not the wall clock (and not frozen)."""
        if self._clock_shown and not self._clock_shown.endswith("frozen"):
            self.update_header()

    def action_state(self) -> None:
        from pathlib import Path

        from .screens.dialogs import PromptDialog

        async def act(answer: str | None) -> None:
            words = (answer or "").strip()
            verb, _, rest = words.partition(" ")
            if verb not in ("save", "load") or not rest.strip():
                if words:
                    self.notify("type save PATH or load PATH (a .tar archive or a directory)", title="State", severity="error")
                return
            path = Path(rest.strip()).expanduser()
            try:
                if self.attached:
                    done = await asyncio.to_thread(self.client.download_state if verb == "save" else self.client.upload_state, path)
                else:
                    done = await self.client.wait(save_state_to if verb == "save" else load_state_from, str(path))
            except (DomainError, OSError) as exc:
                self.notify(str(exc), title=f"State not {'saved' if verb == 'save' else 'loaded'}", severity="error", timeout=10)
                return
            if verb == "save":
                self.notify(f"every mock's state saved to {path.resolve()}", title="State")
            else:
                skipped = f" ({', '.join(done['skipped'])} not running here: left out)" if done.get("skipped") else ""
                self.notify(f"state loaded from {path}: {', '.join(done['loaded']) or 'no server'}{skipped}", title="State")
            self.update_header()
            self.refresh_all()

        self.push_screen(PromptDialog("Save every mock's state, or load one", "save mockpanel-state.tar",
                                      hint="save PATH · load PATH — a .tar archive or a directory · Enter to confirm · Esc to cancel"),
                         lambda answer: self.run_worker(act(answer)))

    def action_clock(self) -> None:
        from .clock import parse_change, shift
        from .screens.dialogs import PromptDialog

        def move(answer: str | None) -> None:
            if not answer:
                return
            try:
                state = self.client.command(change_clock, parse_change(answer))
            except DomainError as exc:
                self.notify(str(exc), title="Clock not moved", severity="error")
                return
            effects = "; ".join(f"{server}: " + ", ".join(f"{n} {what.replace('_', ' ')}" for what, n in done.items() if n)
                                for server, done in state["effects"].items())
            where = "the wall clock" if not state["virtual"] else \
                f"{state['now_iso'][:19].replace('T', ' ')}Z ({shift(state['offset_s'])}{', frozen' if state['frozen'] else ''})"
            self.notify(f"the mocks' clock: {where}" + (f"; {effects}" if effects else ""), title="Clock")
            self.update_header()

        self.push_screen(PromptDialog("Move the mocks' clock (every server's time)", "+1h", hint=(
            "+1h · -2d · +90s · 2030-01-01T00:00:00Z · freeze · resume · wall — Enter to confirm · Esc to cancel")), move)

    def active_pane(self):
        """The pane on screen, or None while there is none to draw on.

        The app's timers keep ticking while Textual tears the app down (first the widgets, bottom-up, then the
        app's own timers): from the start of that, or of a pane's removal, nothing may redraw — a pane whose
        tables are already gone would raise NoMatches."""
        if not self.is_running:
            return None
        found = self.query(TabbedContent)
        if not found:
            return None
        tabs = found.first()
        for pane_class in self.pane_classes():
            if pane_class.KEY == tabs.active:
                panes = self.query(pane_class)
                # Not drawable from the moment its removal begins (Textual marks the whole subtree at once).
                return panes.first() if panes and panes.first().drawable else None
        return None

    def flush(self) -> None:
        """Apply the bus items gathered since the last tick: one repaint per tick, never one per request."""
        if not self._pending:
            return
        if len(self._pending) >= FLOOD_ITEMS and not self._held_back:
            self._held_back = True
            return
        self._held_back = False
        pending = self._pending  # appended to from the servers' thread: taken item by item, none lost in between
        batch = [pending.popleft() for _ in range(len(pending))]
        if GONE in batch:  # an attached panel's mocks stopped: say so and leave (they are not this panel's to stop)
            self.exit(return_code=1, message=f"mockpanel: the mocks at {self.client.url} stopped; the panel closed")
            return
        for item in batch:
            if isinstance(item, DomainEvent) and item.kind == "scenario":
                self.notify(item.data["message"], title="Scenario", timeout=6)
            elif isinstance(item, DomainEvent) and item.kind == "stall":
                self.notify(item.data["message"], title="Loop stall", severity="warning", timeout=6)
        pane = self.active_pane()
        if pane is not None:
            self.doing(f"updating the {pane.TITLE} pane with {len(batch)} new items")
            pane.apply(batch)  # the other panes redraw from the Hub when they are shown
        self.update_header()

    def refresh_all(self, focus: bool = False) -> None:
        pane = self.active_pane()
        if pane is not None:
            self.doing(f"drawing the {pane.TITLE} pane")
            pane.refresh_view()
            tables = pane.query("DataTable")
            if focus and tables:
                # Now, not at the next idle (Widget.focus defers): a key typed right after the pane's number must
                # reach this pane's table, not the one of the pane just left.
                self.screen.set_focus(tables.first())

    @on(TabbedContent.TabActivated)
    def tab_activated(self, event: TabbedContent.TabActivated) -> None:
        if event.pane is not None and event.pane.id == self._drawn_on_switch:
            self._drawn_on_switch = None  # action_show drew it already: a second redraw would re-render every cell
            return
        self.refresh_all(focus=True)

    def pane_classes(self) -> tuple:
        """The panes this panel shows: the ten, and those of EXTRA_PANES whose server runs."""
        return (*PANES, *self._extra_panes)

    def action_show(self, key: str) -> None:
        if key not in {pane.KEY for pane in self.pane_classes()}:
            self.notify(f"the {key} pane shows a server that is not running here", severity="warning")
            return
        tabs = self.query_one(TabbedContent)
        # The tab's own TabActivated follows only when the tab changes.
        self._drawn_on_switch = key if tabs.active != key else None
        tabs.active = key
        self.refresh_all(focus=True)


    def action_toggle_help(self) -> None:
        from .screens.help import DIALOGS, LISTS, HelpScreen, everywhere, pane_keys

        if isinstance(self.screen, HelpScreen):
            self.screen.dismiss(None)
            return
        if self.screen is not self.screen_stack[0]:  # a dialog is open: its keys
            self.push_screen(HelpScreen("Keys of this dialog", [("In a dialog", DIALOGS)]))
            return
        pane = self.active_pane()
        sections = [(f"{pane.TITLE} pane", pane_keys(pane.BINDINGS))] if pane is not None and pane.BINDINGS else []
        self.push_screen(HelpScreen(f"Keys — {pane.TITLE if pane is not None else 'mockpanel'}", sections + [("Everywhere", everywhere(self.BINDINGS, list(self.pane_classes()))), ("In a list", LISTS)]))

    def action_notes(self) -> None:
        from .screens.dialogs import TextDialog

        notes = self.notices
        self.push_screen(TextDialog("Start-up notes", "\n".join(notes) if notes else "No notes: every secret is set and every server binds loopback.",
                                    "Esc closes"))

    def action_cursor(self, where: str) -> None:
        """j/k/g/G in any list (vim's keys beside the arrows)."""
        from textual.widgets import DataTable

        table = self.focused
        if isinstance(table, DataTable) and table.row_count:
            if where in ("down", "up"):
                getattr(table, f"action_cursor_{where}")()
            else:
                table.move_cursor(row=0 if where == "first" else table.row_count - 1)

    def action_chaos_off(self) -> None:
        cleared, issuers, toxic = self.client.command(chaos_off)
        plans = f"; response plans off for {', '.join(cleared)}" if cleared else ""
        plans += f"; network toxics off for {', '.join(toxic)}" if toxic else ""
        tokens = f"; token faults off for the {', '.join(issuers)} issuer{'s' if len(issuers) > 1 else ''}" if issuers else ""
        self.notify(f"all chaos off: no delays, errors, drops or hangs on any server{plans}{tokens}")

    async def action_reset_all(self) -> None:
        await self.client.wait(reset_all)
        self.notify("every mock is back to its seed data")

    async def reset_server(self, server: str) -> None:
        await self.client.wait(reset_server, server)
        self.notify(f"{server} is back to its seed data")

    async def run_pane_action(self, pane_class: Any, action: str) -> None:
        """A pane's key from the palette: show the pane, then act on its selected row."""
        if self.query_one(TabbedContent).active != pane_class.KEY:  # already shown: keep its selection as it is
            self.action_show(pane_class.KEY)
        await self.query_one(pane_class).run_action(action)

    def export_journal(self, path: str | None = None, fmt: str | None = None, keep: Any = None, redact: bool | None = None) -> int:
        """Write the journal (entries `keep` accepts) to `path` as HAR, JSON lines or a pytest file (by extension:
        .har, .jsonl, .py); returns the count."""
        import json
        from pathlib import Path

        from . import export

        if path is None:
            path = export.default_filename(fmt or "har")
        target = Path(path).expanduser()
        entries = [e for e in self.client.read(journal_entries) if keep is None or keep(e)]
        try:
            mask = self.redact if redact is None else redact
            if target.suffix == ".jsonl" or fmt == "jsonl":
                target.write_text(export.jsonl(entries, mask), encoding="utf-8")
            elif target.suffix == ".py" or fmt == "pytest":  # traffic saved as a test that replays it against fresh mocks
                from . import testgen

                target.write_text(testgen.generate(entries, title="recorded traffic", redact=mask), encoding="utf-8")
            else:
                target.write_text(json.dumps(export.har(entries, redact=mask), indent=1), encoding="utf-8")
        except OSError as exc:
            self.notify(f"cannot write {target}: {exc.strerror}", severity="error")
            return 0
        self.notify(f"{len(entries)} requests written to {target.resolve()}", title="Journal exported")
        return len(entries)

    def ask_scenario(self) -> None:
        from .screens.dialogs import PromptDialog

        def run(answer: str | None) -> None:
            if answer:
                self.run_worker(self.start_scenario_file(answer.strip()))

        last = str(self.scenario.path) if self.scenario is not None and self.scenario.path else ""
        self.push_screen(PromptDialog("Scenario file (TOML) to run from now", last, placeholder="flaky.toml"), run)

    async def start_scenario_file(self, path: str) -> bool:
        from pathlib import Path

        from .scenario import ScenarioError, load_scenario

        try:
            scenario = self.scenario = load_scenario(Path(path).expanduser(), self.client.read(server_names))
        except ScenarioError as exc:
            self.notify(str(exc), title="Scenario not started", severity="error", timeout=10)
            return False
        await self.client.wait(run_scenario, scenario.source, str(scenario.path) if scenario.path else None)
        return True

    async def action_run_scenario(self) -> None:
        scenario = self.scenario
        if scenario is not None:
            await self.client.wait(run_scenario, scenario.source, str(scenario.path) if scenario.path else None)

    async def action_stop_scenario(self) -> None:
        await self.client.wait(stop_scenario)
        self.notify("scenario stopped; its active steps are undone", title="Scenario")

    def toggle_fault(self, server: str, field: str) -> None:
        self.notify(f"{server}: {self.client.command(change_faults, server, toggle=field)}")

    def ask_fault(self, server: str, field: str) -> None:
        """The Faults pane's prompt for one rate, on `server` (palette)."""
        pane = self.query_one(FaultsPane)
        self.action_show(pane.KEY)
        table = pane.query_one("DataTable")
        table.move_cursor(row=table.get_row_index(server))
        pane.action_rate(field)

    def faults_off(self, server: str) -> None:
        self.client.command(change_faults, server)
        self.notify(f"{server}: no faults")

    def fail_next(self, server: str) -> None:
        self.client.command(change_faults, server, fail_next=3)
        self.notify(f"{server}: the next 3 requests fail")

    async def restart_server(self, server: str) -> None:
        """Stop and start a server, its state kept (Servers pane r, palette)."""
        ok, reason = await self.client.wait(restart, server)
        self.notify(f"{server} restarted" if ok else f"{server} failed: {reason}", severity="information" if ok else "error")

    def copy_and_show(self, text: str, title: str, notice: str, details: str = "") -> None:
        """Clipboard (OSC 52) and a dialog to select from, since some terminals ignore OSC 52; a notification says so."""
        from .screens.dialogs import TextDialog

        self.copy_to_clipboard(text)
        self.notify(notice)
        self.push_screen(TextDialog(title, text, details=details))

    def copy_token(self, user_id: str, kind: str = "access", ttl: Any = None) -> None:
        """A fresh token of a user on the clipboard and on screen (Users pane keys, palette)."""
        try:
            token, email = self.client.command(issue_token, user_id, kind, ttl.total_seconds() if ttl is not None else None)
        except DomainError as exc:
            self.notify(exc.message, severity="error")
            return
        self.copy_and_show(token, f"{kind.capitalize()} token for {email}", f"{kind} token for {email} copied to the clipboard",
                           details=describe_token(token, self.client.read(clock_state)))

    def copy_and_show_jwt(self, token: str, title: str, notice: str, note: str = "") -> None:
        """A JWT on the clipboard and in a dialog with its decoded header, claims and expiry under it."""
        self.copy_and_show(token, title, notice, details=(note + "\n" if note else "") + describe_token(token, self.client.read(clock_state)))

    async def action_quit(self) -> None:
        await self.stop_servers()
        self.exit()

    async def stop_servers(self) -> None:
        if not self._stopped:
            self._stopped = True
            if self._unsubscribe is not None:
                self._unsubscribe()
            await self.watchdog.stop()
            await self.client.stop()

    async def on_unmount(self) -> None:
        await self.stop_servers()

    def _handle_exception(self, error: Exception) -> None:
        """An attached panel whose mocks went away while it asked them something leaves with that said, not with a
        traceback (Textual's handler of an exception no pane caught)."""
        if isinstance(error, (Disconnected, RemoteError)):
            self._stopped = True
            self.exit(return_code=1, message=f"mockpanel: {error}; the panel closed")
            return
        super()._handle_exception(error)


def notes_line(notices: list[str]) -> str:
    """The start-up notes as one line (the full text is a key away): a notification covering half an 80x24 screen
    for 8 s, over the Servers table and the help, was the first thing a new user met."""
    secrets = sum("development default" in n for n in notices)
    others = len(notices) - secrets
    parts = ([f"{secrets} development secret{'s' if secrets != 1 else ''} in use"] if secrets else []) + \
        ([f"{others} other note{'s' if others != 1 else ''}"] if others else [])
    return f"{', '.join(parts)} — N shows them"


def describe_token(token: str, clock: dict[str, Any] | None = None) -> str:
    """A JWT's claims as the dialog shows them under the token (decoded, not verified), and when it expires: by the
    mocks' clock (`clock`, its state) when given, which is what the mocks judge it by."""
    import json
    import time

    import jwt

    try:
        claims = jwt.decode(token, options={"verify_signature": False})
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        return ""
    lines = [f"header: {json.dumps(header)}", "claims:"] + [f"  {k}: {json.dumps(v)}" for k, v in claims.items()]
    if isinstance(claims.get("exp"), (int, float)):
        left = claims["exp"] - (clock["now"] if clock else time.time())
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(claims["exp"]))
        by = " by the mocks' clock" if clock and clock.get("virtual") else ""
        lines.append(f"expires {stamp} ({'in ' + format_span(left) if left > 0 else 'expired ' + format_span(-left) + ' ago'}{by})")
    return "\n".join(lines)


def format_span(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    if seconds < 2 * 86400:
        return f"{seconds // 3600} h {seconds % 3600 // 60} min"
    return f"{seconds // 86400} days"


def create_app(settings: Settings, start_servers: bool = True, scenario: Any = None, journal_out: Any = None,
               freeze_gc: bool = False, redact: bool = False, ports_file: Any = None, servers_loop: str = "thread",
               replay: Any = None) -> MockPanel:
    """The panel as users run it; tests build it through here too. `replay`: a repro bundle (bundle.Bundle) whose
    journal and end clock the panel shows, on mocks started from its end state."""
    app = MockPanel(settings, start_servers=start_servers, scenario=scenario, journal_out=journal_out, freeze_gc=freeze_gc,
                    redact=redact, ports_file=ports_file, servers_loop=servers_loop)
    app.replay = replay
    return app


def attached_app(url: str, token: str | None = None, freeze_gc: bool = False, redact: bool = False) -> MockPanel:
    """The panel on mocks running elsewhere (mockpanel attach URL): every pane, through the control API."""
    from .attach import RemoteHubClient

    return MockPanel(None, client=RemoteHubClient(url, token), freeze_gc=freeze_gc, redact=redact)
