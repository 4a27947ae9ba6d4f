"""The encrypted history: rows bound to their place, rollback of the node state detected,
files of the first format still open (and are upgraded), transactions all or nothing."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from crypto import keystore
from crypto import primitives as p
from crypto.wire import pack
from mesh.daemon.daemon import Daemon, DaemonError
from mesh.daemon.history import GENERATIONS, HISTORY, History, HistoryError, history_key
from mesh.profile import create_profile
from tests.daemon_helpers import befriend, loopback_config, make_profile

KEY = os.urandom(32)
ALICE = b"A" * 32


def _history(tmp_path: Path) -> History:
    return History(tmp_path / HISTORY, KEY, os.urandom)


def _filled(tmp_path: Path) -> None:
    h = _history(tmp_path)
    with h.transaction():
        h.add(ALICE, True, b"1" * 16, 100, "first")
        h.add(ALICE, False, b"2" * 16, 200, "second")
        h.save_state("node", b"state one")
    h.close()


def _sql(tmp_path: Path, *statements: str) -> None:
    con = sqlite3.connect(tmp_path / HISTORY)
    for st in statements:
        con.execute(st)
    con.commit()
    con.close()


def test_swapped_rows_are_refused(tmp_path: Path) -> None:
    _filled(tmp_path)
    _sql(
        tmp_path,
        "UPDATE messages SET id = 3 WHERE id = 1",
        "UPDATE messages SET id = 1 WHERE id = 2",
        "UPDATE messages SET id = 2 WHERE id = 3",
    )
    h = _history(tmp_path)
    with pytest.raises(HistoryError, match=r"^history message 1 does not open where it is"):
        h.load_state("node")
    h.close()


def test_a_duplicated_row_is_refused(tmp_path: Path) -> None:
    _filled(tmp_path)
    _sql(tmp_path, "INSERT INTO messages (id, blob) SELECT 7, blob FROM messages WHERE id = 2")
    h = _history(tmp_path)
    with pytest.raises(HistoryError, match=r"history message 7 does not open"):
        h.messages()
    h.close()


def test_a_state_row_moved_to_another_key_is_refused(tmp_path: Path) -> None:
    _filled(tmp_path)
    _sql(tmp_path, "INSERT INTO state (key, blob) SELECT 'other', blob FROM state")
    h = _history(tmp_path)
    with pytest.raises(HistoryError, match=r"state 'other' does not open"):
        h.load_state("node")
    h.close()


def test_a_rolled_back_node_state_is_refused(tmp_path: Path) -> None:
    _filled(tmp_path)
    old = tmp_path / "old.db"
    shutil.copy(tmp_path / HISTORY, old)
    h = _history(tmp_path)
    assert h.load_state("node") == b"state one"
    h.save_state("node", b"state two")
    h.close()
    shutil.copy(old, tmp_path / HISTORY)
    h = _history(tmp_path)
    with pytest.raises(HistoryError, match=r"rolled back to an older copy \(save 1, .* was 2\)"):
        h.load_state("node")
    h.close()
    # Without the older copy (a fresh file) nothing can be replayed: that opens.
    (tmp_path / HISTORY).unlink()
    h = _history(tmp_path)
    assert h.load_state("node") is None
    h.save_state("node", b"state three")
    h.close()
    assert _history(tmp_path).load_state("node") == b"state three"


def test_a_failed_transaction_leaves_no_generation_behind(tmp_path: Path) -> None:
    _filled(tmp_path)
    h = _history(tmp_path)

    def crash() -> None:
        with h.transaction():
            h.save_state("node", b"never")
            raise RuntimeError("crash")

    with pytest.raises(RuntimeError, match="crash"):
        crash()
    h.close()
    h = _history(tmp_path)
    assert h.load_state("node") == b"state one"  # no false alarm: the file did not lead
    h.close()


def _v1_file(tmp_path: Path) -> None:
    """A history.db as the first format wrote it (ad = the table name only)."""
    key = history_key(KEY)

    def seal(obj: object, ad: bytes) -> bytes:
        nonce = os.urandom(p.XNONCE_LEN)
        return nonce + p.xchacha_encrypt(key, nonce, pack(obj), ad)

    con = sqlite3.connect(tmp_path / HISTORY)
    con.execute("CREATE TABLE messages (id INTEGER PRIMARY KEY, blob BLOB)")
    con.execute("CREATE TABLE state (key TEXT PRIMARY KEY, blob BLOB)")
    rec = [ALICE, False, b"1" * 16, 100, "from the old days", "received"]
    con.execute(
        "INSERT INTO messages (blob) VALUES (?)", (seal(rec, b"steppe/history/messages/v1"),)
    )
    con.execute(
        "INSERT INTO state VALUES (?, ?)",
        ("node", seal(["node", b"old state"], b"steppe/history/state/v1")),
    )
    con.commit()
    con.close()


def test_a_first_format_file_opens_and_is_upgraded(tmp_path: Path) -> None:
    _v1_file(tmp_path)
    h = _history(tmp_path)
    assert h.load_state("node") == b"old state"
    assert [m.text for m in h.messages()] == ["from the old days"]
    h.save_state("node", b"new state")
    h.close()
    con = sqlite3.connect(tmp_path / HISTORY)
    assert con.execute("PRAGMA user_version").fetchone()[0] == 2
    con.close()
    assert (tmp_path / GENERATIONS).exists()
    h = _history(tmp_path)
    assert h.load_state("node") == b"new state"
    assert h.messages()[0].text == "from the old days"
    h.close()


def test_the_daemon_refuses_a_rollback_with_one_line(tmp_path: Path) -> None:
    now = int(time.time())
    p_, bob = make_profile(tmp_path, "Solo", now), make_profile(tmp_path, "Bob", now)
    befriend(p_, bob, now)
    Daemon(p_, loopback_config(lan=False), p_.path, handle_signals=False).close()
    shutil.copy(p_.path / HISTORY, tmp_path / "old.db")
    d = Daemon(p_, loopback_config(lan=False), p_.path, handle_signals=False)
    d.send_text("Bob", "the ratchet moves: its session row is saved")
    d.close()
    shutil.copy(tmp_path / "old.db", p_.path / HISTORY)
    with pytest.raises(DaemonError, match=r"damaged: the node state was rolled back"):
        Daemon(p_, loopback_config(lan=False), p_.path, handle_signals=False)


def test_steppe_daemon_on_swapped_rows_exits_2_with_one_line(tmp_path: Path) -> None:
    pw = tmp_path / "pw"
    pw.write_text("correct horse battery staple\n")
    kdf = keystore.KdfParams.named("interactive")
    prof = create_profile(
        tmp_path / "me", "Me", b"correct horse battery staple", kdf, 1, os.urandom
    )
    h = History(prof.path / HISTORY, prof.data_key, os.urandom)
    h.add(ALICE, False, b"1" * 16, 100, "one")
    h.add(ALICE, False, b"2" * 16, 200, "two")
    h.close()
    _sql(prof.path, "UPDATE messages SET id = 9 WHERE id = 1")
    cfg = tmp_path / "c.toml"
    cfg.write_text('[lan]\nenabled = false\nlisten = "127.0.0.1"\nport = 0\n')
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "mesh.cli",
            "--profile",
            str(prof.path),
            *("--passphrase-file", str(pw)),
            "daemon",
            "--config",
            str(cfg),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        f"steppe: the saved node state in {prof.path} is damaged: history message 9 does not "
        "open where it is: moved, copied, tampered with or written under another key"
    ]


class _Counting(History):
    """Counts the rows it decrypts (the cost of marking), nothing else changed."""

    opened = 0

    def _open(self, blob: bytes, ad: bytes, where: str) -> object:
        self.opened += 1
        return super()._open(blob, ad, where)


def test_marking_a_message_acked_opens_one_row_not_the_history(tmp_path: Path) -> None:
    """Each acknowledgement decrypted every row, so acks for n messages cost n^2
    decryptions; now one pass builds an index and each mark opens its own row."""
    h = _Counting(tmp_path / HISTORY, KEY, os.urandom)
    n = 300
    with h.transaction():
        for k in range(n):
            h.add(ALICE, True, k.to_bytes(16, "big"), k, f"m{k}")
    h.opened = 0
    for k in range(n):
        assert h.mark(k.to_bytes(16, "big"), "acked")
    assert h.opened <= 3 * n, h.opened  # was n * n / 2 on average
    assert not h.mark(b"\xff" * 16, "acked")

    # A rolled-back add leaves no wrong mark behind: its row id goes to the next message.
    def doomed() -> None:
        with h.transaction():
            h.add(ALICE, True, b"gone" * 4, 1, "rolled back")
            raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError):
        doomed()
    h.add(ALICE, True, b"kept" * 4, 2, "kept")
    assert not h.mark(b"gone" * 4, "acked")
    assert h.mark(b"kept" * 4, "acked")
    assert [m.state for m in h.messages(limit=0)] == ["acked"] * (n + 1)
    h.close()


def _rolled_back_add(h: History, who: bytes, created: int) -> None:
    try:
        with h.transaction():
            h.add(who, True, os.urandom(16), created, "rolled back")
            raise RuntimeError("undo")
    except RuntimeError:
        pass


def test_the_last_messages_and_conversations_match_a_full_scan(tmp_path: Path) -> None:
    """messages() opens rows newest first and stops; conversations() is kept in memory
    across adds, marks and a rolled-back transaction: both must say what a scan of every
    row says."""
    import random

    rng = random.Random(7)
    people = [bytes([65 + i]) * 32 for i in range(4)]
    h = _history(tmp_path)
    ids: list[bytes] = []

    def scan(contact: bytes | None, limit: int) -> list[bytes]:
        rows = [m for m in h._rows() if contact is None or m.contact == contact]
        return [m.msg_id for m in (rows[-limit:] if limit else rows)]

    def latest_by_scan() -> dict[bytes, tuple[bytes, str]]:
        return {m.contact: (m.msg_id, m.state) for m in h._rows()}

    assert h.conversations() == {}  # the cache starts empty and is kept from here on
    for step in range(300):
        who = rng.choice(people[:3] if step < 250 else people)  # the fourth only late
        msg = os.urandom(16)
        with h.transaction():
            h.add(who, rng.random() < 0.5, msg, step, f"m{step}")
        ids.append(msg)
        if rng.random() < 0.2:
            h.mark(rng.choice(ids), "acked")
        if step % 50 == 0:
            _rolled_back_add(h, who, step)
        seen = {k: (m.msg_id, m.state) for k, m in h.conversations().items()}
        assert seen == latest_by_scan()
    for contact in [None, *people]:
        for limit in (0, 1, 7, 50, 1000):
            got = [m.msg_id for m in h.messages(contact, limit)]
            assert got == scan(contact, limit)
    h.close()
