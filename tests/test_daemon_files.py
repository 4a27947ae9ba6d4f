"""Files between two daemons on loopback, and how the daemon keeps them: sealed rows in
the history, resumed across a restart, checked against the manifest's digest, saved only
where asked."""

from __future__ import annotations

import io
import os
import random
import sqlite3
import time
from dataclasses import replace
from pathlib import Path

import pytest
import trio
from PIL import ExifTags, Image

from crypto.attachment import CHUNK_DATA, file_digest
from mesh import ipc
from mesh.core.events import ChunkReceived, FileDropped, FileOffered, FileReceived
from mesh.daemon.config import Config, ConfigError, parse
from mesh.daemon.daemon import node_config
from mesh.daemon.files import FileError, FileRecord, Files
from mesh.daemon.history import History, HistoryError
from tests.daemon_helpers import befriend, loopback_config, make_profile
from tests.test_daemon import knows_prekey, start, until

SENDER = b"S" * 32


def _photo(path: Path) -> bytes:
    """A noisy JPEG (several chunks) with a GPS position and a camera serial number."""
    rnd = random.Random(7)
    im = Image.frombytes("RGB", (220, 220), bytes(rnd.getrandbits(8) for _ in range(220 * 660)))
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "SerialCam"
    exif.get_ifd(ExifTags.IFD.GPSInfo)[ExifTags.GPS.GPSLatitude] = (43.0, 14.0, 9.0)
    exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.BodySerialNumber] = "SN-4471"
    out = io.BytesIO()
    im.save(out, "JPEG", quality=95, exif=exif.tobytes())
    path.write_bytes(out.getvalue())
    return out.getvalue()


def test_a_photo_crosses_to_a_contact_without_its_metadata(tmp_path: Path) -> None:
    now = int(time.time())
    alice, bob = make_profile(tmp_path, "Alice", now), make_profile(tmp_path, "Bob", now)
    befriend(alice, bob, now)
    original = _photo(tmp_path / "square.jpg")
    assert len(original) > 2 * CHUNK_DATA
    assert b"SN-4471" in original

    async def main() -> None:
        async with trio.open_nursery() as n:
            b = await start(n, bob, loopback_config(lan=False))
            cfg = loopback_config(lan=False, peers=(f"127.0.0.1:{b.daemon.tcp_port}",))
            a = await start(n, alice, cfg)
            await knows_prekey(a, bob)
            client = await ipc.Client.connect(ipc.socket_path(alice.path))
            sent = ipc.calls.SendFile("Bob", str(tmp_path / "square.jpg")).decode(
                await client.call("send_file", contact="Bob", path=str(tmp_path / "square.jpg"))
            )
            assert {"GPS position", "camera serial number"} <= set(sent.removed)
            with pytest.raises(ipc.IpcError, match="not an absolute path"):
                await client.call("send_file", contact="Bob", path="square.jpg")
            await until(
                "Bob to have the whole file",
                lambda: [r.state for r in b.daemon.history.messages()] == ["received"],
            )
            bclient = await ipc.Client.connect(ipc.socket_path(bob.path))
            rows = ipc.calls.Files().decode(await bclient.call("files"))
            assert [(r.name, r.state, r.outgoing) for r in rows] == [
                ("square.jpg", "received", False)
            ]
            assert rows[0].received == rows[0].count >= 3
            assert rows[0].size == sent.size
            target = tmp_path / "saved.jpg"
            fid = rows[0].msg_id.hex()[:8]
            saved = await bclient.call("file_save", file=fid, path=str(target))
            assert saved["size"] == sent.size
            data = target.read_bytes()
            assert b"SN-4471" not in data
            assert b"SerialCam" not in data
            assert Image.open(io.BytesIO(data)).getexif().get_ifd(ExifTags.IFD.GPSInfo) == {}
            with pytest.raises(ipc.IpcError, match="File exists"):
                await bclient.call("file_save", file=fid, path=str(target))
            await until(
                "Alice to learn the file arrived",
                lambda: a.daemon.history.messages()[0].state == "acked",
            )
            mine = ipc.calls.Files().decode(await client.call("files"))
            assert [(r.state, r.outgoing, r.note) for r in mine] == [("acked", True, sent.note)]
            await client.aclose()
            await bclient.aclose()
            n.cancel_scope.cancel()

    trio.run(main)


# ---- the rows, without the network -------------------------------------------------------


def _history(path: Path) -> History:
    return History(path / "history.db", b"k" * 32, os.urandom)


