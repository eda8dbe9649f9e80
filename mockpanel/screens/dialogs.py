"""Modal dialogs: text to read and select (tokens, URLs, request details) and one-line prompts."""

from __future__ import annotations

from typing import Callable

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, TextArea

from ..display import escape_controls, plain
from .base import OrderedInput


class TextDialog(ModalScreen[None]):
    """Shows text the user can select and copy by hand (some terminals ignore OSC 52 clipboard writes)."""

    BINDINGS = [Binding("escape", "dismiss", "Close"), Binding("q", "dismiss", "Close", show=False),
                Binding("question_mark", "app.toggle_help", "Keys", show=False)]
    DEFAULT_CSS = """
    TextDialog { align: center middle; }
    TextDialog > Vertical { width: 90%; max-width: 120; height: auto; max-height: 90%; border: thick $accent; background: $surface; padding: 1 2; }
    TextDialog TextArea { height: auto; max-height: 30; min-height: 3; }
    TextDialog .hint { color: $text-muted; }
    """

    def __init__(self, title: str, text: str, hint: str = "Select the text to copy it by hand · Esc closes", details: str = "") -> None:
        """`details`: shown under the text, not part of what is copied (a token's decoded claims)."""
        super().__init__()
        self.title_text, self.text, self.hint = plain(title), escape_controls(text, lines=True), hint
        self.details = details

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self.title_text, id="dialog-title")
            yield TextArea(self.text, read_only=True, soft_wrap=True, id="dialog-text")
            if self.details:
                yield Label(plain(self.details, lines=True), id="dialog-details")
            yield Label(self.hint, classes="hint")

    def action_dismiss(self) -> None:
        self.dismiss(None)


class PromptDialog(ModalScreen[str | None]):
    """Asks for one line; Enter answers it, Esc cancels."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]
    DEFAULT_CSS = """
    PromptDialog { align: center middle; }
    PromptDialog > Vertical { width: 80; height: auto; border: thick $accent; background: $surface; padding: 1 2; }
    PromptDialog .hint { color: $text-muted; }
    PromptDialog #prompt-error { color: $error; display: none; }
    """

    def __init__(self, question: str, value: str = "", placeholder: str = "", hint: str = "Enter to confirm · Esc to cancel",
                 check: Callable[[str], str | None] | None = None) -> None:
        """`check`: the reason an answer cannot be used (shown in the dialog, which stays open), or None."""
        super().__init__()
        question = plain(question)
        self.question, self.value, self.placeholder, self.hint, self.check = question, value, placeholder, hint, check

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self.question)
            yield OrderedInput(self.value, placeholder=self.placeholder, id="prompt-input")
            yield Label("", id="prompt-error")
            yield Label(self.hint, classes="hint")

    @on(Input.Submitted)
    def submitted(self, event: Input.Submitted) -> None:
        reason = self.check(event.value) if self.check is not None and event.value.strip() else None
        if reason:
            error = self.query_one("#prompt-error", Label)
            error.update(plain(f"✗ {reason}"))
            error.display = True
            return
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        self.dismiss(None)



class ConfirmDialog(ModalScreen[bool]):
    """A destructive action asks first: y or Enter does it, n or Esc does not."""

    BINDINGS = [Binding("y,enter", "answer(True)", "Yes"), Binding("n,escape", "answer(False)", "No"),
                Binding("question_mark", "app.toggle_help", "Keys", show=False)]
    DEFAULT_CSS = """
    ConfirmDialog { align: center middle; }
    ConfirmDialog > Vertical { width: 70; height: auto; border: thick $error; background: $surface; padding: 1 2; }
    ConfirmDialog .hint { color: $text-muted; }
    """

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = plain(question)

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self.question, id="confirm-question")
            yield Label("y / Enter: yes · n / Esc: no", classes="hint")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)
