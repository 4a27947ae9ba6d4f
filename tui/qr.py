"""QR codes drawn in the terminal with half-block characters: two module rows per line,
dark modules in black on a white field whatever the theme, so a phone reads them on a
light or a dark terminal (with ``NO_COLOR`` the terminal's own colours are used). On the
Linux console, whose fonts have no half blocks (:mod:`tui.console`), full blocks only:
each module two columns wide and one line high (twice the lines, but every cell drawn)."""

from __future__ import annotations

import segno
from rich.text import Text

BORDER = 2  # light modules around the code (the standard asks 4; screens do with less)
_CHARS = {(False, False): " ", (True, False): "▀", (False, True): "▄", (True, True): "█"}


def qr_text(data: str, full_blocks: bool = False) -> Text:
    """``data`` as a QR code (error correction L: a screen does not smudge)."""
    matrix = [[bool(x) for x in row] for row in segno.make(data, error="l").matrix]
    size = len(matrix) + 2 * BORDER
    light = [False] * size
    rows = [light] * BORDER + [light[:BORDER] + r + light[:BORDER] for r in matrix]
    rows += [light] * BORDER
    if full_blocks:
        lines = ["".join("██" if dark else "  " for dark in row) for row in rows]
        return Text("\n".join(lines), style="black on white")
    if len(rows) % 2:
        rows.append(light)
    lines = [
        "".join(_CHARS[(top, bottom)] for top, bottom in zip(upper, lower, strict=True))
        for upper, lower in zip(rows[::2], rows[1::2], strict=True)
    ]
    return Text("\n".join(lines), style="black on white")


def size_of(picture: Text) -> tuple[int, int]:
    """Columns and lines the picture needs (it must never wrap: a wrapped code is noise)."""
    lines = picture.plain.split("\n")
    return max(len(x) for x in lines), len(lines)


def modules(picture: Text) -> list[list[bool]]:
    """The dark modules a :func:`qr_text` picture shows, border included (for tests:
    the picture read back as a scanner would see it)."""
    if "▀" not in picture.plain and "▄" not in picture.plain:  # full blocks: 2 columns each
        return [[row[i] == "█" for i in range(0, len(row), 2)] for row in picture.plain.split("\n")]
    top = {" ": False, "▀": True, "▄": False, "█": True}
    bottom = {" ": False, "▀": False, "▄": True, "█": True}
    out: list[list[bool]] = []
    for row in picture.plain.split("\n"):
        out.append([top[ch] for ch in row])
        out.append([bottom[ch] for ch in row])
    return out
