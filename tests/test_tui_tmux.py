"""Two `steppe` UIs in two tmux windows, as people use them: each unlocks its profile
(starting its daemon), Alice types a message with send-keys, Bob's window shows it, and
Alice's shows it delivered; then Bob answers the same way; all read back with
capture-pane. Real processes end to end; the
daemons bind 127.0.0.1 and beacon on lo only (the config both read, named by
STEPPE_CONFIG)."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from crypto import keystore
from mesh.profile import Profile, create_profile
from tests.daemon_helpers import befriend

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
ROOT = Path(__file__).resolve().parent.parent
PASS = "a tmux test passphrase"


class Tmux:
    def __init__(self, socket: str, env: dict[str, str]) -> None:
        self.base = ["tmux", "-L", socket]
        self.env = env

    def run(self, *args: str) -> str:
        done = subprocess.run(
            [*self.base, *args], env=self.env, capture_output=True, text=True, check=True
        )
        return done.stdout

    def screen(self, window: str) -> str:
        return self.run("capture-pane", "-p", "-t", f"ui:{window}")

    def keys(self, window: str, *keys: str) -> None:
        self.run("send-keys", "-t", f"ui:{window}", *keys)

    def wait(self, window: str, ok: Callable[[str], bool], what: str, limit: float = 60) -> str:
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            shown = self.screen(window)
            if ok(shown):
                return shown
            time.sleep(0.2)
        raise AssertionError(f"timed out waiting for {what}; the screen:\n{self.screen(window)}")


def _daemons_of(profile: Path) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmd = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if str(profile).encode() in cmd and b"daemon" in cmd:
                pids.append(int(entry.name))
    return pids


def _profiles(tmp_path: Path) -> tuple[Profile, Profile]:
    now = int(time.time())
    kdf = keystore.KdfParams.named("interactive")
    alice = create_profile(tmp_path / "alice", "Alice", PASS.encode(), kdf, now, os.urandom)
    bob = create_profile(tmp_path / "bob", "Bob", PASS.encode(), kdf, now, os.urandom)
    befriend(alice, bob, now)
    alice.save(os.urandom)
    bob.save(os.urandom)
    return alice, bob


def test_two_uis_in_tmux_talk(tmp_path: Path) -> None:
    alice, bob = _profiles(tmp_path)
    cfg = tmp_path / "lo.toml"  # as the README's "Two UIs talking on one machine"
    port = random.randint(20000, 60000)
    cfg.write_text(
        f'[lan]\nlisten = "127.0.0.1"\nport = 0\ninterfaces = ["lo"]\n'
        f"discovery_port = {port}\nbeacon_interval = 0.2\n"
        "[routing]\nreceipt_delay = [1, 2]\n"  # receipts at once: "delivered" soon
    )
    env = {**os.environ, "STEPPE_CONFIG": str(cfg), "TERM": "xterm-256color"}
    env.pop("TMUX", None)
    tmux = Tmux(f"steppe-test-{os.getpid()}", env)
    ui = f"cd {ROOT} && {sys.executable} -m mesh.cli --profile"
    try:
        tmux.run("new-session", "-d", "-s", "ui", "-n", "alice", "-x", "100", "-y", "30")
        tmux.run("new-window", "-t", "ui", "-n", "bob")
        for name, p in (("alice", alice), ("bob", bob)):
            tmux.keys(name, f"{ui} {p.path}", "Enter")
            tmux.wait(name, lambda s: "passphrase starts one" in s, f"{name}'s unlock screen")
            tmux.keys(name, PASS, "Enter")
        tmux.wait("alice", lambda s: "Bob" in s and "unverified" in s, "Bob in Alice's list")
        tmux.wait("bob", lambda s: "Alice" in s, "Alice in Bob's list")
        tmux.keys("alice", "F2")
        time.sleep(0.5)
        tmux.keys("alice", "Down", "Enter")
        time.sleep(0.5)
        tmux.keys("alice", "-l", "salem from tmux")
        tmux.keys("alice", "C-s")
        tmux.wait("bob", lambda s: "salem from tmux" in s, "the message on Bob's screen", 90)
        tmux.wait("alice", lambda s: "delivered" in s, "delivered on Alice's screen", 90)
        tmux.keys("bob", "F2")  # and back, from Bob's UI
        time.sleep(0.5)
        tmux.keys("bob", "Down", "Enter")
        time.sleep(0.5)
        tmux.keys("bob", "-l", "rahmet, see you there")
        tmux.keys("bob", "C-s")
        tmux.wait("alice", lambda s: "rahmet, see you there" in s, "Bob's answer at Alice", 90)
        tmux.wait("bob", lambda s: "delivered" in s, "delivered on Bob's screen", 90)
        for name in ("alice", "bob"):
            tmux.keys(name, "C-q")
            tmux.wait(name, lambda s: "Stop it too?" in s, "the offer to stop the daemon")
            tmux.keys(name, "y")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (_daemons_of(alice.path) or _daemons_of(bob.path)):
            time.sleep(0.2)
        assert not _daemons_of(alice.path)
        assert not _daemons_of(bob.path)
    finally:
        subprocess.run([*tmux.base, "kill-server"], env=env, capture_output=True, check=False)
        for p in (alice, bob):
            for pid in _daemons_of(p.path):
                os.kill(pid, signal.SIGTERM)
