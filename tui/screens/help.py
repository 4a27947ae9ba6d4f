"""F1 / ?: what each key does, and what the states of a message mean."""

from __future__ import annotations

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

KEYS = (
    ("F1, ?", "this help"),
    ("F2", "conversations (arrows move, Enter opens)"),
    ("F3", "contacts: q your QR; a add, v verify, r rename, Del remove, n add a sender"),
    ("F4", "bulletins: the public feed, each post's trust; p posts, e endorses"),
    ("F5", "network: links, what you carry, refusals; e export, i import a bundle"),
    ("Ctrl+S", "send what is in the compose box"),
    ("Ctrl+P", "the command palette"),
    ("Ctrl+X", "PANIC: wipe this profile's keys and messages (asks you to type 'wipe')"),
    ("Ctrl+Q", "quit the UI (the daemon keeps delivering)"),
)
STATES = (
    ("queued", "kept by your daemon; it leaves with the next neighbour met"),
    ("carried by N neighbours", "handed to N nearby devices that pass it on (or may drop it)"),
    ("delivered", "their device has it (a receipt came back)"),
)


class HelpScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 80; max-height: 22; border: thick $primary; }
    """
    BINDINGS = [Binding("escape,f1,question_mark,q", "dismiss", "Close")]  # noqa: RUF012

    def compose(self) -> ComposeResult:
        keys = Table("key", "does", box=None, expand=True)
        for key, does in KEYS:
            keys.add_row(key, does)
        states = Table("a message", "means", box=None, expand=True)
        for state, means in STATES:
            states.add_row(state, means)
        with VerticalScroll():
            yield Static(keys)
            yield Static(states)
            yield Static("Times are what the sender's device said. Escape closes.")
