"""One conversation: its messages oldest first, each with the sender's time shown as a
claim and, for ours, its state in words that only ever improve (queued, carried by N
neighbours, delivered)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from rich.console import Group
from rich.padding import Padding
from rich.text import Text
from textual.message import Message
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from mesh.ipc.calls import FileRow, MessageRow
from tui.text import block, claimed_time, file_line, line, state_word

SHOWN = 200  # the latest messages shown when a conversation opens (paged: never all)


INDENT = 2  # columns every line of a body is set in, wrapped lines too


def header(m: MessageRow, me: str = "you") -> Text:
    out = Text()
    out.append(f"{claimed_time(m.created)}  ", "dim")
    if m.outgoing:
        out.append(me, "bold")
        out.append(f"  [{state_word(m)}]", "dim")  # plain text: Text is never markup
    else:
        out.append_text(line(m.contact_name, "bold"))
    return out


def bubble(m: MessageRow, progress: tuple[int, int] | None = None) -> Group:
    """A message: our header line at the margin, the body padded in, so a body that
    holds a line like a header (or wraps into one) can never stand where ours do. A
    file: its name and, for theirs, its chunks received of all."""
    body = Text(file_line(m, progress), style="italic") if m.file else block(m.text)
    return Group(header(m), Padding(body, (0, 0, 0, INDENT)))


class Thread(OptionList):
    """The open conversation; option ids are message ids (hex). Moving up from the first
    message shown asks for earlier ones (:class:`Thread.Earlier`): paged, never all."""

    @dataclass
    class Earlier(Message):
        thread: Thread
        shown: int  # how many are shown now

    DEFAULT_CSS = """
    Thread { height: 1fr; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.contact = ""  # whose conversation is open ("" none)
        self.rows: dict[str, MessageRow] = {}
        self.progress: dict[str, tuple[int, int]] = {}  # a file's chunks: received, of all

    def show(self, contact: str, rows: list[MessageRow], at: str | None = None) -> None:
        """``rows`` (oldest first), highlighting the message ``at`` (default: the last)."""
        self.contact = contact
        self.rows = {m.msg_id.hex(): m for m in rows}
        self.clear_options()
        self.add_options([Option(self._bubble(m), id=m.msg_id.hex()) for m in rows])
        if at is not None and at in self.rows:
            self.highlighted = self.get_option_index(at)
        else:
            self._to_end()

    def action_cursor_up(self) -> None:
        if self.highlighted == 0 and self.contact:
            self.post_message(self.Earlier(self, self.option_count))
        super().action_cursor_up()

    def add(self, m: MessageRow) -> None:
        key = m.msg_id.hex()
        if key in self.rows:
            return
        self.rows[key] = m
        self.add_option(Option(self._bubble(m), id=key))
        self._to_end()

    def delivered(self, msg_id: bytes, state: str) -> None:
        self._update(msg_id, state=state)

    def carried(self, msg_id: bytes, carriers: int) -> None:
        """One more neighbour carries it (never shown over "delivered", never fewer)."""
        m = self.rows.get(msg_id.hex())
        if m is not None and m.state == "queued" and carriers > m.carriers:
            self._update(msg_id, carriers=carriers)

    def _update(self, msg_id: bytes, **change: object) -> None:
        key = msg_id.hex()
        m = self.rows.get(key)
        if m is None:
            return
        new = replace(m, **change)  # type: ignore[arg-type]
        self.rows[key] = new
        self.replace_option_prompt(key, self._bubble(new))

    def _bubble(self, m: MessageRow) -> Group:
        return bubble(m, self.progress.get(m.msg_id.hex()))

    def files(self, rows: list[FileRow]) -> None:
        """The progress of the files shown (from the daemon's ``files``)."""
        for f in rows:
            self.file_progress(f.msg_id, f.received, f.count)

    def file_progress(self, msg_id: bytes, received: int, count: int) -> None:
        key = msg_id.hex()
        if self.progress.get(key, (-1, 0))[0] >= received:
            return  # never fewer
        self.progress[key] = (received, count)
        if key in self.rows:
            self.replace_option_prompt(key, self._bubble(self.rows[key]))

    def selected(self) -> MessageRow | None:
        if self.highlighted is None or not self.option_count:
            return None
        return self.rows.get(self.get_option_at_index(self.highlighted).id or "")

    def state_of(self, msg_id: bytes) -> str:
        m = self.rows.get(msg_id.hex())
        return "" if m is None else state_word(m)

    def _to_end(self) -> None:
        if self.option_count:
            self.highlighted = self.option_count - 1
