"""Three daemons in three network namespaces, joined by veth pairs this test creates:

    [alice] 10.77.1.1 --veth-- 10.77.1.2 [relay] 10.77.2.2 --veth-- 10.77.2.1 [bob]

Alice and Bob share no network; nobody configures a peer. The daemons find each other
with LAN beacons, Bob's prekey floods to Alice through the relay, and Alice's message
reaches Bob through it. Needs root (CI runs as root); skipped otherwise. Only addresses
inside the namespaces created here are used.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from crypto import keystore
from crypto.identity import ContactCard
from mesh import ipc
from mesh.profile import create_profile

FAST = keystore.KdfParams.named("interactive")


def sh(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True)


@pytest.fixture
def namespaces() -> Iterator[tuple[str, str, str]]:
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root (CI runs as root)")
    if shutil.which("ip") is None:
        pytest.skip("the 'ip' command (iproute2) is not installed")
    tag = f"st{os.getpid() % 100000}"
    names = (f"{tag}a", f"{tag}r", f"{tag}b")
    try:
        for ns in names:
            sh("ip", "netns", "add", ns)
    except subprocess.CalledProcessError as exc:
        for ns in names:
            subprocess.run(["ip", "netns", "del", ns], check=False, capture_output=True)
        pytest.skip(f"cannot create network namespaces here: {exc.stderr.decode().strip()}")
    a, r, b = names
    try:
        for left, right, net in ((a, r, "1"), (b, r, "2")):
            x, y = f"{left}x", f"{left}y"
            sh("ip", "link", "add", x, "type", "veth", "peer", "name", y)
            sh("ip", "link", "set", x, "netns", left)
            sh("ip", "link", "set", y, "netns", right)
            sh("ip", "-n", left, "addr", "add", f"10.77.{net}.1/24", "dev", x)
            sh("ip", "-n", right, "addr", "add", f"10.77.{net}.2/24", "dev", y)
            sh("ip", "-n", left, "link", "set", x, "up")
            sh("ip", "-n", right, "link", "set", y, "up")
        for ns in names:
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        yield a, r, b
    finally:
        for ns in names:
            subprocess.run(["ip", "netns", "del", ns], check=False, capture_output=True)


call = ipc.call_daemon_sync


def wait(what: str, check: Any, limit: float = 60.0) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except ipc.IpcError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_discovery_and_delivery_across_a_relay_in_namespaces(
    namespaces: tuple[str, str, str], tmp_path: Path
) -> None:
    now = int(time.time())
    pw = tmp_path / "pw"
    pw.write_text("netns test\n")
    names = ("Alice", "Relay", "Bob")
    profiles = {
        n: create_profile(tmp_path / n.lower(), n, b"netns test", FAST, now, os.urandom)
        for n in names
    }
    alice, bob = profiles["Alice"], profiles["Bob"]
    alice.add_contact(ContactCard.decode(bob.card.encode()), now)
    bob.add_contact(ContactCard.decode(alice.card.encode()), now)
    alice.save(os.urandom)
    bob.save(os.urandom)
    cfg = tmp_path / "cfg.toml"  # LAN on every interface of the namespace, no peers
    cfg.write_text("[lan]\nbeacon_interval = 0.5\n[routing]\nreceipt_delay = [1, 2]\n")
    procs = []
    try:
        for ns, n in zip(namespaces, names, strict=True):
            cmd = ["ip", "netns", "exec", ns, sys.executable, "-m", "mesh.cli"]
            cmd += ["--profile", str(profiles[n].path), "--passphrase-file", str(pw)]
            cmd += ["daemon", "--config", str(cfg)]
            procs.append(
                subprocess.Popen(
                    cmd,
                    cwd=Path(__file__).resolve().parent.parent,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        for n in names:
            wait(f"{n}'s daemon", lambda n=n: bool(call(profiles[n].path, "status")))
        # Bob's card carries his prekey, so Alice can write at once; what matters here is
        # that both find the relay, and only the relay, by its beacons.
        for n in ("Alice", "Bob"):
            wait(
                f"{n}'s link to the relay",
                lambda n=n: [p["open"] for p in call(profiles[n].path, "peers")] == [True],
            )
        relay_peers = call(profiles["Relay"].path, "peers")
        assert {p["remote"].split(":")[0] for p in relay_peers} <= {"10.77.1.1", "10.77.2.1"}
        assert len(call(alice.path, "peers")) == 1, "Alice only hears the relay"
        call(alice.path, "send", contact="Bob", text="across namespaces")
        wait("Bob to receive", lambda: bool(call(bob.path, "messages")))
        got = call(bob.path, "messages")
        assert [(m["contact_name"], m["text"]) for m in got] == [("Alice", "across namespaces")]
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=20)
