"""Proxies pane: the TCP proxies to the user's own services — each one's listener, upstream, connections, bytes each
way and network toxics — made, switched on and off, poisoned and removed live."""

from __future__ import annotations

from typing import Any

from textual.binding import Binding
from textual.widgets import DataTable, Static

from ..display import plain
from ..hubclient import panel_op
from ..journal import DomainEvent
from ..spec import DomainError
from .base import Pane, cursor_key, cut, restore_cursor, size_text
from .dialogs import ConfirmDialog, PromptDialog
from .faults import ask_toxic, clear_toxics


@panel_op
def proxy_rows(hub: Any) -> tuple[list[tuple], str | None]:
    """(name, listen, upstream, status, reason, open, connections, bytes up, bytes down, toxics) of every proxy, and
    the Toxiproxy API's URL when it runs."""
    return [proxy.view() for proxy in hub.network.proxies.values()], hub.toxiproxy_url


@panel_op
async def make_proxy(hub: Any, name: str, listen: str, upstream: str) -> tuple[str, str | None]:
    """A new proxy, started: (listen address, the reason it failed or None)."""
    proxy = hub.network.add_proxy(name, listen, upstream, from_api=True)
    await proxy.start()
    return proxy.listen, proxy.reason


@panel_op
async def switch_proxy(hub: Any, name: str) -> bool:
    """Enabled ⇄ disabled (disabled: not listening, its connections dropped); whether it is enabled now."""
    proxy = hub.network.proxy(name)
    await proxy.set_enabled(not proxy.enabled)
    return proxy.enabled


@panel_op
async def delete_proxy(hub: Any, name: str) -> None:
    await hub.network.remove_proxy(name)


def check_new_proxy(text: str) -> str | None:
    from ..addresses import NAME, ProxyError, split_address

    parts = text.split()
    if len(parts) != 3:
        return "type three words: name listen upstream (e.g. postgres 15432 localhost:5432)"
    if not NAME.match(parts[0]):
        return "a name is letters, digits, _ . - (up to 64)"
    try:
        split_address(parts[1], what="listen")
        split_address(parts[2], default_host="localhost", what="upstream")
    except ProxyError as exc:
        return str(exc)
    return None


class ProxiesPane(Pane):
    TITLE = "Proxies"
    KEY = "proxies"
    BINDINGS = [
        Binding("a", "add", "Add proxy…", tooltip="A TCP proxy to one of your services: name, listen port, upstream host:port"),
        Binding("t", "toxic", "Toxic…", tooltip="A network toxic on the selected proxy's connections (latency, bandwidth, reset_peer…)"),
        Binding("x", "clear", "Toxics off", tooltip="Every toxic of the selected proxy off"),
        Binding("e", "switch", "On/off", tooltip="Enable or disable the selected proxy (disabled: not listening, connections dropped)"),
        Binding("d", "delete", "Delete", tooltip="Remove the selected proxy"),
    ]
    EMPTY = ("No proxies yet. a adds one (name, listen port, upstream host:port: postgres 15432 localhost:5432); "
             "or [proxies.NAME] listen, upstream in mockpanel.toml; or Toxiproxy's API (--toxiproxy-port 8474). "
             "Point your service at the proxy, then t adds a toxic to what passes.")

    def compose(self):
        yield Static("", id="proxies-summary")
        table = DataTable(id="proxies-table", cursor_type="row", zebra_stripes=True)
        table.add_columns("proxy", "listen", "upstream", "status", "open", "conns", "bytes up", "bytes down", "toxics")
        yield table

    def refresh_view(self) -> None:
        rows, api = self.read(proxy_rows)
        table = self.query_one("#proxies-table", DataTable)
        key, row = cursor_key(table), table.cursor_row
        table.clear()
        for name, listen, upstream, status, reason, open_, total, up, down, toxics in rows:
            shown = f"failed: {reason}" if status == "failed" else status
            table.add_row(plain(name), listen, plain(cut(upstream, 28)), plain(cut(shown, 24)), str(open_), f"{total:,}", size_text(up),
                          size_text(down), plain(cut("; ".join(toxics), 40)), key=name)
        restore_cursor(table, key, row)
        api_line = f"Toxiproxy's API: {api}" if api else "Toxiproxy's API is off (--toxiproxy-port 8474 serves it)"
        self.query_one("#proxies-summary", Static).update(plain(f"{len(rows)} prox{'y' if len(rows) == 1 else 'ies'} · {api_line}"
                                                                if rows else self.EMPTY + "\n" + api_line, lines=True))

    def apply(self, batch: list[Any]) -> None:
        """Redraw on the proxies' own events and on every proxied connection that ended (journaled as TCP)."""
        if any((isinstance(i, DomainEvent) and i.server == "proxies") or getattr(i, "method", None) == "TCP" for i in batch):
            self.refresh_view()

    def selected(self) -> str | None:
        return cursor_key(self.query_one("#proxies-table", DataTable))

    def acts_on(self) -> str:
        return self.selected() or ""

    def action_add(self) -> None:
        async def add(answer: str | None) -> None:
            if not answer or not answer.strip():
                return
            name, listen, upstream = answer.split()
            try:
                at, reason = await self.client.wait(make_proxy, name, listen, upstream)
            except DomainError as exc:
                self.app.notify(exc.message, severity="error")
                return
            if reason:
                self.app.notify(f"proxy {name}: {reason}", severity="error")
            else:
                self.app.notify(f"proxy {name}: {at} → {upstream}")
            self.refresh_view()

        self.app.push_screen(PromptDialog("New proxy: name listen upstream", placeholder="postgres 15432 localhost:5432",
                                          check=check_new_proxy), add)

    def action_toxic(self) -> None:
        name = self.selected()
        if name is not None:
            ask_toxic(self, [name], f"proxy {name}")

    def action_clear(self) -> None:
        name = self.selected()
        if name is not None:
            self.client.command(clear_toxics, [name])
            self.app.notify(f"proxy {name}: no toxics")

    async def action_switch(self) -> None:
        name = self.selected()
        if name is not None:
            enabled = await self.client.wait(switch_proxy, name)
            self.app.notify(f"proxy {name}: {'enabled' if enabled else 'disabled: not listening'}")
            self.refresh_view()

    def action_delete(self) -> None:
        name = self.selected()
        if name is None:
            return

        async def delete(yes: bool | None) -> None:
            if yes:
                await self.client.wait(delete_proxy, name)
                self.app.notify(f"proxy {name} removed")
                self.refresh_view()

        self.app.push_screen(ConfirmDialog(f"Remove proxy {name}? Its connections end."), delete)
