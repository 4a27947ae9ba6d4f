"""The ``steppe`` command against careless and hostile use, on real processes: panic on the
wrong directory, Ctrl-D at prompts (on a real pseudo-terminal), weak passphrases, export
over an existing file, and terminal injection by a stranger's message and bulletin."""

from __future__ import annotations

import fcntl
import os
import re
import select
import subprocess
import sys
import termios
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from crypto import keystore
from crypto.bulletin import Bulletin
from crypto.identity import Identity, short_fingerprint
from crypto.prekeys import PrekeyRing
from mesh import ipc
from mesh.core import bundle
from mesh.core.events import SendMessage
from mesh.core.memory_store import MemoryStore
from mesh.core.node import Node
from mesh.profile import Profile, create_profile
from tests.test_daemon_process import spawn

ROOT = Path(__file__).resolve().parent.parent
FAST = keystore.KdfParams.named("interactive")
STRONG = "correct horse battery staple"


def steppe(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mesh.cli", *args],
        cwd=ROOT,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


class Pty:
    """A real ``steppe`` process on a pseudo-terminal that is its controlling terminal
    (getpass opens /dev/tty), driven like a person at the keyboard."""

    def __init__(self, *args: str) -> None:
        self.master, slave = os.openpty()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mesh.cli", *args],
            cwd=ROOT,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            start_new_session=True,
            preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0),
        )
        os.close(slave)
        self.seen = b""

    def expect(self, text: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while text.encode() not in self.seen:
            assert time.monotonic() < deadline, f"no {text!r} in {self.seen!r}"
            if not self._read(deadline - time.monotonic()):
                raise AssertionError(f"output ended before {text!r}: {self.seen!r}")

    def _read(self, timeout: float) -> bool:
        ready, _, _ = select.select([self.master], [], [], max(0.0, timeout))
        if not ready:
            return True
        try:
            chunk = os.read(self.master, 4096)
        except OSError:  # EIO: the child closed the terminal
            return False
        self.seen += chunk
        return bool(chunk)

    def __enter__(self) -> Pty:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        if self.master >= 0:
            os.close(self.master)

    def send(self, data: bytes) -> None:
        os.write(self.master, data)

    def finish(self, timeout: float = 60) -> tuple[int, str]:
        deadline = time.monotonic() + timeout
        while self._read(deadline - time.monotonic()) and time.monotonic() < deadline:
            pass
        code = self.proc.wait(timeout=max(1.0, deadline - time.monotonic()))
        os.close(self.master)
        self.master = -1
        return code, self.seen.decode(errors="replace").replace("\r\n", "\n")


def _profile(tmp_path: Path, name: str = "Me") -> Profile:
    return create_profile(
        tmp_path / name.lower(), name, STRONG.encode(), FAST, int(time.time()), os.urandom
    )


# ---- panic ---------------------------------------------------------------------------------


def test_panic_refuses_a_directory_that_is_not_a_profile(tmp_path: Path) -> None:
    docs = tmp_path / "Documents"
    docs.mkdir()
    (docs / "notes.txt").write_text("my notes\n")
    (docs / "keystore").write_text("my own file that happens to be called keystore\n")
    r = steppe("--profile", str(docs), "panic", "--yes")
    assert r.returncode == 2
    assert r.stderr == f"steppe: {docs} is not a Steppe profile (no keystore): nothing wiped\n"
    assert "wiped " not in r.stdout
    assert (docs / "notes.txt").read_text() == "my notes\n"
    assert sorted(x.name for x in docs.iterdir()) == ["keystore", "notes.txt"]


def test_panic_on_a_path_that_does_not_exist(tmp_path: Path) -> None:
    r = steppe("--profile", str(tmp_path / "nowhere"), "panic", "--yes")
    assert r.returncode == 2
    assert r.stdout == ""
    assert r.stderr == f"steppe: there is no directory {tmp_path / 'nowhere'}: nothing wiped\n"
    assert not (tmp_path / "nowhere").exists()


def test_panic_wipes_a_profile_without_the_passphrase_and_can_run_again(tmp_path: Path) -> None:
    prof = _profile(tmp_path)
    (prof.path / "history.db").write_bytes(b"x" * 100)
    # An interrupted panic: slots gone, other files still there. It is still a profile.
    (prof.path / "keystore").write_bytes(
        keystore.wipe_slots((prof.path / "keystore").read_bytes(), os.urandom)
    )
    r = steppe("--profile", str(prof.path), "panic", "--yes")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"wiped {prof.path} in ")
    assert list(prof.path.iterdir()) == []