def _offer(data: bytes, msg_id: bytes = b"m" * 16, file_id: bytes = b"f" * 16) -> FileOffered:
    count = -(-len(data) // CHUNK_DATA)
    return FileOffered(
        SENDER, 100, msg_id, file_id, "x.bin", "a/b", len(data), count, file_digest(data)
    )


def _chunks(data: bytes, file_id: bytes = b"f" * 16) -> list[ChunkReceived]:
    pieces = [data[i : i + CHUNK_DATA] for i in range(0, len(data), CHUNK_DATA)]
    return [ChunkReceived(file_id, i, p, i + 1, len(pieces)) for i, p in enumerate(pieces)]


def test_a_file_resumes_after_a_restart_and_saves_whole(tmp_path: Path) -> None:
    data = random.Random(3).randbytes(3 * CHUNK_DATA + 5)
    chunks = _chunks(data)
    h = _history(tmp_path)
    files = Files(h)
    with h.transaction():
        files.commit([_offer(data), chunks[0], replace(chunks[2], received=2)])
    h.close()
    h = _history(tmp_path)  # the daemon restarted
    files = Files(h)
    rec = files.find("6d6d6d")
    assert (rec.received, files.state(rec.msg_id)) == (2, "receiving")
    with pytest.raises(FileError, match="cannot be saved: it is receiving"):
        files.save(rec, tmp_path / "early")
    with h.transaction():
        files.commit(
            [replace(chunks[1], received=3), chunks[3], FileReceived(b"f" * 16, b"m" * 16)]
        )
    assert files.state(rec.msg_id) == "received"
    with pytest.raises(FileError, match="not an absolute path"):
        files.save(rec, Path("relative"))
    assert files.save(rec, tmp_path / "out") == len(data)
    assert (tmp_path / "out").read_bytes() == data
    assert (tmp_path / "out").stat().st_mode & 0o777 == 0o600
    before = (tmp_path / "history.db").stat().st_size
    files.delete(rec)
    assert files.state(rec.msg_id) == "deleted"
    assert [r.name for r in files.records()] == ["x.bin"]  # the record stays
    with pytest.raises(FileError, match="it is deleted"):
        files.save(rec, tmp_path / "again")
    db = sqlite3.connect(tmp_path / "history.db")
    assert db.execute("SELECT COUNT(*) FROM file_chunks").fetchone()[0] == 0
    db.close()
    h.close()
    assert (tmp_path / "history.db").stat().st_size < before - 2 * CHUNK_DATA  # vacuumed


def test_a_file_that_does_not_match_its_digest_is_damaged_and_not_kept(tmp_path: Path) -> None:
    data = random.Random(4).randbytes(2 * CHUNK_DATA)
    h = _history(tmp_path)
    files = Files(h)
    lying = _chunks(b"\x00" * len(data))  # a modified sender: pieces that open, wrong file
    with h.transaction():
        files.commit([_offer(data), *lying, FileReceived(b"f" * 16, b"m" * 16)])
    rec = files.find("6d6d")
    assert files.state(rec.msg_id) == "damaged"
    assert "does not match" in files.get(rec.msg_id).note  # type: ignore[union-attr]
    with pytest.raises(FileError, match="it is damaged"):
        files.save(rec, tmp_path / "bad")
    db = sqlite3.connect(tmp_path / "history.db")
    assert db.execute("SELECT COUNT(*) FROM file_chunks").fetchone()[0] == 0


def test_an_expired_file_is_dropped_and_a_refused_one_says_why(tmp_path: Path) -> None:
    data = b"z" * (CHUNK_DATA + 1)
    h = _history(tmp_path)
    files = Files(h)
    refused = _offer(b"r" * 10, b"n" * 16, b"g" * 16)
    refused = replace(refused, refused="no room")
    with h.transaction():
        files.commit([_offer(data), _chunks(data)[0], refused, refused])
        files.commit([FileDropped(b"f" * 16, "expired")])
    assert [(m.state, m.file) for m in h.messages()] == [("dropped", True), ("refused", True)]
    assert [r.note for r in files.records()] == ["expired", "no room"]
    db = sqlite3.connect(tmp_path / "history.db")
    assert db.execute("SELECT COUNT(*) FROM file_chunks").fetchone()[0] == 0


def test_a_chunk_row_moved_to_another_place_does_not_open(tmp_path: Path) -> None:
    data = random.Random(5).randbytes(2 * CHUNK_DATA)
    h = _history(tmp_path)
    files = Files(h)
    with h.transaction():
        files.commit([_offer(data), *_chunks(data), FileReceived(b"f" * 16, b"m" * 16)])
    h.close()
    db = sqlite3.connect(tmp_path / "history.db", isolation_level=None)
    rows = dict(db.execute("SELECT idx, blob FROM file_chunks").fetchall())
    db.execute("UPDATE file_chunks SET blob = ? WHERE idx = 0", (rows[1],))
    db.execute("UPDATE file_chunks SET blob = ? WHERE idx = 1", (rows[0],))
    db.close()
    h = _history(tmp_path)
    files = Files(h)
    with pytest.raises(HistoryError, match="does not open where it is"):
        files.save(files.find("6d6d"), tmp_path / "swapped")
    assert not (tmp_path / "swapped").exists()


def test_file_limits_come_from_the_config() -> None:
    cfg = parse(
        "[files]\nmax_incoming = 0\nrelay = false\nmax_incoming_bytes = 2097152\n"
        "from_strangers = true\n"
    )
    node = node_config(cfg)
    assert (node.max_incoming_files, node.relay_chunks, node.max_incoming_bytes) == (
        0,
        False,
        2 * 1024 * 1024,
    )
    assert node.files_from_strangers
    assert not node_config(Config()).files_from_strangers
    assert node_config(Config()).max_incoming_files == 8  # a user's daemon takes files
    with pytest.raises(ConfigError, match=r"files\.max_incoming must be at least 0"):
        parse("[files]\nmax_incoming = -1\n")
    with pytest.raises(ConfigError, match=r"files\.max_incoming_byte"):
        parse("[files]\nmax_incoming_byte = 5\n")


def test_a_record_names_its_place() -> None:
    rec = FileRecord(b"m" * 16, SENDER, False, b"f", "n", "t", 1, 1, 0, b"", "", 5)
    assert FileRecord.load(rec.record()) == rec
