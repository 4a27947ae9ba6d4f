"""The daemon as a separate process, the way users run it: kill -9 in the middle of a
transfer, panic while it runs, configuration errors."""

from __future__ import annotations

import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import trio

from crypto import keystore
from crypto.identity import ContactCard
from mesh import ipc
from mesh.core import bundle
from mesh.daemon.daemon import Daemon
from mesh.daemon.sqlite_store import SQLiteStore
from mesh.profile import ProfileError, create_profile, open_profile
from tests.daemon_helpers import befriend, loopback_config, make_profile

FAST = keystore.KdfParams.named("interactive")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def spawn(profile: Path, pw: Path, config: Path) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "mesh.cli", "--profile", str(profile)]
    cmd += ["--passphrase-file", str(pw), "daemon", "--config", str(config)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while not _answers(ipc.socket_path(profile)):  # a stale socket file may be left
        assert proc.poll() is None, "the daemon exited"
        assert time.monotonic() < deadline, "daemon did not start"
        time.sleep(0.05)
    return proc


def _answers(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX) as s:
        try:
            s.connect(str(path))
        except OSError:
            return False
        return True


def committed_ids(db: Path) -> set[bytes]:
    """What a reader sees in the relay's store: only committed transactions."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        return {bytes(r[0]) for r in con.execute("SELECT id FROM envelopes")}
    finally:
        con.close()


def test_kill_9_of_a_relay_mid_transfer_loses_nothing_committed(tmp_path: Path) -> None:
    now = int(time.time())
    pw = tmp_path / "pw"
    pw.write_text("relay passphrase\n")
    relay = create_profile(tmp_path / "relay", "Relay", b"relay passphrase", FAST, now, os.urandom)
    port = free_port()
    cfg = tmp_path / "relay.toml"
    cfg.write_text(f'[lan]\nenabled = false\nlisten = "127.0.0.1"\nport = {port}\n')
    proc = spawn(relay.path, pw, cfg)
    alice, bob = make_profile(tmp_path, "Alice", now), make_profile(tmp_path, "Bob", now)
    befriend(alice, bob, now)
    db = relay.store_path
    seen_before_kill: set[bytes] = set()

    async def main() -> None:
        d = Daemon(alice, loopback_config(lan=False), alice.path, handle_signals=False)
        d.node.contacts[bob.identity.sign_public].prekey = bob.ring.keys[-1].record
        for k in range(300):
            d.send_text("Bob", f"message {k}")
        d.config = loopback_config(lan=False, peers=(f"127.0.0.1:{port}",))
        async with trio.open_nursery() as n:
            n.start_soon(d.run)
            with trio.fail_after(60):
                while len(seen_before_kill) < 60:
                    seen_before_kill.update(committed_ids(db))
                    await trio.sleep(0.002)
            proc.send_signal(signal.SIGKILL)
            n.cancel_scope.cancel()

    try:
        trio.run(main)
    finally:
        proc.kill()
        proc.wait()
    store = SQLiteStore(db)
    try:
        after = set(store.ids_in_range(b"", None))
        assert seen_before_kill <= after, "an envelope the relay had committed was lost"
        assert len(after) < 300 + 3, "the kill happened mid-transfer"
        assert store._db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        store.close()
    # The relay comes back up on the same files.
    proc = spawn(relay.path, pw, cfg)
    try:
        status = ipc.call_daemon_sync(relay.path, "status")
        assert status["envelopes"] >= len(seen_before_kill)
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_panic_while_the_daemon_runs(tmp_path: Path) -> None:
    now = int(time.time())
    pw = tmp_path / "pw"
    pw.write_text("correct horse\n")
    prof = create_profile(tmp_path / "me", "Me", b"correct horse", FAST, now, os.urandom)
    cfg = tmp_path / "c.toml"
    cfg.write_text('[lan]\nenabled = false\nlisten = "127.0.0.1"\nport = 0\n')
    proc = spawn(prof.path, pw, cfg)
    try:
        start = time.monotonic()
        out = subprocess.run(
            [sys.executable, "-m", "mesh.cli", "--profile", str(prof.path), "panic", "--yes"],
            capture_output=True,
            text=True,
            check=True,
        )
        took = time.monotonic() - start
        assert "wiped" in out.stdout
        assert proc.wait(timeout=10) is not None, "the daemon stopped"
    finally:
        proc.kill()
        proc.wait()
    internal = float(out.stdout.split(" in ")[1].split(" s")[0])
    assert internal < 2.0, f"panic took {internal} s"
    assert took < 10  # includes starting a Python interpreter
    with pytest.raises(ProfileError):
        open_profile(prof.path, b"correct horse")
    leftovers = [p.name for p in prof.path.iterdir() if p.name != ipc.SOCKET_NAME]
    assert leftovers == []


def test_bad_config_is_one_line(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text('[lan]\nport = "many"\n')
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "mesh.cli",
            "--profile",
            str(tmp_path),
            "daemon",
            "--config",
            str(cfg),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 2
    assert out.stderr.strip() == f"steppe: {cfg}: lan.port must be int"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('[lan]\ndiscovery_group = "not-an-ip"', "lan.discovery_group must be an IPv4 multicast"),
        ('[lan]\nlisten = "999.1.1.1"', "lan.listen must be an IP address"),
        ('[lan]\ninterfaces = ["nosuch0"]', "lan.interfaces: this machine has no interface"),
        ("[store]\nbundle_max_bytes = -5", "store.bundle_max_bytes must be at least"),
    ],
)
def test_bad_config_values_name_the_key_before_anything_starts(
    tmp_path: Path, line: str, message: str
) -> None:
    """A real profile and passphrase: the daemon would start if the file were good."""
    pw = tmp_path / "pw"
    pw.write_text("pp\n")
    prof = create_profile(tmp_path / "me", "Me", b"pp", FAST, int(time.time()), os.urandom)
    cfg = tmp_path / "c.toml"
    cfg.write_text(line + "\nport = 0\n" if line.startswith("[lan]") else line + "\n")
    cmd = [sys.executable, "-m", "mesh.cli", "--profile", str(prof.path)]
    out = subprocess.run(
        [*cmd, "--passphrase-file", str(pw), "daemon", "--config", str(cfg)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert out.returncode == 2
    assert out.stdout == ""  # no "daemon up" first
    assert out.stderr.startswith(f"steppe: {cfg}: {message}")
    assert out.stderr.count("\n") == 1
    assert not ipc.socket_path(prof.path).exists()


def test_damaged_bundles_are_explained_in_plain_words(tmp_path: Path) -> None:
    """``steppe import`` against a running daemon: what is wrong with the file, in the
    user's words, not 'malformed msgpack: ExtraData'."""
    now = int(time.time())
    pw = tmp_path / "pw"
    pw.write_text("pp\n")
    prof = create_profile(tmp_path / "me", "Me", b"pp", FAST, now, os.urandom)
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[lan]\nenabled = false\nlisten = "127.0.0.1"\nport = {free_port()}\n')
    good = bundle.Bundle(now, now + 3600, [b"x" * 100, b"y" * 100]).encode()
    damaged = "this bundle is damaged or incomplete (was it copied whole?)"
    files = {
        "cut.steppe": (good[:150], damaged),
        "extra.steppe": (good + b"\x00", damaged),
        "notes.txt": (b"my notes\n", "this file is not a Steppe bundle"),
        "empty.steppe": (b"", "this file is empty, not a Steppe bundle"),
    }
    proc = spawn(prof.path, pw, cfg)
    try:
        for name, (data, message) in files.items():
            path = tmp_path / name
            path.write_bytes(data)
            out = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "mesh.cli",
                    "--profile",
                    str(prof.path),
                    "import",
                    str(path),
                ],
                capture_output=True,
                text=True,
                check=False,
                timeout=60,
            )
            assert out.returncode == 2
            assert out.stderr == f"steppe: {path}: {message}\n"
        assert proc.poll() is None  # the daemon is still up
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_empty_messages_and_bulletins_are_refused(tmp_path: Path) -> None:
    """Refused by the ``steppe`` command before it asks the daemon, and by the daemon
    itself for any local client (the TUI): one line, nothing queued or flooded."""
    now = int(time.time())
    pw = tmp_path / "pw"
    pw.write_text("pp\n")
    alice = create_profile(tmp_path / "alice", "Alice", b"pp", FAST, now, os.urandom)
    bob = make_profile(tmp_path, "Bob", now)
    alice.add_contact(ContactCard.decode(bob.card.encode()), now)
    alice.save(os.urandom)
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[lan]\nenabled = false\nlisten = "127.0.0.1"\nport = {free_port()}\n')
    empty = "the text is empty (only spaces or invisible characters)"
    cli = [sys.executable, "-m", "mesh.cli", "--profile", str(alice.path)]
    proc = spawn(alice.path, pw, cfg)
    try:
        for args, message in (
            (["send", "Bob", "   "], f"cannot send to Bob: {empty}"),
            (["send", "Bob", "", "\u200b"], f"cannot send to Bob: {empty}"),
            (["bulletin", "post", " \t "], f"cannot post: {empty}"),
        ):
            out = subprocess.run(
                [*cli, *args], capture_output=True, text=True, check=False, timeout=60
            )
            assert out.returncode == 2
            assert out.stderr == f"steppe: {message}\n"
        with pytest.raises(ipc.IpcError, match=re.escape(f"cannot send to Bob: {empty}")):
            ipc.call_daemon_sync(alice.path, "send", contact="Bob", text=" \n ")
        with pytest.raises(ipc.IpcError, match=re.escape(f"cannot post: {empty}")):
            ipc.call_daemon_sync(alice.path, "bulletin_post", text="\u3000", topic="t")
        assert ipc.call_daemon_sync(alice.path, "bulletin_list") == []
        # With the daemon up, inbox asks it (no passphrase needed; stdin is empty).
        out = subprocess.run(
            [*cli, "inbox"], capture_output=True, text=True, check=False, timeout=60, input=""
        )
        assert (out.returncode, out.stdout) == (0, "no messages yet\n"), out.stderr
        assert ipc.call_daemon_sync(alice.path, "status")["envelopes"] == 0  # nothing queued
        assert proc.poll() is None
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_port_in_use_is_one_line(tmp_path: Path) -> None:
    now = int(time.time())
    pw = tmp_path / "pw"
    pw.write_text("pp\n")
    prof = create_profile(tmp_path / "me", "Me", b"pp", FAST, now, os.urandom)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        cfg = tmp_path / "c.toml"
        port = taken.getsockname()[1]
        cfg.write_text(f'[lan]\nenabled = false\nlisten = "127.0.0.1"\nport = {port}\n')
        cmd = [sys.executable, "-m", "mesh.cli", "--profile", str(prof.path)]
        out = subprocess.run(
            [*cmd, "--passphrase-file", str(pw), "daemon", "--config", str(cfg)],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
    assert out.returncode == 2
    assert out.stderr.strip() == "steppe: cannot start the daemon: Address already in use"