# ---- Ctrl-D at prompts ----------------------------------------------------------------------


def test_ctrl_d_at_the_passphrase_prompt_is_one_line(tmp_path: Path) -> None:
    with Pty(
        "--profile", str(tmp_path / "p"), "id", "new", "--name", "A", "--kdf", "interactive"
    ) as t:
        t.expect("Passphrase: ")
        t.send(b"\x04")
        code, text = t.finish()
    assert code == 2
    assert "Traceback" not in text
    assert "EOFError" not in text
    assert (
        text.strip().splitlines()[-1] == "steppe: no passphrase given (end of input): nothing done"
    )
    assert not (tmp_path / "p" / "keystore").exists()


def test_ctrl_d_at_the_panic_question_is_one_line_and_wipes_nothing(tmp_path: Path) -> None:
    prof = _profile(tmp_path)
    with Pty("--profile", str(prof.path), "panic") as t:
        t.expect("[y/N] ")
        t.send(b"\x04")
        code, text = t.finish()
    assert code == 2
    assert "Traceback" not in text
    assert text.strip().splitlines()[-1] == "steppe: no answer (end of input): nothing done"
    assert keystore.is_keystore((prof.path / "keystore").read_bytes())


def test_panic_with_stdin_closed_asks_for_yes(tmp_path: Path) -> None:
    prof = _profile(tmp_path)
    r = subprocess.run(
        [sys.executable, "-m", "mesh.cli", "--profile", str(prof.path), "panic"],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1
    assert "--yes" in r.stderr
    assert (prof.path / "keystore").exists()


# ---- weak passphrases ------------------------------------------------------------------------


@pytest.mark.parametrize(("answer", "created"), [(b"n\n", False), (b"y\n", True)])
def test_weak_passphrase_warns_and_asks(tmp_path: Path, answer: bytes, created: bool) -> None:
    prof = tmp_path / "p"
    with Pty("--profile", str(prof), "id", "new", "--name", "A", "--kdf", "interactive") as t:
        t.expect("Passphrase: ")
        t.send(b"a\n")
        t.expect("Repeat passphrase: ")
        t.send(b"a\n")
        t.expect("[y/N] ")
        t.send(answer)
        code, text = t.finish()
    assert "this passphrase is weak (it has 1 characters, fewer than 12)" in text
    assert (code == 0) is created
    assert (prof / "keystore").exists() is created


def test_weak_passphrase_without_a_terminal_needs_the_flag(tmp_path: Path) -> None:
    args = ("--profile", str(tmp_path / "p"), "id", "new", "--name", "A", "--kdf", "interactive")
    r = steppe(*args, stdin="aaaaaaaaaaaaaaaa\n")
    assert r.returncode == 2
    assert "only 1 different characters" in r.stderr
    assert r.stderr.splitlines()[-1] == (
        "steppe: refusing a weak passphrase: choose a longer one, or pass --allow-weak-passphrase"
    )
    assert not (tmp_path / "p" / "keystore").exists()
    r = steppe(*args, "--allow-weak-passphrase", stdin="pw\n")
    assert r.returncode == 0, r.stderr
    assert "weak" in r.stderr
    r = steppe(*args[:2], "id", "show", "--no-qr", stdin="pw\n")
    assert r.returncode == 0
    r = steppe(
        "--profile",
        str(tmp_path / "q"),
        "id",
        "new",
        "--name",
        "B",
        "--kdf",
        "interactive",
        stdin=STRONG + "\n",
    )
    assert r.returncode == 0
    assert r.stderr == ""


# ---- a running daemon: export, and what strangers send -----------------------------------


@pytest.fixture
def running(tmp_path: Path) -> Iterator[tuple[Profile, Path]]:
    prof = _profile(tmp_path)
    pw = tmp_path / "pw"
    pw.write_text(STRONG + "\n")
    cfg = tmp_path / "c.toml"
    cfg.write_text('[lan]\nenabled = false\nlisten = "127.0.0.1"\nport = 0\n')
    proc = spawn(prof.path, pw, cfg)
    try:
        yield prof, pw
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_export_keeps_an_existing_file_unless_forced(
    running: tuple[Profile, Path], tmp_path: Path
) -> None:
    prof, _pw = running
    ipc.call_daemon_sync(prof.path, "bulletin_post", text="Clinic open", topic="clinic", hours=2)
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes\n")
    r = steppe("--profile", str(prof.path), "export", str(notes))
    assert r.returncode == 2
    assert r.stderr == f"steppe: {notes} already exists: pass --force to replace it\n"
    assert notes.read_text() == "my notes\n"
    r = steppe("--profile", str(prof.path), "export", str(notes), "--force")
    assert r.returncode == 0, r.stderr
    assert re.match(r"wrote [1-9]\d* sealed envelopes", r.stdout)
    assert notes.read_bytes() != b"my notes\n"


@pytest.mark.parametrize("limit", ["10", "-5", "600"])
def test_export_max_bytes_below_one_envelope_says_so(
    running: tuple[Profile, Path], tmp_path: Path, limit: str
) -> None:
    prof, _pw = running
    ipc.call_daemon_sync(prof.path, "bulletin_post", text="Clinic open", topic="clinic", hours=2)
    target = tmp_path / "out.bundle"
    r = steppe("--profile", str(prof.path), "export", str(target), "--max-bytes", limit)
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1
    assert "one envelope" in r.stderr or "fits in --max-bytes 600" in r.stderr
    assert not target.exists()


HOSTILE = (
    "hi\n2024-01-05 10:00  from Alice (verified contact): meet at 5\r2024-01-05 10:01  fake"
    "\x1b[2J\x1b]0;owned\x07\x9b31m\u202eevil\u200b\u2028x"
)


def _hostile_bundle(me: Profile, path: Path) -> Identity:
    """A stranger who knows my card and prekey seals a message to me and signs a bulletin,
    both full of terminal tricks, and hands me the bundle on a USB stick."""
    now = int(time.time())
    evil = Identity.generate(os.urandom)
    ring = PrekeyRing()
    ring.create(evil, now, os.urandom)
    node = Node(evil, ring, MemoryStore(), os.urandom)
    node.add_contact(me.identity.public(), me.ring.keys[-1].record)
    node.handle(SendMessage(me.identity.sign_public, HOSTILE.encode()), now)
    b = Bulletin.create(
        evil.sign_seed,
        type="post",
        key="water\x1b[0m]\n2024-01-05 10:00  Alice (verified contact)  [water",
        sequence=now,
        created=now,
        expiry=now + 3600,
        body=HOSTILE.encode(),
    )
    node.publish_bulletin(b, now)
    frames, latest = node.courier.export_frames(1 << 20, now)
    assert len(frames) == 2
    path.write_bytes(bundle.Bundle(now, latest, frames).encode())
    return evil


OURS = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d  (from unknown sender [0-9a-f ]{24}: |unknown key )")


def _assert_inert(text: str) -> None:
    for bad in "\x1b\r\x9b\x07\u202e\u200b\u2028":
        assert bad not in text
    for line in text.splitlines():
        ours = line.startswith(("    ", "To answer an unknown sender")) or OURS.match(line)
        assert ours, f"a line that is not ours: {line!r}"


def test_a_strangers_message_and_bulletin_print_inert(
    running: tuple[Profile, Path], tmp_path: Path
) -> None:
    prof, _pw = running
    evil = _hostile_bundle(prof, tmp_path / "usb.bundle")
    r = steppe("--profile", str(prof.path), "import", str(tmp_path / "usb.bundle"))
    assert r.returncode == 0, r.stderr
    assert "1 for you" in r.stdout
    inbox = steppe("--profile", str(prof.path), "inbox")
    assert inbox.returncode == 0, inbox.stderr
    _assert_inert(inbox.stdout)
    first = inbox.stdout.splitlines()[0]
    assert f"from unknown sender {short_fingerprint(evil.sign_public)}: hi" in first
    assert evil.sign_public.hex()[:16] not in inbox.stdout
    assert "    2024-01-05 10:00  from Alice (verified contact): meet at 5\\x0d2024" in inbox.stdout
    assert "\\x1b[2J\\x1b]0;owned\\x07\\x9b31m\\u202eevil\\u200b\\u2028x" in inbox.stdout
    assert "add them: 'steppe contact add-sender FINGERPRINT --name NAME'" in inbox.stdout
    bulletins = steppe("--profile", str(prof.path), "bulletin", "list")
    assert bulletins.returncode == 0, bulletins.stderr
    _assert_inert(bulletins.stdout)
    head, post_id = bulletins.stdout.splitlines()[0].rsplit("  id ", 1)
    assert head.endswith("[water\\x1b[0m]\\n2024-01-05 10:00  Alice (verified contact)  [water]")
    assert len(post_id) == 12
    assert set(post_id) <= set("0123456789abcdef")
    assert bulletins.stdout.splitlines()[1:3] == ["    trust: unknown", "    hi"]
