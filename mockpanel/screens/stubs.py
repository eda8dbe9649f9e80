"""Stubs pane: every stub server's mappings (which matched how often, which never did), the last requests nothing
matched with their near misses, record/replay, and reloading after the files change."""

from __future__ import annotations

from typing import Any

from textual.binding import Binding
from textual.widgets import DataTable, Static

from ..display import plain
from ..hubclient import panel_op
from ..spec import DomainError, NotFound
from .base import Pane, cursor_key, cut, restore_cursor


def count(number: int, noun: str) -> str:
    return f"{number} {noun}" + ("" if number == 1 else "s")


def _stubs(hub: Any) -> dict[str, Any]:
    from ..servers.stubs import Stubs

    return {name: runner.facade for name, runner in hub.runners.items() if isinstance(runner.facade, Stubs)}


def _stub(hub: Any, name: str) -> Any:
    found = _stubs(hub).get(name)
    if found is None:
        raise NotFound(f"no stub server {name!r} runs here")
    return found


@panel_op
def stub_views(hub: Any) -> list[dict[str, Any]]:
    """Each stub server's mappings, hits, unmatched requests with near misses, mode and sources."""
    return [stubs.view() for stubs in _stubs(hub).values()]


@panel_op
def stub_names(hub: Any) -> list[str]:
    return list(_stubs(hub))


@panel_op
async def reload_stub(hub: Any, name: str) -> dict[str, Any]:
    """The mappings directory and the OpenAPI document read again (on an error, nothing changes)."""
    return await _stub(hub, name).try_reload()


@panel_op
def switch_stub_mode(hub: Any, name: str) -> str:
    """record ⇄ replay; the mode now."""
    stubs = _stub(hub, name)
    return stubs.set_mode("replay" if stubs.mode == "record" else "record")


@panel_op
def delete_stub_mapping(hub: Any, name: str, mapping_id: str) -> None:
    _stub(hub, name).remove(mapping_id)


@panel_op
def entry_as_mapping(hub: Any, entry_id: int) -> dict[str, Any]:
    """A journaled exchange as a WireMock mapping (credentials masked)."""
    from ..servers.stubs import Stubs

    for entry in hub.journal.entries():
        if entry.id == entry_id:
            return Stubs.mapping_of(entry)
    raise NotFound(f"request {entry_id} is no longer in the journal")


@panel_op
def save_entry_to_stub(hub: Any, entry_id: int, name: str) -> str:
    """A journaled exchange added to stub server `name` as a mapping (written to its mappings directory when it has
    one); where it went."""
    stubs = _stub(hub, name)
    mapping = stubs.add(entry_as_mapping(hub, entry_id), "panel")
    if stubs.mappings_dir is not None:
        return f"{mapping.label()} → {stubs.mappings_dir / mapping.source}"
    return f"{mapping.label()} → {name} (in memory: it has no mappings directory)"


