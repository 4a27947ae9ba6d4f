"""Modal questions: one line of input (a card, a name) and a typed confirmation."""

from __future__ import annotations

from rich.console import RenderableType
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static


class Ask(ModalScreen[str | None]):
    """One line of input; Enter gives it, Escape gives None."""

    DEFAULT_CSS = """
    Ask { align: center middle; }
    Ask > Vertical { width: 76; height: auto; border: thick $primary; padding: 1 2; }
    """
    BINDINGS = [Binding("escape", "cancel", "Cancel")]  # noqa: RUF012

    def __init__(self, question: Text, placeholder: str = "", value: str = "") -> None:
        """``question`` is a Text (mesh strings in it made inert by the caller, never
        parsed as markup)."""
        super().__init__()
        self.question, self.placeholder, self.value = question, placeholder, value

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self.question)
            yield Input(value=self.value, placeholder=self.placeholder, id="answer")

    @on(Input.Submitted)
    def _given(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip() or None)

    def action_cancel(self) -> None:
        self.dismiss(None)


class Confirm(ModalScreen[bool]):
    """A grave step: the user must type ``word`` exactly; anything else, or Escape, is no."""

    DEFAULT_CSS = """
    Confirm { align: center middle; }
    Confirm > Vertical { width: 76; height: auto; border: thick $error; padding: 1 2; }
    """
    BINDINGS = [Binding("escape", "cancel", "Cancel")]  # noqa: RUF012

    def __init__(self, warning: Text, word: str) -> None:
        super().__init__()
        self.warning, self.word = warning, word

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(self.warning)
            yield Label(Text(f"Type {self.word} and press Enter to go on; Escape to stop."))
            yield Input(id="typed")

    @on(Input.Submitted)
    def _typed(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip() == self.word)

    def action_cancel(self) -> None:
        self.dismiss(False)


class YesNo(ModalScreen[bool]):
    """A question answered with y or n (Escape: n)."""

    DEFAULT_CSS = """
    YesNo { align: center middle; }
    YesNo > Vertical { width: 70; height: auto; border: thick $primary; padding: 1 2; }
    """
    BINDINGS = [  # noqa: RUF012
        Binding("y", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
    ]

    def __init__(self, question: RenderableType) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(self.question)
            yield Label(Text("y: yes   n: no"))

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)
