"""Files in the terminal UI against real daemons on loopback: Ctrl+O sends a photo (the
daemon says what metadata it removed), a received file shows its chunks arriving and is
saved with Enter; a name from the mesh is shown inert and offered only as a plain name."""

from __future__ import annotations

import asyncio
from pathlib import Path

from textual.widgets import Input

from mesh.ipc.calls import Files, SendFile
from tests.daemon_helpers import loopback_config
from tests.test_daemon_files import _photo
from tests.test_tui import SIZE, on_screen, open_conversation, pair
from tests.tui_helpers import Daemons, ask, eventually
from tui.app import SteppeApp
from tui.file_actions import offered_name
from tui.screens.files import PickFile
from tui.widgets.thread import Thread, bubble


def test_a_photo_sent_from_the_ui_and_one_received_and_saved(tmp_path: Path) -> None:
    alice, bob = pair(tmp_path)
    photo = tmp_path / "square.jpg"
    original = _photo(photo)
    theirs = tmp_path / "bobs.bin"
    theirs.write_bytes(bytes(range(256)) * 200)  # 51,200 bytes: four chunks

    async def main() -> None:
        app = SteppeApp(alice.path)
        async with app.run_test(size=SIZE) as pilot:
            await open_conversation(pilot, app, "Bob")
            await pilot.press("ctrl+o")
            await eventually("the file dialog", lambda: isinstance(app.screen, PickFile))
            app.screen.query_one("#path", Input).value = str(photo)
            app.screen.query_one("#path", Input).focus()
            await pilot.press("enter")
            thread = app.query_one(Thread)
            await eventually("the photo in the thread", lambda: len(thread.rows) == 1)
            [mine] = thread.rows.values()
            assert (mine.file, mine.text, mine.outgoing) == (True, "square.jpg", True)
            notes = [n.message for n in app._notifications]
            assert any("removed: GPS position" in n for n in notes), notes
            got = await ask(bob, Files(contact="Alice"))
            for _ in range(400):
                if got and got[0].state == "received":
                    break
                await asyncio.sleep(0.05)
                got = await ask(bob, Files(contact="Alice"))
            assert [(f.name, f.state) for f in got] == [("square.jpg", "received")]
            assert got[0].size < len(original)  # written again without its EXIF
            await eventually(
                "delivered", lambda: thread.state_of(mine.msg_id) == "delivered", limit=30
            )
            # Bob sends a file back; Alice sees it arrive chunk by chunk, then saves it.
            sent = await ask(bob, SendFile(contact="Alice", path=str(theirs)))
            key = sent.msg_id.hex()
            await eventually(
                "Bob's file received",
                lambda: key in thread.rows and thread.rows[key].state == "received",
                limit=30,
            )
            assert thread.progress[key] == (4, 4)
            shown = "\n".join(on_screen(bubble(thread.rows[key], (4, 4)), 100))
            assert "file bobs.bin  [received: Enter to save it]" in shown
            thread.focus()
            thread.highlighted = thread.get_option_index(key)
            await pilot.press("enter")
            await eventually("the save dialog", lambda: isinstance(app.screen, PickFile))
            path = app.screen.query_one("#path", Input)
            assert path.value.endswith("/bobs.bin")
            path.value = str(tmp_path / "kept.bin")
            path.focus()
            await pilot.press("enter")
            await eventually("saved", lambda: (tmp_path / "kept.bin").exists())
            await eventually(
                "written whole",
                lambda: (tmp_path / "kept.bin").read_bytes() == theirs.read_bytes(),
            )

    with Daemons([alice, bob], loopback_config()):
        asyncio.run(main())


def test_a_name_from_the_mesh_is_offered_as_one_plain_part() -> None:
    assert offered_name("../../.bashrc") == "bashrc"
    escaped = offered_name("\x1b[31mred.jpg")
    assert "\x1b" not in escaped
    assert escaped.endswith("[31mred.jpg")
    assert offered_name("") == "file"
    assert "/" not in offered_name("a/b\\c")
