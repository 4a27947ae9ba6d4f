"""The UI on the Linux console (a Raspberry Pi without a desktop): every glyph the screens
draw is in the console fonts' Unicode tables (tests/data/console_glyphs.txt, made from
Debian's console fonts), and QR codes drawn with full blocks hold the code's modules."""

from __future__ import annotations

import asyncio
import html
import random
import re
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import segno
from textual.pilot import Pilot

from crypto import keystore
from mesh.ipc.calls import Send
from mesh.profile import create_profile
from tests.daemon_helpers import T0, befriend, loopback_config, make_profile
from tests.test_tui import open_conversation, type_text
from tests.tui_helpers import Daemons, ask, eventually
from tui import console
from tui.app import SteppeApp
from tui.qr import BORDER, modules, qr_text, size_of
from tui.screens.bulletins import BulletinsScreen
from tui.screens.contacts import ContactsScreen, ShowQR
from tui.screens.help import HelpScreen
from tui.screens.network import NetworkScreen
from tui.screens.settings import NotifySettings
from tui.screens.start import Create, Unlock
from tui.widgets.thread import Thread

GLYPHS = Path(__file__).parent / "data" / "console_glyphs.txt"
CONSOLE = (80, 24)
PI_1080P = (240, 67)  # a 1920x1080 screen in the 8x16 console font
PI_1080P_8X8 = (240, 135)  # the same in an 8x8 font (setfont Lat15-VGA8)


def console_glyphs() -> set[str]:
    lines = GLYPHS.read_text().splitlines()
    return {chr(int(x[2:], 16)) for x in lines if x.startswith("U+")}


def drawn(app: SteppeApp) -> set[str]:
    """Every character on the screen (the SVG screenshot's text)."""
    svg = app.export_screenshot()
    texts = re.findall(r"<text[^>]*>(.*?)</text>", svg, re.S)
    return set(html.unescape(re.sub(r"<[^>]+>", "", "".join(texts)))) - {"\xa0", "\n"}


def texts(app: SteppeApp) -> list[str]:
    return [m.text for m in app.query_one(Thread).rows.values()]


def test_console_mode_follows_term_unless_told() -> None:
    assert console.wanted({"TERM": "linux"})
    assert not console.wanted({"TERM": "xterm-256color"})
    assert console.wanted({"TERM": "xterm-256color", "STEPPE_CONSOLE": "1"})
    assert not console.wanted({"TERM": "linux", "STEPPE_CONSOLE": "0"})


def test_a_full_block_code_holds_the_modules_two_columns_each() -> None:
    data = "STEPPE1:" + "A" * 300
    matrix = [[bool(x) for x in row] for row in segno.make(data, error="l").matrix]
    picture = qr_text(data, full_blocks=True)
    assert set(picture.plain) <= {"█", " ", "\n"}
    n = len(matrix)
    read = modules(picture)
    assert [row[BORDER : BORDER + n] for row in read[BORDER : BORDER + n]] == matrix
    assert size_of(picture) == (2 * (n + 2 * BORDER), n + 2 * BORDER)
    assert size_of(picture)[0] <= PI_1080P_8X8[0]
    assert size_of(picture)[1] <= PI_1080P_8X8[1]


def test_the_fonts_lack_what_textual_draws_by_default() -> None:
    """Why console mode exists: the half blocks are not in the console fonts."""
    assert not {"▀", "▄", "▁", "▔", "▊", "▎", "⭘"} & console_glyphs()
    assert {"█", "─", "│", "━", "┃", "╭", "╯"} <= console_glyphs()


Step = Callable[[Pilot[None], SteppeApp], Awaitable[None]]


def test_every_screen_draws_only_glyphs_the_console_fonts_have(tmp_path: Path) -> None:
    now = int(time.time())
    alice, bob = make_profile(tmp_path, "Alice", now), make_profile(tmp_path, "Bob", now)
    befriend(alice, bob, now)
    fonts = console_glyphs()
    seen: dict[str, set[str]] = {}

    async def look(pilot: Pilot[None], app: SteppeApp, name: str, ok: Callable[[], bool]) -> None:
        await eventually(name, ok)
        await pilot.pause(0.2)
        seen[name] = drawn(app) - fonts

    async def main() -> None:
        app = SteppeApp(alice.path, plain=True)
        async with app.run_test(size=CONSOLE, notifications=True) as pilot:
            assert app.has_class(console.CLASS)
            await open_conversation(pilot, app, "Bob")
            await type_text(pilot, "hello from the console")
            await pilot.press("ctrl+s")
            await ask(bob, Send(contact="Alice", text="and back"))
            await look(pilot, app, "conversation", lambda: "and back" in texts(app))
            await pilot.press("f1")
            await look(pilot, app, "help", lambda: isinstance(app.screen, HelpScreen))
            await pilot.press("escape", "f3")
            await look(pilot, app, "contacts", lambda: isinstance(app.screen, ContactsScreen))
            await pilot.press("a")
            await look(pilot, app, "ask", lambda: not isinstance(app.screen, ContactsScreen))
            await pilot.press("escape", "escape", "f4")
            await look(pilot, app, "bulletins", lambda: isinstance(app.screen, BulletinsScreen))
            await pilot.press("p")
            await look(pilot, app, "post", lambda: not isinstance(app.screen, BulletinsScreen))
            await pilot.press("escape", "escape", "f5")
            await look(pilot, app, "network", lambda: isinstance(app.screen, NetworkScreen))
            await pilot.press("escape")
            app.action_notifications()
            await look(pilot, app, "settings", lambda: isinstance(app.screen, NotifySettings))
        assert "sudo setfont Lat15-VGA8" in await my_qr(PI_1080P, "QR hint")
        assert "█" in await my_qr(PI_1080P_8X8, "my QR")

    async def my_qr(size: tuple[int, int], name: str) -> str:
        """The contacts screen's 'q' on a console of ``size``: what it shows."""
        big = SteppeApp(alice.path, plain=True)
        async with big.run_test(size=size) as pilot:
            await pilot.press("f3")
            await eventually("contacts", lambda: isinstance(big.screen, ContactsScreen))
            await pilot.press("q")
            await look(pilot, big, name, lambda: isinstance(big.screen, ShowQR))
            return str(big.screen.query_one("#picture").render())

    with Daemons([alice, bob], loopback_config()):
        asyncio.run(main())
    assert {k: v for k, v in seen.items() if v} == {}
    assert len(seen) == 10


def test_the_start_screens_draw_only_console_glyphs(tmp_path: Path) -> None:
    kdf = keystore.KdfParams.named("interactive")
    create_profile(tmp_path / "alice", "Alice", b"a passphrase", kdf, T0, random.randbytes)
    fonts = console_glyphs()

    async def main(profile: Path, screen: type) -> set[str]:
        app = SteppeApp(profile, plain=True)
        async with app.run_test(size=CONSOLE) as pilot:
            await eventually("the screen", lambda: isinstance(app.screen, screen))
            await type_text(pilot, "secret")
            await pilot.pause(0.2)
            return drawn(app) - fonts

    assert asyncio.run(main(tmp_path / "alice", Unlock)) == set()
    assert asyncio.run(main(tmp_path / "new", Create)) == set()
