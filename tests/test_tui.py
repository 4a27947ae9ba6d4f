"""The terminal UI (tui/) driven with Textual's Pilot against real daemons started by the
test (loopback LAN links, real local API sockets; tests/tui_helpers.py): no mock of the
daemon."""

from __future__ import annotations

import asyncio
import functools
import io
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console, RenderableType
from textual import events
from textual.pilot import Pilot
from textual.widgets import Input, OptionList, TextArea

from crypto import keystore as keystore_kdf
from crypto.identity import ContactCard, safety_digits
from crypto.wire import strict_unpack
from mesh.daemon.history import HISTORY, History
from mesh.ipc.calls import (
    BulletinList,
    BulletinPost,
    ContactAdd,
    Contacts,
    Messages,
    PersonaNew,
    Send,
    Status,
)
from mesh.profile import KEYSTORE, Profile, ProfileError, create_profile, open_profile
from tests.daemon_helpers import T0, befriend, loopback_config, make_profile
from tests.tui_helpers import Daemons, ask, ask_dir, eventually
from tui.app import SteppeApp
from tui.screens.bulletins import BulletinsScreen, bulletin
from tui.screens.contacts import ContactsScreen, Verify, stranger_row
from tui.screens.dialogs import YesNo
from tui.screens.files import PickFile
from tui.screens.network import NetworkScreen
from tui.screens.start import Create, Unlock
from tui.widgets.compose import Compose
from tui.widgets.conversations import ConversationList
from tui.widgets.thread import SHOWN, Thread, bubble

SIZE = (100, 30)


def on_screen(renderable: RenderableType, width: int) -> list[str]:
    """The lines a renderable takes in a terminal ``width`` columns wide."""
    console = Console(width=width, record=True, color_system=None, file=io.StringIO())
    console.print(renderable)
    return [x.rstrip() for x in console.export_text().splitlines()]


def styles_of(renderable: RenderableType) -> list[object]:
    console = Console(width=80, file=io.StringIO())
    return [seg.style for seg in console.render(renderable) if seg.style is not None]


def pair(tmp_path: Path) -> tuple[Profile, Profile]:
    now = int(time.time())
    alice, bob = make_profile(tmp_path, "Alice", now), make_profile(tmp_path, "Bob", now)
    befriend(alice, bob, now)
    return alice, bob


async def type_text(pilot: Pilot[None], text: str) -> None:
    """Keys as a person types them."""
    keys = {" ": "space", "\n": "enter", ",": "comma", ".": "full_stop"}
    await pilot.press(*(keys.get(ch, ch) for ch in text))


async def open_conversation(pilot: Pilot[None], app: SteppeApp, name: str) -> None:
    convs = app.query_one(ConversationList)
    await eventually(f"{name} listed", lambda: name in convs.conversations)
    await pilot.press("f2")
    convs.highlighted = convs.get_option_index(name)
    await pilot.press("enter")
    await eventually("the conversation open", lambda: app.query_one(Thread).contact == name)


def test_a_message_typed_in_the_ui_is_delivered_and_says_so(tmp_path: Path) -> None:
    alice, bob = pair(tmp_path)

    async def main() -> None:
        app = SteppeApp(alice.path)
        async with app.run_test(size=SIZE) as pilot:
            await open_conversation(pilot, app, "Bob")
            assert app.focused is app.query_one(Compose)
            await type_text(pilot, "hello bob, from the ui")
            await pilot.press("ctrl+s")
            thread = app.query_one(Thread)
            await eventually("shown as queued", lambda: len(thread.rows) == 1)
            [mine] = thread.rows.values()
            assert mine.outgoing
            assert mine.text == "hello bob, from the ui"
            assert app.query_one(Compose).text == ""  # taken by the daemon
            bobs = await ask(bob, Messages(contact="Alice"))
            for _ in range(400):
                if any(m.text == "hello bob, from the ui" for m in bobs):
                    break
                await asyncio.sleep(0.05)
                bobs = await ask(bob, Messages(contact="Alice"))
            assert [m.text for m in bobs if not m.outgoing] == ["hello bob, from the ui"]
            await eventually(
                "delivered", lambda: thread.state_of(mine.msg_id) == "delivered", limit=30
            )
            # and back: Bob writes (as his own UI or CLI would), Alice's screen shows it
            await ask(bob, Send(contact="Alice", text="got it"))
            await eventually(
                "Bob's answer", lambda: any(m.text == "got it" for m in thread.rows.values())
            )

    with Daemons([alice, bob], loopback_config()):
        asyncio.run(main())


