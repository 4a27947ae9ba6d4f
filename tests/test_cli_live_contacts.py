"""Contact changes reach the running daemon at once (issue 11, section 1), on real
``steppe daemon`` and ``steppe`` processes. The daemon used to work from the contacts it
read at start: a contact added while it ran was unknown ("no contact named"), bulletins
stayed "(unverified)" after ``contact verify``, and after ``contact add --replace`` (KEY
CHANGED) ``send`` still said "queued for Carol" and sealed to the old key."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from crypto.identity import short_fingerprint
from mesh.profile import create_profile, open_profile
from tests.test_daemon_process import free_port
from tests.test_daemon_stop import FAST, PASS, lan_off, run, wait_for


def steppe(root: Path, name: str, *args: str) -> tuple[int, str]:
    cmd = [sys.executable, "-m", "mesh.cli", "--profile", str(root / name)]
    cmd += ["--passphrase-file", str(root / f"{name}.pw"), *args]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    return done.returncode, done.stdout + done.stderr


def make(root: Path, dirname: str, name: str) -> str:
    """A profile on disk; its contact card."""
    p = create_profile(root / dirname, name, PASS.encode(), FAST, int(time.time()), os.urandom)
    (root / f"{dirname}.pw").write_text(PASS + "\n")
    return p.card.encode()


def output(root: Path, name: str, *args: str) -> str:
    code, out = steppe(root, name, *args)
    assert code == 0, out
    return out


def test_contact_changes_reach_the_running_daemon_at_once(tmp_path: Path) -> None:
    me_card = make(tmp_path, "me", "Me")
    carol_card = make(tmp_path, "carol", "Carol")
    new_card = make(tmp_path, "carol2", "Carol")  # someone else, the "new key" of Carol
    # No daemon yet: the command writes the keystore itself, under the lock, and lets go.
    assert "Added Me" in output(tmp_path, "carol", "contact", "add", me_card)
    assert not (tmp_path / "carol" / "daemon.lock").exists()

    port = free_port()
    procs = [run(tmp_path, "me", lan_off(port))]
    procs += [run(tmp_path, n, lan_off(0, f'"127.0.0.1:{port}"')) for n in ("carol", "carol2")]
    try:
        # Added while the daemon runs: known at once, and its card's prekey seals at once.
        added = output(tmp_path, "me", "contact", "add", carol_card)
        assert "The running daemon has the change now" in added
        assert "queued for Carol" in output(tmp_path, "me", "send", "Carol", "hello")
        wait_for(lambda: "hello" in output(tmp_path, "carol", "inbox"), "Carol got it")
        assert [c.name for c in open_profile(tmp_path / "me", PASS.encode()).contacts] == [
            "Carol"
        ], "the daemon saved the keystore"

        # Verified while the daemon runs: her bulletin's trust label follows at once.
        output(tmp_path, "carol", "bulletin", "post", "water at the square", "--topic", "water")
        wait_for(
            lambda: "Carol (unverified)" in output(tmp_path, "me", "bulletin", "list"),
            "Carol's bulletin reached me",
        )
        verified = output(tmp_path, "me", "contact", "verify", "Carol", "--yes")
        assert "The running daemon has the change now" in verified
        assert "Carol (verified contact)" in output(tmp_path, "me", "bulletin", "list")

        # A new key under her name: sending freezes at once.
        replaced = output(tmp_path, "me", "contact", "add", new_card, "--replace")
        assert "key changed" in replaced
        code, out = steppe(tmp_path, "me", "send", "Carol", "after the change")
        assert code == 2
        assert "key changed: verify it before writing" in out
        assert "queued" not in out

        # The new key writes: shown as from its fingerprint, with a warning, not as Carol.
        output(tmp_path, "carol2", "contact", "add", me_card)
        output(tmp_path, "carol2", "send", "Me", "it is me, new phone")
        new_fp = short_fingerprint(
            open_profile(tmp_path / "carol2", PASS.encode()).identity.sign_public
        )
        wait_for(lambda: "new phone" in output(tmp_path, "me", "inbox"), "the new key's message")
        line = next(x for x in output(tmp_path, "me", "inbox").splitlines() if "new phone" in x)
        assert f"from {new_fp} (KEY CHANGED — not verified: the new key of Carol)" in line
        assert "compare safety numbers in person first" in output(tmp_path, "me", "inbox")

        # The old key's holder is no longer a contact: what it sends is a stranger's.
        output(tmp_path, "carol", "send", "Me", "old phone here")
        wait_for(lambda: "old phone" in output(tmp_path, "me", "inbox"), "the old key's message")
        line = next(x for x in output(tmp_path, "me", "inbox").splitlines() if "old phone" in x)
        assert "from unknown sender" in line
        assert "after the change" not in output(tmp_path, "carol", "inbox")
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=20)
