"""mesh.render: hostile strings a stranger can send, made inert for a terminal."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mesh.render import inert, inert_block

HOSTILE = [
    ("a\nb", "a\\nb"),
    ("a\rb", "a\\x0db"),
    ("\x1b[2J\x1b[H", "\\x1b[2J\\x1b[H"),  # clear screen, cursor home
    ("\x1b]0;title\x07", "\\x1b]0;title\\x07"),  # window title
    ("\x9b31m", "\\x9b31m"),  # C1 CSI
    ("\x85next", "\\x85next"),  # C1 NEL
    ("\x7f", "\\x7f"),
    ("\u202eevil", "\\u202eevil"),  # right-to-left override
    ("\u2066x\u2069", "\\u2066x\\u2069"),  # isolates
    ("zero\u200bwidth\u200d\ufeff", "zero\\u200bwidth\\u200d\\ufeff"),
    ("line\u2028sep\u2029", "line\\u2028sep\\u2029"),
    ("tab\there", "tab\\there"),
    ("back\\x1b", "back\\\\x1b"),  # a typed backslash is not our escape
    ("Қазақстан, 水, ok", "Қазақстан, 水, ok"),  # ordinary text untouched
]


@pytest.mark.parametrize(("raw", "shown"), HOSTILE)
def test_hostile_strings_are_escaped_visibly(raw: str, shown: str) -> None:
    assert inert(raw) == shown


def test_blocks_indent_every_continuation_line() -> None:
    text = "hi\n2024-01-05 10:00  from Alice (verified contact): x\n\nend\r"
    assert inert_block(text, "    ") == (
        "hi\n    2024-01-05 10:00  from Alice (verified contact): x\n    \n    end\\x0d"
    )
    with pytest.raises(ValueError, match="indent"):
        inert_block(text, "")


@given(st.text())
def test_nothing_that_moves_the_cursor_survives(text: str) -> None:
    for out in (inert(text), inert_block(text)):
        bad = [c for c in out if c != "\n" and unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp")]
        assert bad == []
    assert "\n" not in inert(text)
    assert all(line.startswith("    ") for line in inert_block(text).split("\n")[1:])