def test_strings_from_the_mesh_are_never_markup_or_escapes(tmp_path: Path) -> None:
    alice, bob = pair(tmp_path)
    hostile = "[bold red]BIG[/] \x1b[2J\x1b]0;pwned\x07 \u202eevil\nsecond line"

    async def main() -> None:
        app = SteppeApp(alice.path)
        async with app.run_test(size=SIZE) as pilot:
            await open_conversation(pilot, app, "Bob")
            await ask(bob, Send(contact="Alice", text=hostile))
            thread = app.query_one(Thread)
            await eventually("the message", lambda: bool(thread.rows))
            [row] = thread.rows.values()
            lines = on_screen(bubble(row), width=30)
            plain = "\n".join(lines)
            assert "[bold red]BIG[/]" in plain  # the characters, not a style
            assert "\\x1b[2J" in plain
            assert "\x1b" not in plain
            assert "\\x07" in plain
            assert "\\u202e" in plain
            assert "\u202e" not in plain
            # every line of the body, wrapped ones too, set in from our header's margin
            assert len(lines) > 3
            assert all(x.startswith("  ") for x in lines[1:])
            assert not any("red" in str(style) for style in styles_of(bubble(row)))
            assert app.title == "Steppe"  # no message text in the terminal title
            await pilot.pause()

    with Daemons([alice, bob], loopback_config()):
        asyncio.run(main())


def loopback_daemon_config(tmp_path: Path) -> Path:
    """A config file for daemons the UI starts: loopback only, no LAN discovery."""
    cfg = tmp_path / "daemon.toml"
    cfg.write_text('[lan]\nenabled = false\nlisten = "127.0.0.1"\nport = 0\n')
    return cfg


KDF = keystore_kdf.KdfParams.named("interactive")


@pytest.fixture
def stop_started() -> Iterator[list[SteppeApp]]:
    """Apps whose detached daemons are stopped at the end even if the test failed."""
    apps: list[SteppeApp] = []
    yield apps
    for app in apps:
        if app.started is not None:
            app.started.stop()


def test_without_a_daemon_the_ui_unlocks_the_profile_and_starts_one(
    tmp_path: Path, stop_started: list[SteppeApp]
) -> None:
    """A wrong passphrase is said in one line and asked again; the right one starts a
    detached daemon; quitting offers to stop it."""
    now = int(time.time())
    alice = create_profile(tmp_path / "alice", "Alice", b"right passphrase", KDF, now, os.urandom)
    cfg = loopback_daemon_config(tmp_path)

    async def main() -> None:
        app = SteppeApp(alice.path, ["--config", str(cfg)])
        stop_started.append(app)
        async with app.run_test(size=SIZE) as pilot:
            await eventually("the unlock screen", lambda: isinstance(app.screen, Unlock))
            await type_text(pilot, "wrong")
            await pilot.press("enter")
            await eventually(
                "asked again",
                lambda: isinstance(app.screen, Unlock) and bool(app.screen.error),
                limit=60,
            )
            assert "passphrase" in app.screen.error  # type: ignore[attr-defined]
            await type_text(pilot, "right passphrase")
            await pilot.press("enter")
            await eventually("the daemon up", lambda: app.started is not None, limit=60)
            status = await ask(alice, Status())
            assert status.name == "Alice"
            started = app.started
            assert started is not None
            await pilot.press("ctrl+q")
            await eventually("asked", lambda: isinstance(app.screen, YesNo))
            await pilot.press("y")
            await asyncio.to_thread(started.process.wait, 30)
            assert started.process.returncode is not None

    asyncio.run(main())


