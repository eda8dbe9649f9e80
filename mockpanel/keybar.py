"""The panel's footer: the keys of the focused pane as one line of text.

Textual's Footer builds a widget per key and rebuilds them on every focus move; a pane switch then cost more than
the switch itself (and each old key stayed alive through its data binding). One Static, redrawn when the screen's
bindings change, shows the same keys for a fraction of the work.
"""

from __future__ import annotations

from textual.markup import escape
from textual.widgets import Static


class KeyBar(Static):
    DEFAULT_CSS = """
    KeyBar { dock: bottom; height: 1; width: 1fr; background: $footer-background; color: $footer-foreground; }
    """

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, self._bindings_changed)
        self._bindings_changed(self.screen)

    def _bindings_changed(self, _screen: object) -> None:
        self.update(self.describe())

    def describe(self) -> str:
        app = self.app
        parts: list[str] = []
        actions: set[str] = set()
        palette = None
        for _node, binding, enabled, _tooltip in self.screen.active_bindings.values():
            if binding.key == app.COMMAND_PALETTE_BINDING and app.ENABLE_COMMAND_PALETTE:
                palette = binding
                continue
            if not binding.show or binding.action in actions:
                continue
            actions.add(binding.action)
            key = escape(app.get_key_display(binding))
            label = escape(binding.description)
            part = f"[b $footer-key-foreground]{key}[/] {label}" if enabled else f"[dim]{key} {label}[/]"
            if binding.action == "toggle_help":
                parts.insert(0, part)  # first, so the way to every key shows even on a narrow terminal
            else:
                parts.append(part)
        if palette is not None:
            parts.append(f"[b $footer-key-foreground]{escape(app.get_key_display(palette))}[/] palette")
        return " " + "  ".join(parts)
