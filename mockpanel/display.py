"""Client text on the screen: shown as typed, never parsed as markup, its control characters made visible.

Whatever a client sent (names, keys, event types, paths, bodies) reaches a widget through here. Rich/Textual markup
in it would be applied (or, malformed, raise and end the app), and C0/C1 control characters would reach the
terminal as escape sequences (a new window title, an OSC 52 clipboard write, a repainted screen).
"""

from __future__ import annotations

import re

from rich.text import Text

# C0 but tab/newline, DEL and C1; the lines variant keeps newlines (and tabs) for multi-line views.
_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CONTROLS_BUT_LINES = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _visible(match: re.Match[str]) -> str:
    char = match.group()
    return _NAMED.get(char) or f"\\x{ord(char):02x}"


def escape_controls(value: object, *, lines: bool = False) -> str:
    """`value` as a string with every control character written out (`\\x1b`, `\\n`); `lines` keeps line breaks."""
    text = value if isinstance(value, str) else str(value)
    return (_CONTROLS_BUT_LINES if lines else _CONTROLS).sub(_visible, text)


def plain(value: object, *, lines: bool = False) -> Text:
    """A renderable of client text: no markup applied, control characters escaped. For cells, Statics and labels."""
    return Text(escape_controls(value, lines=lines), end="")
