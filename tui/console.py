"""The Linux console (a Raspberry Pi without a desktop): only glyphs its fonts have.

Debian's console fonts (console-setup's Lat15, CyrAsia, Uni2 ... in the Fixed, Terminus
and VGA faces) hold the box-drawing lines and the full block ``█`` but none of the half
and eighth blocks (``▀ ▄ ▁ ▔ ▊ ▎``) or ``⭘``. Textual draws its tall and thick borders,
its scrollbars and the header's icon with those, and the QR codes here use half blocks: on
the console each would be a replacement glyph, and a QR code unreadable. So when ``TERM``
is ``linux`` (or ``STEPPE_CONSOLE=1``; ``STEPPE_CONSOLE=0`` turns it off) the app takes
the ``-console`` class: the stylesheet's ``.-console`` rules draw borders with box
lines, scrollbars are plain cells, and QR codes use full blocks, two columns and one line
per module (:func:`tui.qr.qr_text`). ``tests/test_tui_console.py`` checks every glyph the
screens draw against the fonts' Unicode tables.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import ClassVar

from textual.dom import DOMNode
from textual.scrollbar import ScrollBar, ScrollBarRender
from textual.widgets import Header

CLASS = "-console"


def wanted(env: Mapping[str, str] = os.environ) -> bool:
    """Should the UI keep to the console fonts' glyphs?"""
    forced = env.get("STEPPE_CONSOLE", "")
    if forced in ("0", "1"):
        return forced == "1"
    return env.get("TERM", "") == "linux"


def active(node: DOMNode) -> bool:
    """Is the app ``node`` belongs to in console mode?"""
    return node.app.has_class(CLASS)


def header(node: DOMNode) -> Header:
    """The header every screen shows (Textual's icon is not in the console fonts)."""
    return Header(show_clock=False, icon="*" if active(node) else None)


class PlainScrollBar(ScrollBarRender):
    """A scrollbar of whole cells (its thumb is a colour): no eighth blocks."""

    VERTICAL_BARS: ClassVar[list[str]] = [" "] * 8
    HORIZONTAL_BARS: ClassVar[list[str]] = [" "] * 8


def plain_scrollbars(on: bool) -> None:
    """Textual's scrollbars are drawn by one class-wide renderer: plain while a console
    app runs, Textual's own again after (other apps in the process keep theirs)."""
    ScrollBar.renderer = PlainScrollBar if on else ScrollBarRender
