"""The conversation list: one row per contact, with its state (verified, unverified,
KEY CHANGED), unread count and the last message."""

from __future__ import annotations

from dataclasses import dataclass, replace

from rich.text import Text
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from mesh.ipc.calls import ContactRow, MessageRow
from tui.text import line, state_word

PREVIEW = 24  # characters of the last message shown in the list


@dataclass
class Conversation:
    contact: ContactRow
    last: MessageRow | None = None
    unread: int = 0

    @property
    def trust(self) -> str:
        if self.contact.key_changed:
            return "KEY CHANGED"
        return "verified" if self.contact.verified else "unverified"


def row(conv: Conversation) -> Text:
    """Two lines: name, trust and unread count; the last message, cut to one line."""
    out = line(conv.contact.name, "bold")
    trust_style = "reverse red" if conv.contact.key_changed else "dim"
    out.append("  ")
    out.append(conv.trust, trust_style)
    if conv.unread:
        out.append(f"  {conv.unread} new", "bold")
    out.append("\n  ")
    if conv.last is None:
        out.append("no messages yet", "dim italic")
    else:
        first = conv.last.text.split("\n", 1)[0]
        prefix = "you: " if conv.last.outgoing else ""
        out.append(prefix, "dim")
        out.append_text(line(first[:PREVIEW] + ("..." if len(first) > PREVIEW else "")))
        if conv.last.outgoing:
            out.append(f"  ({state_word(conv.last)})", "dim")
    return out


class ConversationList(OptionList):
    """The contacts as conversations; the option ids are the contacts' names."""

    DEFAULT_CSS = """
    ConversationList { width: 36; min-width: 24; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.conversations: dict[str, Conversation] = {}

    def show(self, contacts: list[ContactRow], latest: list[MessageRow]) -> None:
        """Everything afresh (after connecting), keeping unread counts and the cursor."""
        last = {m.contact_name: m for m in latest}
        old = self.conversations
        self.conversations = {
            c.name: Conversation(c, last.get(c.name), old[c.name].unread if c.name in old else 0)
            for c in contacts
        }
        self._redraw()

    def note(self, message: MessageRow, unread: bool) -> None:
        """A message sent or received: it is the conversation's last one now."""
        conv = self.conversations.get(message.contact_name)
        if conv is None:
            return
        conv.last = message
        conv.unread += 1 if unread else 0
        self._redraw()

    def carried(self, msg_id: bytes, carriers: int) -> None:
        """The last message of a conversation may be the one now carried further."""
        for conv in self.conversations.values():
            last = conv.last
            if last is not None and last.msg_id == msg_id and last.state == "queued":
                conv.last = replace(last, carriers=max(carriers, last.carriers))
                self._redraw()
                return

    def read(self, name: str) -> None:
        conv = self.conversations.get(name)
        if conv is not None and conv.unread:
            conv.unread = 0
            self._redraw()

    def _redraw(self) -> None:
        current = self.highlighted_option
        keep = current.id if current is not None else None
        order = sorted(
            self.conversations.values(),
            key=lambda c: -(c.last.created if c.last is not None else 0),
        )
        self.clear_options()
        self.add_options([Option(row(c), id=c.contact.name) for c in order])
        if keep is not None and keep in self.conversations:
            self.highlighted = self.get_option_index(keep)
