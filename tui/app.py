"""The Steppe terminal UI: conversations with contacts, over the profile's daemon.

Theory of operation
-------------------
The app holds no state of its own that matters: the daemon has the history, contacts and
delivery states; the app shows them and asks for changes over the local API
(:class:`~tui.daemon_link.DaemonLink`). On :class:`~tui.messages.DaemonUp` it loads the
contacts and the latest message of each; events then keep the screen current (a message
received, one of ours delivered, a contact changed). On
:class:`~tui.messages.DaemonDown` a banner says so and the link reconnects by itself;
the compose box keeps its text until the daemon has taken it.

A conversation whose contact's key changed is frozen: the warning bar says so and
nothing can be sent until the contact is verified again (``steppe contact verify``).
No message text goes to the terminal title. A message arriving while its conversation is
not on screen is notified as the user chose (:mod:`tui.settings`): by default the sender
only, never the text unless they turn that on (the command palette: Notifications).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, OptionList, Static

from crypto import keystore
from crypto.errors import CryptoError
from mesh.ipc import events as ev
from mesh.ipc.calls import MAX_LIMIT, Contacts, Conversations, Files, MessageRow, Messages, Send
from mesh.ipc.schema import IpcError
from mesh.offline import daemon_answers
from mesh.profile import ProfileError, create_profile
from tui import console, file_actions
from tui.daemon_link import DaemonLink
from tui.messages import DaemonDown, DaemonUp, MeshEvent
from tui.screens.bulletins import BulletinsScreen
from tui.screens.contacts import ContactsScreen
from tui.screens.dialogs import Confirm, YesNo
from tui.screens.help import HelpScreen
from tui.screens.network import NetworkScreen
from tui.screens.settings import NotifySettings
from tui.screens.start import Create, NewProfile, Unlock
from tui.settings import Settings, SettingsError, load_settings, notice, save_settings
from tui.start import Started, has_profile, spawn, until_up
from tui.text import line
from tui.widgets.compose import Compose
from tui.widgets.conversations import ConversationList
from tui.widgets.thread import SHOWN, Thread

COMMANDS = (  # the command palette's entries besides Textual's: title, help, action
    ("Conversations", "your conversations (F2)", "focus_list"),
    ("Contacts", "your card and QR, your contacts (F3)", "contacts"),
    ("Bulletins", "the public feed, and posting (F4)", "bulletins"),
    ("Network", "links, what you carry, bundles (F5)", "network"),
    ("Send a file", "a photo or file to the open conversation (Ctrl+O)", "send_file"),
    ("Help", "keys and what message states mean (F1)", "help"),
    ("Notifications", "what a new message's notification may say", "notifications"),
    ("Panic", "wipe this profile now (asks you to type wipe)", "panic"),
)


class SteppeApp(App[None]):
    CSS_PATH = "steppe.tcss"
    TITLE = "Steppe"
    BINDINGS = [  # noqa: RUF012 - Textual's declaration
        Binding("f1,question_mark", "help", "Help"),
        Binding("f2", "focus_list", "Conversations"),
        Binding("f3", "contacts", "Contacts"),
        Binding("f4", "bulletins", "Bulletins"),
        Binding("f5", "network", "Network"),
        Binding("ctrl+o", "send_file", "Send a file"),
        Binding("ctrl+x", "panic", "Panic", show=False),
        Binding("ctrl+q", "quit", "Quit"),
    ]

    def __init__(
        self, profile_dir: Path, daemon_args: Sequence[str] = (), plain: bool | None = None
    ) -> None:
        """``daemon_args``: what a daemon this UI starts is given after ``daemon``
        (``--config FILE``). ``plain``: only the Linux console fonts' glyphs
        (:mod:`tui.console`; None: on ``TERM=linux``)."""
        super().__init__()
        if console.wanted() if plain is None else plain:
            self.add_class(console.CLASS)
        self.profile_dir = profile_dir
        self.daemon_args = tuple(daemon_args)
        self.daemon = DaemonLink(profile_dir, self.post_message)
        self.started: Started | None = None  # a daemon this UI started, still running
        self.wiped = ""  # after a panic: what was done, for the command to print
        self.settings_error = ""
        try:
            self.settings = load_settings(profile_dir)
        except SettingsError as exc:
            self.settings, self.settings_error = Settings(), str(exc)

    def compose(self) -> ComposeResult:
        yield console.header(self)
        yield Static("connecting to the daemon...", id="banner")
        with Horizontal():
            yield ConversationList(id="conversations")
            with Vertical(id="conversation"):
                yield Static("", id="warning")
                yield Thread(id="thread")
                yield Compose(id="compose")
        yield Footer()

    def on_mount(self) -> None:
        console.plain_scrollbars(console.active(self))
        self.query_one("#warning").display = False
        if self.settings_error:
            self.notify(
                f"{self.settings_error} (using the defaults)", severity="warning", markup=False
            )
        self.prepare()

    @work
    async def prepare(self) -> None:
        """A daemon for the profile (creating the profile or unlocking it to start one, if
        need be), then the connections to it."""
        if not await asyncio.to_thread(daemon_answers, self.profile_dir):
            if has_profile(self.profile_dir):
                ready = await self._unlock()
            else:
                ready = await self._create()
            if not ready:
                self.exit()
                return
        self.run_worker(self.daemon.run(), name="daemon", exit_on_error=False)

    async def _unlock(self, error: str = "") -> bool:
        while True:
            passphrase = await self.push_screen_wait(Unlock(error))
            if passphrase is None:
                return False
            error = await self._start_daemon(passphrase)
            if not error:
                return True

    async def _create(self) -> bool:
        while True:
            new = await self.push_screen_wait(Create())
            if new is None:
                return False
            try:
                await asyncio.to_thread(self._create_profile, new)
            except (ProfileError, CryptoError, ValueError) as exc:
                self.notify(f"no profile created: {exc}", severity="error", markup=False)
                continue
            error = await self._start_daemon(new.passphrase)
            return not error or await self._unlock(error)

    def _create_profile(self, new: NewProfile) -> None:
        params = keystore.KdfParams.named(new.kdf)
        now = int(time.time())
        create_profile(self.profile_dir, new.name, new.passphrase, params, now, os.urandom)

    async def _start_daemon(self, passphrase: bytes) -> str:
        """ "" once a daemon we started answers; else why not."""
        self.query_one("#banner", Static).update(Text("starting the daemon..."))
        started = await asyncio.to_thread(spawn, self.profile_dir, passphrase, self.daemon_args)
        why = await until_up(started, self.profile_dir)
        if not why:
            self.started = started
        return why

    async def action_quit(self) -> None:
        """Quit; a daemon this UI started may be stopped too (it goes on delivering
        otherwise, which is what it is for)."""
        started = self.started
        if started is not None and started.process.poll() is None:
            question = Text(
                "The daemon this window started keeps delivering your mail while the UI is "
                "closed. Stop it too?"
            )
            self.push_screen(YesNo(question), lambda yes: self._quit(stop=bool(yes)))
            return
        self.exit()

    def _quit(self, stop: bool) -> None:
        if stop and self.started is not None:
            self.started.stop()
            self.started = None
        self.exit()

    # ---- the daemon ---------------------------------------------------------------------
    def on_daemon_down(self, message: DaemonDown) -> None:
        banner = self.query_one("#banner", Static)
        banner.update(line(f"daemon away: {message.reason}; reconnecting..."))
        banner.display = True

    def on_daemon_up(self, _message: DaemonUp) -> None:
        self.query_one("#banner").display = False
        self.reload()
        if isinstance(self.screen, ContactsScreen | BulletinsScreen | NetworkScreen):
            self.screen.reload()  # opened while the daemon was away: fill it now

    @work(exclusive=True, group="reload")
    async def reload(self) -> None:
        try:
            contacts = await self.daemon.request(Contacts())
            latest = await self.daemon.request(Conversations())
        except IpcError:
            return  # DaemonDown says why
        self.query_one(ConversationList).show(contacts, latest)
        thread = self.query_one(Thread)
        if thread.contact:
            await self.open_conversation(thread.contact)

    def on_unmount(self) -> None:
        console.plain_scrollbars(False)

    def on_mesh_event(self, message: MeshEvent) -> None:
        event = message.event
        thread, convs = self.query_one(Thread), self.query_one(ConversationList)
        match event:
            case ev.MessageReceived():
                row = MessageRow(
                    event.contact,
                    event.contact_name,
                    False,
                    event.msg_id,
                    event.created,
                    event.text,
                    "receiving" if event.file else "received",
                    file=event.file,
                )
                showing = thread.contact == event.contact_name
                if showing:
                    thread.add(row)
                convs.note(row, unread=not showing)
                if not showing or self.screen is not self.screen_stack[0]:
                    text = f"a file: {event.text}" if event.file else event.text
                    said = notice(self.settings.notify, event.contact_name, text)
                    if said is not None:
                        self.notify(said, markup=False)
            case ev.MessageStateChanged():
                thread.delivered(event.msg_id, event.state)
                self.reload()
            case ev.FileProgress():
                thread.file_progress(event.msg_id, event.received, event.count)
            case ev.MessageCarried():
                thread.carried(event.msg_id, event.carriers)
                convs.carried(event.msg_id, event.carriers)
            case ev.ContactChanged():
                self.reload()
            case ev.BulletinStored() | ev.BulletinEndorsed():
                if isinstance(self.screen, BulletinsScreen):
                    self.screen.reload()
            case ev.LinkChanged():
                if isinstance(self.screen, NetworkScreen):
                    self.screen.reload()

    # ---- conversations ------------------------------------------------------------------
    @on(OptionList.OptionSelected, "#conversations")
    async def _selected(self, message: OptionList.OptionSelected) -> None:
        if message.option.id is not None:
            await self.open_conversation(message.option.id)
            self.query_one(Compose).focus()

    @on(OptionList.OptionSelected, "#thread")
    @work
    async def _thread_selected(self, _message: OptionList.OptionSelected) -> None:
        m = self.query_one(Thread).selected()
        if m is not None and m.file:
            await file_actions.save_file(self, m)

    @work
    async def action_send_file(self) -> None:
        thread = self.query_one(Thread)
        if not thread.contact:
            self.notify("open a conversation first (F2, then Enter)", severity="warning")
            return
        if await file_actions.send_file(self, thread.contact):
            await self.open_conversation(thread.contact)

    @on(Thread.Earlier)
    async def _earlier(self, message: Thread.Earlier) -> None:
        """Up from the first message shown: the :data:`SHOWN` before it as well."""
        thread = message.thread
        first = thread.get_option_at_index(0).id if thread.option_count else None
        try:
            want = min(MAX_LIMIT, message.shown + SHOWN)
            rows = await self.daemon.request(Messages(contact=thread.contact, limit=want))
        except IpcError as exc:
            self.notify(str(exc), severity="warning", markup=False)
            return
        if len(rows) > message.shown:
            thread.show(thread.contact, rows, at=first)

    async def open_conversation(self, name: str) -> None:
        try:
            rows = await self.daemon.request(Messages(contact=name, limit=SHOWN))
        except IpcError as exc:
            self.notify(line(str(exc)).plain, severity="warning")
            return
        thread = self.query_one(Thread)
        if any(m.file for m in rows):
            with contextlib.suppress(IpcError):  # shown without progress; DaemonDown says why
                thread.files(await self.daemon.request(Files(contact=name)))
        thread.show(name, rows)
        convs = self.query_one(ConversationList)
        if rows:  # the list shows the last message as the daemon holds it (one just sent)
            convs.note(rows[-1], unread=False)
        convs.read(name)
        self._freeze_if_changed(name)

    def _freeze_if_changed(self, name: str) -> None:
        conv = self.query_one(ConversationList).conversations.get(name)
        frozen = conv is not None and conv.contact.key_changed
        warning = self.query_one("#warning", Static)
        if frozen:
            text = line(name)
            text.append(
                "'s key CHANGED: this may be someone else. Nothing can be sent until you "
                "compare safety numbers in person and verify them again."
            )
            warning.update(text)
        warning.display = frozen
        self.query_one(Compose).disabled = frozen

    @on(Compose.Submitted)
    async def _send(self, message: Compose.Submitted) -> None:
        thread = self.query_one(Thread)
        if not thread.contact:
            self.notify("open a conversation first (F2, then Enter)", severity="warning")
            return
        try:
            await self.daemon.request(Send(contact=thread.contact, text=message.text))
        except IpcError as exc:
            self.notify(line(str(exc)).plain, severity="error")  # the text stays in the box
            return
        message.compose.clear()
        await self.open_conversation(thread.contact)  # the message as the daemon holds it: queued

    def action_focus_list(self) -> None:
        self.query_one(ConversationList).focus()

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        """The command palette (Ctrl+P): Textual's own commands and every screen here."""
        yield from super().get_system_commands(screen)
        for title, help_text, action in COMMANDS:
            yield SystemCommand(title, help_text, getattr(self, f"action_{action}"))

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    @work
    async def action_notifications(self) -> None:
        chosen = await self.push_screen_wait(NotifySettings(self.settings.notify))
        if chosen is None or chosen is self.settings.notify:
            return
        self.settings = Settings(notify=chosen)
        try:
            await asyncio.to_thread(save_settings, self.profile_dir, self.settings)
        except OSError as exc:
            self.notify(f"not saved: {exc}", severity="error", markup=False)
            return
        self.notify(f"notifications: {chosen.value}")

    def action_contacts(self) -> None:
        self.push_screen(ContactsScreen(self.daemon))

    def action_bulletins(self) -> None:
        self.push_screen(BulletinsScreen(self.daemon))

    def action_network(self) -> None:
        self.push_screen(NetworkScreen(self.daemon))

    @work
    async def action_panic(self) -> None:
        """Wipe the profile exactly as ``steppe panic`` does, after a typed yes."""
        from mesh.daemon.panic import NotAProfile, panic

        warning = Text(
            "PANIC: destroy every key and message of this profile now, for good? "
            "The passphrase will open nothing afterwards.",
            style="bold",
        )
        if not await self.push_screen_wait(Confirm(warning, "wipe")):
            return
        try:
            took = panic(self.profile_dir)
        except NotAProfile as exc:
            self.notify(str(exc), severity="error", markup=False)
            return
        self.wiped = f"wiped {self.profile_dir} in {took:.2f} s"
        self.exit()
