"""Strings from the mesh on screen: the CLI's rules (:mod:`mesh.render`), as Rich ``Text``
objects, which Textual never parses as markup. A message holding ``[bold red]`` shows
those characters; an escape sequence shows as ``\\x1b[...``."""

from __future__ import annotations

import datetime

from rich.text import Text

from mesh.ipc.calls import MessageRow
from mesh.render import carried_words, file_words, inert

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


def file_line(m: MessageRow, progress: tuple[int, int] | None) -> str:
    """A file in a conversation: its name (inert) and, for theirs, what became of it (ours:
    the header line has its state)."""
    name = inert(m.text) or "(no name)"
    if m.outgoing:
        return f"file {name}"
    said = file_words(m.state, False, progress)
    if m.state == "received":
        said += ": Enter to save it"
    return f"file {name}  [{said}]"


def claimed_time(created: int) -> str:
    """The sender's clock, shown as a claim (it is what their device said)."""
    when = datetime.datetime.fromtimestamp(created, tz=datetime.UTC).astimezone()
    return when.strftime("%Y-%m-%d %H:%M")
