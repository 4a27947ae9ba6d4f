"""``steppe send CONTACT --file PATH``, ``steppe file list`` and ``steppe file save`` on
real processes: a photo crosses between two daemons on loopback without its GPS position,
its progress and what was stripped are shown, and it is saved where the reader asks."""

from __future__ import annotations

import re
from pathlib import Path

from tests.test_cli_live_contacts import make, output, steppe
from tests.test_daemon_files import _photo
from tests.test_daemon_process import free_port
from tests.test_daemon_stop import lan_off, run, wait_for


def test_a_photo_sent_from_the_command_line(tmp_path: Path) -> None:
    me_card, carol_card = make(tmp_path, "me", "Me"), make(tmp_path, "carol", "Carol")
    output(tmp_path, "me", "contact", "add", carol_card)
    output(tmp_path, "carol", "contact", "add", me_card)
    photo = tmp_path / "square.jpg"
    _photo(photo)
    port, fast = free_port(), "[routing]\nreceipt_delay = [1, 2]\n"  # receipts in seconds
    procs = [run(tmp_path, "me", lan_off(port) + fast)]
    procs.append(run(tmp_path, "carol", lan_off(0, f'"127.0.0.1:{port}"') + fast))
    try:
        code, said = steppe(tmp_path, "carol", "send", "Me", "words", "--file", str(photo))
        assert code == 2
        assert "send either a message or --file, not both" in said
        wait_for(
            lambda: steppe(tmp_path, "carol", "send", "Me", "--file", str(photo))[0] == 0,
            "Carol's daemon to be able to seal to Me",
        )
        sent = output(tmp_path, "carol", "file", "list")
        assert re.search(r"to Me: square\.jpg \([\d.]+ KiB, image/jpeg\) \[queued\]", sent)
        wait_for(
            lambda: (
                "[received, every chunk" in output(tmp_path, "me", "file", "list")
                or "[received]" in output(tmp_path, "me", "file", "list")
            ),
            "the whole photo",
        )
        listed = output(tmp_path, "me", "file", "list")
        file_id = re.search(r"  ([0-9a-f]{12})  from Carol: square\.jpg", listed)
        assert file_id, listed
        assert "from Carol [received]: file square.jpg" in output(tmp_path, "me", "inbox")
        target = tmp_path / "saved.jpg"
        assert "saved" in output(tmp_path, "me", "file", "save", file_id[1], str(target))
        assert b"SN-4471" not in target.read_bytes()
        code, said = steppe(tmp_path, "me", "file", "save", file_id[1], str(target))
        assert code == 2
        assert "File exists" in said
        code, said = steppe(tmp_path, "me", "file", "save", "zz", str(target))
        assert code == 2
        wait_for(
            lambda: "[delivered, every chunk]" in output(tmp_path, "carol", "file", "list"),
            "Carol's receipt for the whole file",
        )
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=20)