def test_the_duress_passphrase_at_the_ui_unlock_opens_the_decoy(
    tmp_path: Path, stop_started: list[SteppeApp]
) -> None:
    """Typed into the UI's unlock screen, the duress passphrase starts a daemon on the
    decoy profile; the real one is gone (issue 16, duress)."""
    now = int(time.time())
    alice = create_profile(tmp_path / "alice", "Alice", b"right passphrase", KDF, now, os.urandom)
    blob = (alice.path / KEYSTORE).read_bytes()
    decoy = create_profile(tmp_path / "decoy", "Ainur", b"x", KDF, now, os.urandom)._secrets()
    armed = keystore_kdf.set_duress(blob, b"right passphrase", b"duress words", decoy, os.urandom)
    (alice.path / KEYSTORE).write_bytes(armed)
    cfg = loopback_daemon_config(tmp_path)

    async def main() -> None:
        app = SteppeApp(alice.path, ["--config", str(cfg)])
        stop_started.append(app)
        async with app.run_test(size=SIZE) as pilot:
            await eventually("the unlock screen", lambda: isinstance(app.screen, Unlock))
            await type_text(pilot, "duress words")
            await pilot.press("enter")
            await eventually("the daemon up", lambda: app.started is not None, limit=60)
            assert (await ask(alice, Status())).name == "Ainur"
        with pytest.raises(ProfileError, match="wrong passphrase"):
            open_profile(alice.path, b"right passphrase")

    asyncio.run(main())


def test_with_no_profile_the_ui_creates_one_and_starts_its_daemon(
    tmp_path: Path, stop_started: list[SteppeApp]
) -> None:
    where = tmp_path / "new"
    cfg = loopback_daemon_config(tmp_path)

    async def main() -> None:
        app = SteppeApp(where, ["--config", str(cfg)])
        stop_started.append(app)
        async with app.run_test(size=SIZE) as pilot:
            await eventually("the wizard", lambda: isinstance(app.screen, Create))
            await type_text(pilot, "Aigerim")
            await pilot.press("tab")
            await type_text(pilot, "abc")
            hint = app.screen.query_one("#hint")
            assert "weak" in str(hint.render())
            await pilot.press(*["backspace"] * 3)
            await type_text(pilot, "correct horse battery staple")
            assert "weak" not in str(hint.render())
            await pilot.press("tab")
            await type_text(pilot, "correct horse battery staple")
            await pilot.press("tab", "enter", "down", "enter")  # the small-device KDF
            await pilot.press("shift+tab", "enter")
            await eventually("the daemon up", lambda: app.started is not None, limit=60)
            assert (await ask_dir(where, Status())).name == "Aigerim"
            started = app.started
            assert started is not None
            await pilot.press("ctrl+q")
            await eventually("asked", lambda: isinstance(app.screen, YesNo))
            await pilot.press("y")
            await asyncio.to_thread(started.process.wait, 30)
        items = strict_unpack((where / KEYSTORE).read_bytes(), max_size=1 << 20)
        kdf = items[2]  # opslimit, memlimit, salt: one for all key slots (keystore v2)
        assert (kdf[0], kdf[1]) == (KDF.opslimit, KDF.memlimit)  # the small-device KDF

    asyncio.run(main())


def test_the_daemon_going_away_shows_a_banner_and_the_ui_reconnects(tmp_path: Path) -> None:
    alice, bob = pair(tmp_path)

    async def main(daemons: Daemons) -> None:
        app = SteppeApp(alice.path)
        async with app.run_test(size=SIZE) as pilot:
            await open_conversation(pilot, app, "Bob")
            banner = app.query_one("#banner")
            assert not banner.display
            await asyncio.to_thread(daemons.stop, 0)
            await eventually("the banner", lambda: banner.display)
            assert "daemon away" in str(banner.render())
            await type_text(pilot, "while it was away")
            await pilot.press("ctrl+s")
            await pilot.pause()
            compose = app.query_one(Compose)
            assert compose.text == "while it was away"  # refused, and kept
            await asyncio.to_thread(daemons.restart, 0)
            await eventually("reconnected", lambda: not banner.display, limit=30)
            await pilot.press("ctrl+s")  # the same text, now taken
            thread = app.query_one(Thread)
            await eventually(
                "sent after all",
                lambda: any(m.text == "while it was away" for m in thread.rows.values()),
            )
            assert compose.text == ""

    with Daemons([alice, bob], loopback_config()) as daemons:
        asyncio.run(main(daemons))


