"""Starting the profile's daemon from the UI: detached (its own session, so closing the
terminal or the UI stops no delivery), the passphrase handed over on its standard input
(never on the command line or in a file), its output in ``daemon.log`` in the profile
(mode 0600; ``panic`` wipes it with the rest). The UI then waits for the daemon's socket
to answer, or for the process to end and says why in its own last line."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from mesh.offline import daemon_answers
from mesh.profile import KEYSTORE

LOG = "daemon.log"
START_LIMIT = 90.0  # seconds a daemon may take to answer (Argon2id on a small device)


def has_profile(profile_dir: Path) -> bool:
    return (profile_dir / KEYSTORE).exists()


@dataclass
class Started:
    process: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        """SIGTERM (the daemon saves and stops cleanly), then wait for it."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()


def spawn(profile_dir: Path, passphrase: bytes, daemon_args: Sequence[str] = ()) -> Started:
    """``steppe --profile DIR daemon ARGS``, detached, fed the passphrase."""
    log = profile_dir / LOG
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        cmd = [sys.executable, "-m", "mesh.cli", "--profile", str(profile_dir), "daemon"]
        process = subprocess.Popen(
            [*cmd, *daemon_args],
            stdin=subprocess.PIPE,
            stdout=fd,
            stderr=fd,
            start_new_session=True,
            close_fds=True,
        )
    finally:
        os.close(fd)
    assert process.stdin is not None
    try:
        process.stdin.write(passphrase + b"\n")
        process.stdin.close()
    except BrokenPipeError:
        pass  # it ended already: until_up reads why
    return Started(process, log)


def _last_error(log: Path) -> str:
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    said = [x for x in lines if x.startswith("steppe:")]
    return said[-1].removeprefix("steppe:").strip() if said else ""


def _waited(started: Started, profile_dir: Path, limit: float) -> str:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if daemon_answers(profile_dir):
            return ""
        if started.process.poll() is not None:
            why = _last_error(started.log)
            return why or f"the daemon stopped (exit status {started.process.returncode})"
        time.sleep(0.1)
    return f"the daemon did not answer within {limit:.0f} s; see {started.log}"


async def until_up(started: Started, profile_dir: Path, limit: float = START_LIMIT) -> str:
    """ "" once the daemon answers; else why not, in one line."""
    return await asyncio.to_thread(_waited, started, profile_dir, limit)
