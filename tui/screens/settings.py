"""The settings dialog: what notifications of new messages may say."""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList
from textual.widgets.option_list import Option

from tui.settings import CHOICES, Notify


class NotifySettings(ModalScreen[Notify | None]):
    """Pick one of :data:`tui.settings.CHOICES`; Enter takes it, Escape keeps the old."""

    DEFAULT_CSS = """
    NotifySettings { align: center middle; }
    NotifySettings > Vertical { width: 70; height: auto; border: thick $primary; padding: 1 2; }
    NotifySettings OptionList { height: auto; }
    """
    BINDINGS = [Binding("escape", "cancel", "Cancel")]  # noqa: RUF012

    def __init__(self, current: Notify) -> None:
        super().__init__()
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(Text("When a message arrives in a conversation you are not reading:"))
            options = [
                Option(Text(f"{n.value:<7} {says}"), id=n.value) for n, says in CHOICES.items()
            ]
            yield OptionList(*options, id="notify")

    def on_mount(self) -> None:
        choices = self.query_one(OptionList)
        choices.highlighted = list(CHOICES).index(self.current)
        choices.focus()

    @on(OptionList.OptionSelected)
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(Notify(event.option.id or self.current))

    def action_cancel(self) -> None:
        self.dismiss(None)