def test_a_changed_key_freezes_the_conversation(tmp_path: Path) -> None:
    alice, bob = pair(tmp_path)
    impostor = make_profile(tmp_path / "other", "Bob", int(time.time()))

    async def main() -> None:
        app = SteppeApp(alice.path)
        async with app.run_test(size=SIZE) as pilot:
            await open_conversation(pilot, app, "Bob")
            compose, warning = app.query_one(Compose), app.query_one("#warning")

            def frozen() -> tuple[bool, bool]:
                return compose.disabled, warning.display

            assert frozen() == (False, False)
            card = impostor.card.encode()
            await ask(alice, ContactAdd(card=card, name="Bob", replace=True))
            convs = app.query_one(ConversationList)
            await eventually(
                "KEY CHANGED listed", lambda: convs.conversations["Bob"].trust == "KEY CHANGED"
            )
            await open_conversation(pilot, app, "Bob")
            assert frozen() == (True, True)
            assert "key CHANGED" in str(warning.render())

    with Daemons([alice, bob], loopback_config()):
        asyncio.run(main())


def test_contacts_add_by_card_verify_rename_and_remove(tmp_path: Path) -> None:
    alice, bob = pair(tmp_path)
    carol = make_profile(tmp_path, "Carol", int(time.time()))

    async def names() -> list[tuple[str, bool]]:
        return [(c.name, c.verified) for c in await ask(alice, Contacts())]

    async def main() -> None:
        app = SteppeApp(alice.path)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("f3")
            await eventually("the contacts screen", lambda: isinstance(app.screen, ContactsScreen))
            screen = app.screen
            await eventually(
                "my card", lambda: "STEPPE" in screen.query_one("#mine", TextArea).text
            )
            await pilot.press("a")
            await eventually("the card asked for", lambda: isinstance(app.focused, Input))
            assert app.focused is not None
            app.focused.post_message(events.Paste(carol.card.encode()))  # pasting their card
            await pilot.pause()
            first = app.screen
            await pilot.press("enter")
            await eventually("the name asked for", lambda: app.screen is not first)
            await eventually("its input", lambda: isinstance(app.focused, Input))
            await pilot.press("enter")  # no name of mine: the one on the card
            await eventually("Carol added", lambda: "Carol" in screen.rows)  # type: ignore[attr-defined]
            assert ("Carol", False) in await names()
            contacts = screen.query_one("#contacts", OptionList)
            contacts.highlighted = contacts.get_option_index("Carol")
            await pilot.press("v")
            await eventually("the safety number", lambda: isinstance(app.screen, Verify))
            shown = app.screen.safety  # type: ignore[attr-defined]
            assert shown.digits == safety_digits(
                carol.identity.sign_public, alice.identity.sign_public
            )
            await pilot.press("y")
            await eventually("verified", lambda: screen.rows["Carol"].verified)  # type: ignore[attr-defined]
            await pilot.press("r")
            await eventually("the new name asked for", lambda: isinstance(app.focused, Input))
            await pilot.press(*["backspace"] * 5)
            await type_text(pilot, "Kara")
            await pilot.press("enter")
            await eventually("renamed", lambda: "Kara" in screen.rows)  # type: ignore[attr-defined]
            contacts.highlighted = contacts.get_option_index("Kara")
            await pilot.press("delete")
            await eventually("the confirmation", lambda: isinstance(app.focused, Input))
            await type_text(pilot, "remove")
            await pilot.press("enter")
            await eventually("removed", lambda: "Kara" not in screen.rows)  # type: ignore[attr-defined]
            assert await names() == [("Bob", False)]

    with Daemons([alice, bob], loopback_config()):
        asyncio.run(main())


def test_panic_asks_for_the_typed_word_then_wipes_like_the_command(tmp_path: Path) -> None:
    now = int(time.time())
    kdf = keystore_kdf.KdfParams.named("interactive")
    alice = create_profile(tmp_path / "alice", "Alice", b"a passphrase", kdf, now, os.urandom)
    bob = make_profile(tmp_path, "Bob", now)
    befriend(alice, bob, now)
    keystore = alice.path / KEYSTORE
    assert keystore.exists()

    async def main() -> None:
        app = SteppeApp(alice.path)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("ctrl+x")
            await eventually("the typed confirmation", lambda: isinstance(app.focused, Input))
            await type_text(pilot, "yes")  # not the word: nothing happens
            await pilot.press("enter")
            await pilot.pause()
            assert app.wiped == ""
            assert keystore.exists()
            await pilot.press("ctrl+x")
            await eventually("the typed confirmation", lambda: isinstance(app.focused, Input))
            await type_text(pilot, "wipe")
            await pilot.press("enter")
            await eventually("wiped", lambda: app.wiped != "")
        assert "wiped" in app.wiped
        assert not keystore.exists()  # as `steppe panic` leaves it
        assert sorted(p.name for p in alice.path.iterdir() if p.is_file()) == []

    with Daemons([alice, bob], loopback_config()):
        asyncio.run(main())


