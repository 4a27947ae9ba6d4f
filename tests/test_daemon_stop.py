"""Stopping a real ``steppe daemon`` process: SIGTERM (systemd, kill) and SIGINT (Ctrl-C)
save the state, close the links, remove the socket and the lock, log one line, exit 0."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from crypto import keystore
from mesh import ipc
from mesh.daemon.history import HISTORY, History
from mesh.profile import create_profile, open_profile
from tests.test_daemon_process import _answers, free_port

FAST = keystore.KdfParams.named("interactive")
PASS = "stop passphrase"


def start(root: Path, name: str, config: str) -> tuple[Path, subprocess.Popen[bytes], Path]:
    """A profile and a running daemon for it; its log (stderr) goes to a file."""
    prof = create_profile(root / name, name, PASS.encode(), FAST, int(time.time()), os.urandom)
    (root / f"{name}.pw").write_text(PASS + "\n")
    return prof.path, run(root, name, config), root / f"{name}.log"


def run(root: Path, name: str, config: str) -> subprocess.Popen[bytes]:
    """``steppe daemon`` for the profile ``root/name``, logging to ``root/name.log``."""
    profile, cfg, log = root / name, root / f"{name}.toml", root / f"{name}.log"
    cfg.write_text(config)
    cmd = [sys.executable, "-m", "mesh.cli", "--profile", str(profile)]
    cmd += ["--passphrase-file", str(root / f"{name}.pw"), "daemon", "--config", str(cfg)]
    with log.open("wb") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
    deadline = time.monotonic() + 30
    while not _answers(ipc.socket_path(profile)):
        assert proc.poll() is None, "the daemon exited: " + log.read_text()
        assert time.monotonic() < deadline, "daemon did not start"
        time.sleep(0.05)
    return proc


def lan_off(port: int, peers: str = "") -> str:
    return (
        f'[lan]\nenabled = false\nlisten = "127.0.0.1"\nport = {port}\n'
        f"[gateway]\npeers = [{peers}]\nbackoff_max = 1.0\n"
    )


def wait_for(check: object, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def open_links(profile: Path) -> int:
    try:
        return int(ipc.call_daemon_sync(profile, "status")["open_links"])
    except ipc.IpcError:
        return -1


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_the_daemon_cleanly(tmp_path: Path, signum: signal.Signals) -> None:
    port = free_port()
    relay, relay_proc, _ = start(tmp_path, "Relay", lan_off(port))
    me, proc, log = start(tmp_path, "Me", lan_off(0, f'"127.0.0.1:{port}"'))
    try:
        wait_for(lambda: open_links(me) == 1 and open_links(relay) == 1, "the link opened")
        proc.send_signal(signum)
        assert proc.wait(timeout=20) == 0
        # The link was closed, not left to time out: the relay sees it go at once.
        wait_for(lambda: open_links(relay) == 0, "the relay saw the link close", timeout=5)
    finally:
        for p in (proc, relay_proc):
            if p.poll() is None:
                p.kill()
            p.wait()
    text = log.read_text()
    assert "Traceback" not in text, text
    assert "Error" not in text, text
    lines = [line for line in text.splitlines() if "stopped on" in line]
    assert len(lines) == 1, text
    assert lines[0].endswith(f"stopped on {signum.name}: state saved, links closed"), text
    assert not (me / ipc.SOCKET_NAME).exists()
    assert not (me / "daemon.lock").exists()
    # The node's state is in the history (written as it changed, from the start).
    prof = open_profile(me, PASS.encode())
    history = History(me / HISTORY, prof.data_key, os.urandom)
    try:
        assert history.load_rows()
    finally:
        history.close()
    # And the profile starts again (no stale lock or socket in the way).
    again = run(tmp_path, "Me", lan_off(0))
    again.terminate()
    assert again.wait(timeout=20) == 0
    assert not (me / "daemon.lock").exists()


def test_a_second_daemon_for_the_profile_is_refused_while_one_runs(tmp_path: Path) -> None:
    me, proc, _ = start(tmp_path, "Me", lan_off(0))
    try:
        cmd = [sys.executable, "-m", "mesh.cli", "--profile", str(me)]
        cmd += ["--passphrase-file", str(tmp_path / "Me.pw"), "daemon"]
        cmd += ["--config", str(tmp_path / "Me.toml")]
        out = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=60)
        assert out.returncode == 2
        assert "another daemon is already running" in out.stderr
        assert _answers(ipc.socket_path(me)), "the first daemon still serves"
    finally:
        proc.terminate()
        assert proc.wait(timeout=20) == 0
