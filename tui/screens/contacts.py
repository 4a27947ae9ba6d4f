"""Contacts: my card (text and QR) on the left, my contacts on the right, and what can be
done with them: add one by pasting their card, verify with the safety number, rename,
remove. Every change goes through the daemon (it owns the keystore)."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import Footer, OptionList, Static, TextArea
from textual.widgets.option_list import Option

from crypto.identity import fingerprint, short_fingerprint
from mesh.ipc.calls import (
    Call,
    ContactAdd,
    ContactAddSender,
    ContactRemove,
    ContactRename,
    ContactRow,
    Contacts,
    ContactVerify,
    Conversations,
    Me,
    MessageRow,
    Safety,
    SafetyNumber,
)
from mesh.ipc.schema import IpcError
from tui import console
from tui.daemon_link import DaemonLink, refusal
from tui.qr import qr_text, size_of
from tui.screens.dialogs import Ask, Confirm
from tui.text import line

UNKNOWN = "unknown:"  # option id prefix of an unknown sender (then their fingerprint, hex)


def stranger_row(m: MessageRow) -> Text:
    """Someone who wrote to us and is not a contact: their key is all we know, never a
    name (as ``steppe inbox`` shows them)."""
    out = Text(f"unknown sender {short_fingerprint(m.contact)}", "italic")
    out.append("  n: add them", "dim")
    first = m.text.split("\n", 1)[0]
    out.append("\n  ")
    out.append_text(line(first[:40]))
    return out


def contact_row(c: ContactRow) -> Text:
    out = line(c.name, "bold")
    if c.key_changed:
        out.append("  KEY CHANGED", "reverse red")
    else:
        out.append("  verified" if c.verified else "  unverified", "dim")
    out.append(f"\n  {c.fingerprint[:24]}", "dim")
    return out


class Verify(ModalScreen[bool]):
    """The safety number with one contact: 60 digits and 8 words side by side, and the
    digits as a QR code for their phone. y: they match; n or Escape: they do not."""

    DEFAULT_CSS = """
    Verify { align: center middle; }
    Verify > Vertical { width: auto; height: auto; border: thick $primary; padding: 0 1; }
    Verify #numbers { width: auto; height: auto; }
    Verify #digits { width: 26; margin-right: 2; }
    Verify #words { width: 20; }
    """
    BINDINGS = [  # noqa: RUF012
        Binding("y", "answer(True)", "They match"),
        Binding("n,escape", "answer(False)", "They do not"),
    ]

    def __init__(self, safety: Safety) -> None:
        super().__init__()
        self.safety = safety

    def compose(self) -> ComposeResult:
        groups = self.safety.digits.split()
        digits = "\n".join(" ".join(groups[i : i + 4]) for i in range(0, len(groups), 4))
        title = Text("Safety number with ")
        title.append_text(line(self.safety.name, "bold"))
        with Vertical():
            yield Static(title)
            with Horizontal(id="numbers"):
                yield Static(Text(digits), id="digits")
                yield Static(Text("\n".join(self.safety.words.split())), id="words")
            yield Static(qr_text(self.safety.digits, console.active(self)), id="qr")
            yield Static(
                Text(
                    "Compare with the number on their screen, in person. "
                    "y: they match exactly   n: they do not"
                )
            )

    def action_answer(self, match: bool) -> None:
        self.dismiss(match)


class ShowQR(ModalScreen[None]):
    """A QR code on the whole screen, or, if the terminal is too small for it, how large
    it must be (a cut or wrapped code would not scan)."""

    DEFAULT_CSS = """
    ShowQR { align: center middle; }
    ShowQR > Static { width: auto; max-width: 100%; height: auto; background: $panel; }
    """
    BINDINGS = [Binding("escape,q", "dismiss", "Close")]  # noqa: RUF012

    def __init__(self, data: str, what: str) -> None:
        super().__init__()
        self.data, self.what = data, what
        self.picture = Text()

    def compose(self) -> ComposeResult:
        yield Static("", id="picture")

    def on_mount(self) -> None:
        self.picture = qr_text(self.data, console.active(self))
        self._fit()

    def on_resize(self) -> None:
        self._fit()

    def _fit(self) -> None:
        width, height = size_of(self.picture)
        have = self.app.size
        shown = self.query_one("#picture", Static)
        if have.width >= width and have.height >= height:
            shown.update(self.picture)
        else:
            smaller = (  # the console: a font of 8 pixel lines doubles the lines
                "choose a smaller font (sudo setfont Lat15-VGA8; for Kazakh, CyrAsia-Terminus12x6)"
                if console.active(self)
                else "enlarge the window or make the font smaller"
            )
            shown.update(
                Text(
                    f"{self.what} needs a terminal of at least {width}x{height} characters "
                    f"(this one is {have.width}x{have.height}): {smaller}. Escape closes."
                )
            )


class ContactsScreen(Screen[None]):
    BINDINGS = [  # noqa: RUF012
        Binding("escape,f2", "app.pop_screen", "Conversations"),
        Binding("q", "qr", "My QR"),
        Binding("a", "add", "Add"),
        Binding("v", "verify", "Verify"),
        Binding("r", "rename", "Rename"),
        Binding("delete", "remove", "Remove"),
        Binding("n", "add_sender", "Add sender"),
    ]
    DEFAULT_CSS = """
    ContactsScreen #me { width: 1fr; padding: 0 1; }
    ContactsScreen #mine { height: 1fr; }
    ContactsScreen #contacts { width: 1fr; }
    """

    def __init__(self, daemon: DaemonLink) -> None:
        super().__init__()
        self.daemon = daemon
        self.rows: dict[str, ContactRow] = {}
        self.strangers: dict[str, MessageRow] = {}  # fingerprint (hex) -> their latest

    def compose(self) -> ComposeResult:
        yield console.header(self)
        with Horizontal():
            with Vertical(id="me"):
                yield Static("", id="who")
                yield TextArea("", read_only=True, id="mine", soft_wrap=True)
            yield OptionList(id="contacts")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#contacts").focus()
        self.reload()

    def on_screen_resume(self) -> None:
        self.reload()

    @work(exclusive=True, group="contacts")
    async def reload(self) -> None:
        try:
            card = await self.daemon.request(Me())
            rows = await self.daemon.request(Contacts())
        except IpcError as exc:
            self.notify(str(exc), severity="warning", markup=False)
            return
        who = line(card.name, "bold")
        who.append(f"\n{card.words}\nYour card, to give to people you trust (q: as a QR code):")
        self.query_one("#who", Static).update(who)
        self.query_one("#mine", TextArea).text = card.text
        latest = await self.daemon.request(Conversations())
        self.rows = {r.name: r for r in rows}
        known = {r.fingerprint for r in rows}
        self.strangers = {
            fingerprint(m.contact).hex(): m
            for m in latest
            if fingerprint(m.contact).hex() not in known and not m.outgoing
        }
        contacts = self.query_one("#contacts", OptionList)
        keep = self._chosen()
        contacts.clear_options()
        contacts.add_options([Option(contact_row(r), id=r.name) for r in rows])
        contacts.add_options(
            [Option(stranger_row(m), id=UNKNOWN + fp) for fp, m in self.strangers.items()]
        )
        if keep in self.rows:
            contacts.highlighted = contacts.get_option_index(keep)
        elif rows:
            contacts.highlighted = 0

    def _chosen(self) -> str | None:
        """The highlighted contact's name (None: none, or an unknown sender)."""
        option = self.query_one("#contacts", OptionList).highlighted_option
        if option is None or option.id is None or option.id.startswith(UNKNOWN):
            return None
        return option.id

    @work
    async def action_add_sender(self) -> None:
        option = self.query_one("#contacts", OptionList).highlighted_option
        if option is None or option.id is None or not option.id.startswith(UNKNOWN):
            return
        fp = option.id.removeprefix(UNKNOWN)
        question = Text(f"Your name for unknown sender {fp[:16]} (unverified until you compare")
        question.append(" safety numbers in person)")
        name = await self.app.push_screen_wait(Ask(question))
        if name is not None:
            await self._do("not added", ContactAddSender(fingerprint=fp, name=name))

    async def _do(self, what: str, call: Call[Any]) -> None:
        if await self.daemon.attempt(call, refusal(self, what)) is not None:
            self.reload()

    def action_qr(self) -> None:
        card = self.query_one("#mine", TextArea).text
        if card:
            self.app.push_screen(ShowQR(card, "Your card's QR code"))

    @work
    async def action_add(self) -> None:
        card = await self.app.push_screen_wait(
            Ask(Text("Paste their contact card (STEPPE1:...)"), "STEPPE1:")
        )
        if card is None:
            return
        name = await self.app.push_screen_wait(
            Ask(Text("Your name for them (empty: the name on their card)"))
        )
        await self._do("not added", ContactAdd(card=card, name=name or ""))

    @work
    async def action_verify(self) -> None:
        name = self._chosen()
        if name is None:
            return
        try:
            safety = await self.daemon.request(SafetyNumber(name=name))
        except IpcError as exc:
            self.notify(str(exc), severity="error", markup=False)
            return
        if await self.app.push_screen_wait(Verify(safety)):
            await self._do("not verified", ContactVerify(name=name, fingerprint=safety.fingerprint))

    @work
    async def action_rename(self) -> None:
        name = self._chosen()
        if name is None:
            return
        question = Text("New name for ")
        question.append_text(line(name))
        new = await self.app.push_screen_wait(Ask(question, value=name))
        if new is not None and new != name:
            await self._do("not renamed", ContactRename(name=name, new_name=new))

    @work
    async def action_remove(self) -> None:
        name = self._chosen()
        if name is None:
            return
        warning = Text("Remove ")
        warning.append_text(line(name, "bold"))
        warning.append(" from your contacts? Their messages stay, from an unknown sender.")
        if await self.app.push_screen_wait(Confirm(warning, "remove")):
            await self._do("not removed", ContactRemove(name=name))

    @on(OptionList.OptionSelected, "#contacts")
    def _selected(self) -> None:
        self.action_verify()
