"""The UI's main screens at 80x24, compared with accepted snapshots (SVG files under
tests/__snapshots__/; `pytest tests/test_tui_snapshots.py --snapshot-update` accepts a
change after a person has looked at it). Profiles come from a seeded generator and a
fixed time, so names, fingerprints and safety numbers are the same every run; the
screens shown hold nothing that changes between runs (no clock, no paths)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from pathlib import Path

import pytest
from textual.pilot import Pilot

from crypto import keystore
from mesh.profile import Profile, create_profile, new_profile
from tests.daemon_helpers import T0, befriend, loopback_config
from tests.tui_helpers import Daemons
from tui.app import SteppeApp
from tui.screens.start import Create, Unlock
from tui.widgets.conversations import ConversationList

SIZE = (80, 24)
Compare = Callable[..., bool]


def seeded(root: Path, name: str, seed: int) -> Profile:
    return new_profile(root / name.lower(), name, T0, random.Random(seed).randbytes)


async def settle(pilot: Pilot[None], ok: Callable[[], bool]) -> None:
    for _ in range(400):
        if ok():
            break
        await asyncio.sleep(0.05)
    assert ok()
    await pilot.pause()


def test_the_conversation_list(tmp_path: Path, snap_compare: Compare) -> None:
    alice, bob, marat = (seeded(tmp_path, n, i) for i, n in enumerate(("Alice", "Bob", "Марат")))
    befriend(alice, bob, T0)
    befriend(alice, marat, T0)
    app = SteppeApp(alice.path)

    async def ready(pilot: Pilot[None]) -> None:
        convs = app.query_one(ConversationList)
        await settle(pilot, lambda: len(convs.conversations) == 2)

    with Daemons([alice, bob, marat], loopback_config(lan=False)):
        assert snap_compare(app, terminal_size=SIZE, run_before=ready)


def test_the_help_screen(tmp_path: Path, snap_compare: Compare) -> None:
    alice = seeded(tmp_path, "Alice", 1)
    app = SteppeApp(alice.path)

    async def ready(pilot: Pilot[None]) -> None:
        await settle(pilot, lambda: app.daemon.up)

    with Daemons([alice], loopback_config(lan=False)):
        assert snap_compare(app, press=["f1"], terminal_size=SIZE, run_before=ready)


def test_the_unlock_screen(tmp_path: Path, snap_compare: Compare) -> None:
    kdf = keystore.KdfParams.named("interactive")
    create_profile(tmp_path / "alice", "Alice", b"a passphrase", kdf, T0, random.randbytes)
    app = SteppeApp(tmp_path / "alice")

    async def ready(pilot: Pilot[None]) -> None:
        await settle(pilot, lambda: isinstance(app.screen, Unlock))

    assert snap_compare(app, terminal_size=SIZE, run_before=ready)


def test_the_new_profile_wizard(tmp_path: Path, snap_compare: Compare) -> None:
    app = SteppeApp(tmp_path / "new")

    async def ready(pilot: Pilot[None]) -> None:
        await settle(pilot, lambda: isinstance(app.screen, Create))

    assert snap_compare(app, terminal_size=SIZE, run_before=ready)


def test_no_color_turns_the_ui_monochrome(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """NO_COLOR (no-color.org) is honoured: Textual's monochrome filter is on for our app
    (so nothing the UI says depends on colour alone: states are words)."""
    from textual.filter import Monochrome

    monkeypatch.setenv("NO_COLOR", "1")
    app = SteppeApp(tmp_path / "none")
    assert app.no_color
    assert any(isinstance(f, Monochrome) for f in app._filters)
