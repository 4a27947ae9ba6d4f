"""Notifications of new messages: the sender only by default, the text only when the user
turns it on (saved in the profile), never markup or escapes, never in the terminal title;
against real daemons on loopback."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from textual.widgets import OptionList

from mesh.ipc.calls import Send
from tests.daemon_helpers import befriend, loopback_config, make_profile
from tests.test_tui import SIZE, open_conversation
from tests.tui_helpers import Daemons, ask, eventually
from tui.app import SteppeApp
from tui.screens.settings import NotifySettings
from tui.settings import (
    SETTINGS,
    Notify,
    Settings,
    SettingsError,
    load_settings,
    notice,
    save_settings,
)
from tui.widgets.thread import Thread

HOSTILE = "[bold red]SECRET\x1b]0;pwned\x07 plan\nsecond line"


def test_what_each_level_says() -> None:
    assert notice(Notify.OFF, "Bob", HOSTILE) is None
    said = notice(Notify.SENDER, "Bob[b]\x1b[2J", HOSTILE)
    assert said == "new message from Bob[b]\\x1b[2J"
    text = notice(Notify.TEXT, "Bob", HOSTILE)
    assert text == "Bob: [bold red]SECRET\\x1b]0;pwned\\x07 plan..."
    long = notice(Notify.TEXT, "Bob", "x" * 500)
    assert long is not None
    assert len(long) < 80


def test_settings_are_saved_in_the_profile_and_a_bad_file_is_one_line(tmp_path: Path) -> None:
    assert load_settings(tmp_path) == Settings(Notify.SENDER)  # nothing saved: the default
    save_settings(tmp_path, Settings(Notify.TEXT))
    assert load_settings(tmp_path) == Settings(Notify.TEXT)
    for bad, says in (
        ('notifications = "loud"', "must be one of 'off', 'sender', 'text'"),
        ('notify = "off"', "unknown setting 'notify'"),
        ("notifications = ", "Invalid value"),
    ):
        (tmp_path / SETTINGS).write_text(bad)
        with pytest.raises(SettingsError, match=says) as err:
            load_settings(tmp_path)
        assert "\n" not in str(err.value)


def toasts(app: SteppeApp) -> list[str]:
    return [str(t.render()) for t in app.screen.query("Toast")]


def test_a_new_message_names_its_sender_and_shows_its_text_only_if_turned_on(
    tmp_path: Path,
) -> None:
    now = int(time.time())
    alice, bob, carol = (make_profile(tmp_path, n, now) for n in ("Alice", "Bob", "Carol"))
    befriend(alice, bob, now)
    befriend(alice, carol, now)

    async def main() -> None:
        app = SteppeApp(alice.path)
        async with app.run_test(size=SIZE, notifications=True) as pilot:
            await open_conversation(pilot, app, "Carol")  # Bob's is not on screen
            await ask(bob, Send(contact="Alice", text=HOSTILE))
            await eventually("a notification", lambda: bool(toasts(app)), limit=30)
            assert toasts(app) == ["new message from Bob"]
            assert "SECRET" not in app.title + app.sub_title
            app.clear_notifications()
            await ask(carol, Send(contact="Alice", text="in the open conversation"))
            await eventually(
                "Carol's message shown",
                lambda: any("open" in m.text for m in app.query_one(Thread).rows.values()),
                limit=30,
            )
            await pilot.pause(0.3)
            assert toasts(app) == []  # it is on screen: nothing to notify
            # The user turns the text on (command palette: Notifications).
            app.action_notifications()
            await eventually("the dialog", lambda: isinstance(app.screen, NotifySettings))
            await eventually(  # the current one, sender, once the dialog is mounted
                "the current choice highlighted",
                lambda: app.screen.query_one(OptionList).highlighted == 1,
            )
            await pilot.press("down", "enter")
            await eventually("saved", lambda: (alice.path / SETTINGS).exists())
            assert load_settings(alice.path).notify is Notify.TEXT
            app.clear_notifications()
            await ask(bob, Send(contact="Alice", text="meet at noon\nby the fountain"))
            await eventually(
                "the text notified", lambda: "Bob: meet at noon..." in toasts(app), limit=30
            )
            assert "SECRET" not in app.title + app.sub_title
        again = SteppeApp(alice.path)  # the choice is kept in the profile
        assert again.settings.notify is Notify.TEXT

    with Daemons([alice, bob, carol], loopback_config()):
        asyncio.run(main())
