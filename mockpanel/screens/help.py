"""`?` (or F1): the keys of what is in front of you first (the pane, or the dialog), then the ones that work
everywhere, then how to move in a list. Fits 80x24 (it scrolls when it must)."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Static

Section = tuple[str, list[tuple[str, str]]]

LISTS: list[tuple[str, str]] = [
    ("↑ ↓ / k j", "move the selection"),
    ("g / G", "the first / the last row"),
    ("pgup pgdn", "a page up or down"),
    ("enter", "open the selected row"),
    ("esc", "close a dialog; from the filter box, back to the list"),
]
DIALOGS: list[tuple[str, str]] = [
    ("esc / q", "close (a prompt: cancel)"),
    ("enter", "confirm a prompt; the dialog stays open and says why when the value cannot be used"),
    ("y / n", "answer a question (Enter is yes, Esc is no)"),
    ("mouse", "select text to copy it by hand, when the terminal ignored the clipboard (OSC 52)"),
]


def key_name(keys: str) -> str:
    names = {"slash": "/", "question_mark": "?", "exclamation_mark": "!", "delete": "del", "backspace": "⌫"}
    return " / ".join(names.get(k, k) for k in keys.split(","))


def pane_keys(bindings: list[Binding]) -> list[tuple[str, str]]:
    """(keys, what they do) of a pane: keys of one action together, the tooltip as the explanation."""
    by_action: dict[str, list[str]] = {}
    told: dict[str, str] = {}
    for binding in bindings:
        by_action.setdefault(binding.action, []).append(binding.key)
        if binding.action not in told or binding.show:
            told[binding.action] = binding.tooltip or binding.description
    return [(key_name(",".join(keys)), told[action]) for action, keys in by_action.items()]


def everywhere(bindings: list[Binding], panes: list[Any]) -> list[tuple[str, str]]:
    """The app's own keys, from its bindings (so the help cannot go stale): the pane keys as one row, then the rest
    (the list keys j k g G are in LISTS), then the command palette, which Textual binds."""
    shows = [b for b in bindings if b.action.startswith("show(") and b.key.isdigit()]
    extra = [b for b in bindings if b.action.startswith("show(") and not b.key.isdigit()]  # panes shown while their server runs
    rows = [(f"{shows[0].key} … {shows[-1].key}", "show a pane: " + ", ".join(p.TITLE for p in panes[:len(shows)]))] if shows else []
    rows += [(b.key, f"the {b.description} pane (while its server runs)") for b in extra]
    rows += pane_keys([b for b in bindings if not b.action.startswith(("show(", "cursor("))])
    rows.append(("ctrl+p", "the command palette: every action by name, for any pane or server"))
    return rows


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,question_mark,f1,q", "dismiss", "Close")]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > Vertical { width: 100%; max-width: 100; height: auto; max-height: 100%; border: thick $accent; background: $surface; padding: 0 1; }
    HelpScreen VerticalScroll { height: auto; max-height: 1fr; }
    HelpScreen .hint { color: $text-muted; }
    """

    def __init__(self, title: str, sections: list[Section]) -> None:
        super().__init__()
        self.title_text = title
        self.sections = sections

    def compose(self) -> ComposeResult:
        text = Text()
        for heading, rows in self.sections:
            if text:
                text.append("\n")
            text.append(heading + "\n", style="bold")
            width = max(len(k) for k, _ in rows)
            for keys, what in rows:
                text.append(f"  {keys:<{width}}  ", style="bold")
                text.append(what + "\n")
        with Vertical():
            yield Label(self.title_text, id="help-title")
            with VerticalScroll():
                yield Static(text, id="help-text")
            yield Label("Esc, ? or q closes", classes="hint")

    def action_dismiss(self) -> None:
        self.dismiss(None)