class StubsPane(Pane):
    TITLE = "Stubs"
    KEY = "stubs"
    BINDINGS = [
        Binding("m", "mode", "Record/replay", tooltip="Switch the selected mapping's stub server between recording its upstream and replaying"),
        Binding("r", "reload", "Reload", tooltip="Read the stub server's mappings directory and OpenAPI document again"),
        Binding("d", "delete", "Delete", tooltip="Remove the selected mapping (until the next reload, if it came from a file)"),
    ]
    EMPTY = ("No stub servers. Add one to mockpanel.toml — [stubs.payments] port = 8090 with mappings = \"wiremock/mappings\" "
             "(WireMock's JSON), openapi = \"payments.yaml\" (an OpenAPI 3 document) or record = \"https://api.example.com\" "
             "(record a real service, then replay it). In the Requests pane, w with stub:NAME saves a request as a mapping.")

    def __init__(self, client: Any) -> None:
        super().__init__(client)
        self.names = frozenset(self.read(stub_names))  # the stub servers this panel runs (fixed, as every server)

    def on_mount(self) -> None:
        super().on_mount()
        if self.names:
            self.set_interval(2, self._look_at_disk)  # files change with no request: the summary says so soon after

    def _look_at_disk(self) -> None:
        if self.drawable:
            self.refresh_view()

    def compose(self):
        yield Static("", id="stubs-summary")
        table = DataTable(id="stubs-table", cursor_type="row", zebra_stripes=True)
        table.add_columns("stub", "mapping", "answers", "hits", "prio", "scenario", "from")
        yield table
        yield Static("", id="stubs-unmatched")

    def refresh_view(self) -> None:
        views = self.read(stub_views)
        table = self.query_one("#stubs-table", DataTable)
        key, row = cursor_key(table), table.cursor_row
        table.clear()
        lines = []
        misses = []
        for view in views:
            sources = [f"mappings {view['mappings_dir']}" if view["mappings_dir"] else "",
                       f"openapi {view['openapi']}" if view["openapi"] else "",
                       f"upstream {view['upstream']}" if view["upstream"] else ""]
            rows = view["mappings"] + view["operations"]
            never = sum(1 for m in rows if not m["hits"])
            mode = "RECORDING" if view["mode"] == "record" else "replay"
            changed = " · files changed: r reloads" if view["changed"] else ""
            counted = [count(len(view["mappings"]), "mapping") if view["mappings"] or not view["operations"] else "",
                       count(len(view["operations"]), "operation") if view["operations"] else ""]
            lines.append(f"{view['name']}: {mode} · {' + '.join(c for c in counted if c)} ({never} never matched) · "
                         f"{count(view['requests'], 'request')} · {len(view['unmatched'])} unmatched · "
                         + " · ".join(s for s in sources if s) + changed)
            for mapping in view["mappings"]:
                table.add_row(plain(view["name"]), plain(cut(mapping["label"], 48)), str(mapping["status"]),
                              str(mapping["hits"]) if mapping["hits"] else "never", str(mapping["priority"]),
                              plain(cut(mapping["scenario"], 16)), plain(cut(mapping["source"], 28)),
                              key=f"{view['name']}\t{mapping['id']}")
            document = view["openapi"].rsplit("/", 1)[-1] if view["openapi"] else ""
            for operation in view["operations"]:
                hits = f"{operation['hits']}" if operation["hits"] else "never"
                if operation["refused"]:
                    hits += f" ({operation['refused']} refused)"
                table.add_row(plain(view["name"]), plain(cut(operation["label"], 48)), "example", hits, "—",
                              plain(cut(operation["name"], 16)), plain(cut(document, 28)), key=f"{view['name']}\t{operation['label']}")
            for item in view["unmatched"][-5:]:
                near = "; ".join(f"{n['label']} ({', '.join(n['differences'][:1]) or 'scenario state'})" for n in item["near"][:2])
                misses.append(f"{view['name']}: {item['method']} {cut(item['url'], 60)} — closest: {cut(near, 140) or 'no mappings'}")
        restore_cursor(table, key, row)
        self.query_one("#stubs-summary", Static).update(plain("\n".join(lines) if views else self.EMPTY, lines=True))
        self.query_one("#stubs-unmatched", Static).update(plain(
            "Unmatched (newest last):\n" + "\n".join(misses[-8:]) if misses else ("No unmatched requests." if views else ""), lines=True))

    def apply(self, batch: list[Any]) -> None:
        """Redraw on a stub server's requests and events."""
        names = self.names
        if names and any(getattr(i, "server", None) in names for i in batch):
            self.refresh_view()

    def selected(self) -> tuple[str, str] | None:
        key = cursor_key(self.query_one("#stubs-table", DataTable))
        if key is None:
            return None
        name, mapping_id = key.split("\t")
        return name, mapping_id

    def _stub_name(self) -> str | None:
        chosen = self.selected()
        if chosen is not None:
            return chosen[0]
        return min(self.names) if self.names else None

    def acts_on(self) -> str:
        return self._stub_name() or ""

    async def action_mode(self) -> None:
        name = self._stub_name()
        if name is None:
            return
        try:
            mode = self.client.command(switch_stub_mode, name)
        except DomainError as exc:
            self.app.notify(exc.message, severity="error")
            return
        self.app.notify(f"{name}: {'recording: every request goes to the upstream' if mode == 'record' else 'replaying the mappings'}")
        self.refresh_view()

    async def action_reload(self) -> None:
        name = self._stub_name()
        if name is None:
            return
        try:
            counts = await self.client.wait(reload_stub, name)
        except DomainError as exc:
            self.app.notify(exc.message, severity="error", timeout=10)
            return
        self.app.notify(f"{name}: {count(counts['mappings'], 'mapping')}, {count(counts['operations'], 'OpenAPI operation')} read")
        self.refresh_view()

    async def action_delete(self) -> None:
        chosen = self.selected()
        if chosen is None:
            return
        if " " in chosen[1]:  # an OpenAPI operation's row ("GET /pets"): the document says what it answers
            self.app.notify("an OpenAPI operation comes from the document: edit it, then r reloads", severity="warning")
            return
        try:
            self.client.command(delete_stub_mapping, *chosen)
        except DomainError as exc:
            self.app.notify(exc.message, severity="error")
            return
        self.refresh_view()