def test_bulletins_show_the_signers_trust_and_a_post_from_the_ui(tmp_path: Path) -> None:
    alice, bob = pair(tmp_path)

    async def main() -> None:
        await ask(bob, BulletinPost(text="water at the [red]square[/]", topic="water", hours=5))
        app = SteppeApp(alice.path)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("f4")
            await eventually("the feed", lambda: isinstance(app.screen, BulletinsScreen))
            feed: BulletinsScreen = app.screen  # type: ignore[assignment]
            for _ in range(200):  # Bob's post crosses the LAN link
                if feed.rows:
                    break
                await asyncio.sleep(0.1)
                feed.reload()
            [theirs] = feed.rows
            assert theirs.signer == "Bob (unverified)"  # the trust label, not a claimed name
            lines = "\n".join(on_screen(bulletin(theirs), 60))
            assert "water at the [red]square[/]" in lines
            await pilot.press("p")
            await eventually("the post form", lambda: isinstance(app.focused, Input))
            await type_text(pilot, "roads")
            await pilot.press("tab", "tab", "tab")  # past the hours and the persona
            await type_text(pilot, "the north road is closed")
            await pilot.press("ctrl+s")
            await eventually("ours in the feed", lambda: any(b.signer == "you" for b in feed.rows))
            ours = [b for b in await ask(alice, BulletinList()) if b.signer == "you"]
            assert [(b.topic, b.text) for b in ours] == [("roads", "the north road is closed")]
            # A post as a persona: the persona's name in the form, "you (persona ...)" back.
            await ask(alice, PersonaNew(name="Witness"))
            await pilot.press("p")
            await eventually("the post form", lambda: isinstance(app.focused, Input))
            await type_text(pilot, "square")
            await pilot.press("tab", "tab")
            await type_text(pilot, "Witness")
            await pilot.press("tab")
            await type_text(pilot, "tanks on the square")
            await pilot.press("ctrl+s")
            await eventually("the persona's post", lambda: len(feed.rows) == 3)
            assert [b.signer for b in feed.rows if b.topic == "square"] == ["you (persona Witness)"]
            # Endorse Bob's post: highlight it, e, confirm with y.
            options = feed.query_one("#feed", OptionList)
            options.focus()
            await pilot.press("home")
            while feed.rows[options.highlighted or 0].topic != "water":
                await pilot.press("down")
            await pilot.press("e")
            await eventually("the confirmation", lambda: isinstance(app.screen, YesNo))
            await pilot.press("y")
            await eventually(
                "our endorsement", lambda: [b.endorsed_by for b in feed.rows if b.topic == "water"]
                == [("you",)]
            )  # fmt: skip

    with Daemons([alice, bob], loopback_config()):
        asyncio.run(main())


def test_the_network_screen_shows_links_and_exports_a_bundle(tmp_path: Path) -> None:
    alice, bob = pair(tmp_path)
    target = tmp_path / "courier.bundle"

    async def main() -> None:
        await ask(alice, Send(contact="Bob", text="for the courier"))
        app = SteppeApp(alice.path)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("f5")
            await eventually("the network", lambda: isinstance(app.screen, NetworkScreen))
            screen: NetworkScreen = app.screen  # type: ignore[assignment]
            summary = screen.query_one("#summary")
            tcp = ("lan", "incoming")  # whoever dialled: the link is LAN or incoming on our side
            await eventually(
                "a LAN link", lambda: any(p.open and p.kind in tcp for p in screen.peers), 30
            )
            assert "LAN" in str(summary.render())
            assert screen.info is not None
            assert screen.info.envelopes >= 1
            await pilot.press("e")
            await eventually("the file picker", lambda: isinstance(app.screen, PickFile))
            await pilot.press("tab")  # from the tree to the path below it
            await eventually("the path", lambda: isinstance(app.focused, Input))
            await pilot.press("end", "ctrl+u")  # clear what it offers
            await type_text(pilot, str(target))
            await pilot.press("enter")
            await eventually("the bundle written", target.exists)
            assert target.stat().st_size > 0

    with Daemons([alice, bob], loopback_config()):
        asyncio.run(main())


