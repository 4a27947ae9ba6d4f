"""Strings from the mesh on screen: the CLI's rules (:mod:`mesh.render`), as Rich ``Text``
objects, which Textual never parses as markup. A message holding ``[bold red]`` shows
those characters; an escape sequence shows as ``\\x1b[...``."""

from __future__ import annotations

import datetime

from rich.text import Text

from mesh.ipc.calls import MessageRow
from mesh.render import carried_words, inert

STATE_WORDS = {"queued": "queued", "acked": "delivered", "received": "received"}


def line(text: str, style: str = "") -> Text:
    """One line from the mesh (a name, a topic), inert."""
    return Text(inert(text), style=style)


def block(text: str) -> Text:
    """A message body from the mesh: its lines kept, each inert. Shown inside a padding
    (:func:`tui.widgets.thread.bubble`), so that no line of it, wrapped ones included,
    begins at the margin where our own header lines begin."""
    return Text("\n".join(inert(part) for part in text.split("\n")))


def state_word(m: MessageRow) -> str:
    """What a message's state says to a person, in words that only ever improve:
    queued, carried by N neighbours, delivered."""
    if m.state == "queued" and m.carriers > 0:
        return carried_words(m.carriers)
    return STATE_WORDS.get(m.state, "queued")


FILE_WORDS = {
    "receiving": "receiving",
    "received": "received: Enter to save it",
    "damaged": "damaged: it does not match what its sender said, not kept",
    "dropped": "given up: it expired before every chunk arrived",
    "refused": "refused",
}


def file_words(m: MessageRow, progress: tuple[int, int] | None) -> str:
    """A file in a conversation: its name (inert) and what became of it."""
    name = inert(m.text) or "(no name)"
    if m.outgoing:
        return f"file {name}"
    said = FILE_WORDS.get(m.state, inert(m.state))
    if m.state == "receiving" and progress is not None:
        said = f"receiving, {progress[0]} of {progress[1]} chunks"
    return f"file {name}  [{said}]"


def claimed_time(created: int) -> str:
    """The sender's clock, shown as a claim (it is what their device said)."""
    when = datetime.datetime.fromtimestamp(created, tz=datetime.UTC).astimezone()
    return when.strftime("%Y-%m-%d %H:%M")
