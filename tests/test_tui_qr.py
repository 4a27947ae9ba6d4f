"""QR codes in the terminal (tui/qr.py): the half-block picture holds exactly the code's
modules, and a terminal too small for it gets a sentence instead of a cut code."""

from __future__ import annotations

import asyncio

import segno
from textual.app import App

from tui.qr import BORDER, modules, qr_text, size_of
from tui.screens.contacts import ShowQR


def test_the_picture_holds_the_codes_modules_with_a_light_border() -> None:
    data = "STEPPE1:" + "A" * 300  # about a card's length
    matrix = [[bool(x) for x in row] for row in segno.make(data, error="l").matrix]
    picture = qr_text(data)
    read = modules(picture)
    n = len(matrix)
    inner = [row[BORDER : BORDER + n] for row in read[BORDER : BORDER + n]]
    assert inner == matrix
    assert not any(read[i][j] for i in range(BORDER) for j in range(n + 2 * BORDER))
    assert size_of(picture) == (n + 2 * BORDER, (n + 2 * BORDER + 1) // 2)
    assert str(picture.style) == "black on white"  # readable on dark and light themes


def test_a_terminal_too_small_for_the_code_is_told_the_size_it_needs() -> None:
    data = "STEPPE1:" + "A" * 300

    async def shown(size: tuple[int, int]) -> str:
        app: App[None] = App()
        async with app.run_test(size=size) as pilot:
            await app.push_screen(ShowQR(data, "This code"))
            await pilot.pause()
            return str(app.screen.query_one("#picture").render())

    width, height = size_of(qr_text(data))
    small = asyncio.run(shown((80, 24)))
    assert f"at least {width}x{height}" in small
    big = asyncio.run(shown((width + 4, height + 4)))
    assert "█" in big
    assert "at least" not in big