def test_an_unknown_sender_is_shown_by_fingerprint_and_can_be_added(tmp_path: Path) -> None:
    now = int(time.time())
    alice, carol = make_profile(tmp_path, "Alice", now), make_profile(tmp_path, "Carol", now)
    carol.add_contact(ContactCard.decode(alice.card.encode()), now)  # one way only

    async def main() -> None:
        await ask(carol, Send(contact="Alice", text="it is Carol, from the market"))
        app = SteppeApp(alice.path)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("f3")
            await eventually("the contacts screen", lambda: isinstance(app.screen, ContactsScreen))
            screen: ContactsScreen = app.screen  # type: ignore[assignment]
            for _ in range(300):  # the message crosses the LAN link
                if screen.strangers:
                    break
                await asyncio.sleep(0.1)
                screen.reload()
            [(fp, first)] = screen.strangers.items()
            assert fp == carol.identity.public().fingerprint.hex()
            contacts = screen.query_one("#contacts", OptionList)
            contacts.highlighted = contacts.option_count - 1
            shown = on_screen(stranger_row(first), 60)
            assert "unknown sender" in shown[0]
            assert "Carol" not in shown[0]  # no name before we give one
            await pilot.press("n")
            await eventually("the name asked for", lambda: isinstance(app.focused, Input))
            await type_text(pilot, "Carol from the market")
            await pilot.press("enter")
            await eventually("added", lambda: "Carol from the market" in screen.rows)
            assert [(c.name, c.verified) for c in await ask(alice, Contacts())] == [
                ("Carol from the market", False)
            ]

    with Daemons([alice, carol], loopback_config()):
        asyncio.run(main())


def test_the_command_palette_opens_each_screen(tmp_path: Path) -> None:
    alice, bob = pair(tmp_path)

    async def main() -> None:
        app = SteppeApp(alice.path)
        async with app.run_test(size=SIZE) as pilot:
            await eventually("connected", lambda: app.daemon.up)
            await pilot.press("ctrl+p")
            await pilot.pause()
            await type_text(pilot, "Network")
            await pilot.pause(0.3)
            await pilot.press("enter")
            await eventually("the network", lambda: isinstance(app.screen, NetworkScreen))

    with Daemons([alice, bob], loopback_config()):
        asyncio.run(main())


def shows(thread: Thread, count: int) -> bool:
    return thread.option_count == count


def test_moving_up_from_the_first_message_shown_pages_in_earlier_ones(tmp_path: Path) -> None:
    alice, bob = pair(tmp_path)
    history = History(alice.path / HISTORY, alice.data_key, os.urandom)
    with history.transaction():
        for i in range(450):
            history.add(bob.identity.sign_public, False, os.urandom(16), T0 + i, f"old {i}")
    history.close()

    async def main() -> None:
        app = SteppeApp(alice.path)
        async with app.run_test(size=SIZE) as pilot:
            await open_conversation(pilot, app, "Bob")
            thread = app.query_one(Thread)
            thread.focus()
            assert thread.option_count == SHOWN
            for count in (2 * SHOWN, 450):
                first = thread.get_option_at_index(0).id
                await pilot.press("home", "up")
                await eventually(f"{count} shown", functools.partial(shows, thread, count))
                current = thread.highlighted_option
                assert current is not None
                assert current.id == first  # where the reader was, not the top
            await pilot.press("home", "up")  # nothing earlier: nothing changes
            await pilot.pause(0.3)
            assert thread.option_count == 450
            assert [m.text for m in thread.rows.values()][:2] == ["old 0", "old 1"]

    with Daemons([alice, bob], loopback_config(lan=False)):
        asyncio.run(main())


def test_keys_typed_in_a_burst_are_all_sent(tmp_path: Path) -> None:
    """A fast typist, or a paste followed at once by Ctrl+S (seen in tmux): the last
    characters must be in the message, not raced by the send."""
    alice, bob = pair(tmp_path)
    text = "rahmet, see you there"

    async def main() -> None:
        app = SteppeApp(alice.path)
        async with app.run_test(size=SIZE) as pilot:
            await open_conversation(pilot, app, "Bob")
            for ch in text:  # all queued before any is handled, as a terminal delivers them
                app.post_message(events.Key(ch, ch))
            app.post_message(events.Key("ctrl+s", None))
            thread = app.query_one(Thread)
            await eventually("sent", lambda: len(thread.rows) == 1)
            assert [m.text for m in thread.rows.values()] == [text]

    with Daemons([alice, bob], loopback_config(lan=False)):
        asyncio.run(main())
