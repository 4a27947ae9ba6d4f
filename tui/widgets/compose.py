"""Writing a message: a multi-line box; ctrl+s sends. What is typed stays until the daemon
has taken it (a daemon away, a refusal: the text is kept)."""

from __future__ import annotations

from dataclasses import dataclass

from textual.binding import Binding
from textual.message import Message
from textual.widgets import TextArea


class Compose(TextArea):
    DEFAULT_CSS = """
    Compose { height: 5; }
    """
    # Not a priority binding: a priority one is run when the key reaches the app, ahead of
    # the characters typed just before it that the box has not taken in yet (they were lost).
    BINDINGS = [Binding("ctrl+s", "send", "Send")]  # noqa: RUF012

    @dataclass
    class Submitted(Message):
        compose: Compose
        text: str

    def action_send(self) -> None:
        text = self.text.strip("\n")
        if text.strip():
            self.post_message(self.Submitted(self, text))
