"""``make demo``: store and forward with three real daemons on this machine.

Alice, a relay and Bob each get a real profile (Argon2id keystore, SQLite store, encrypted
history) in a temporary directory and run ``steppe daemon`` as separate processes. They
find each other with LAN beacons on the loopback interface only and talk over loopback
TCP: the same code as on a Wi-Fi network, no hardware needed.

The story: Bob's daemon runs once (its signed prekey floods to the relay) and stops. Alice
sends to Bob while Bob is down; the relay holds the sealed envelope. Bob's daemon starts,
syncs with the relay and receives the message; its receipt makes the relay purge its copy.
At each step the demo prints what happened and what the relay could see.
"""

from __future__ import annotations

import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mesh import ipc
from mesh.core import envelope

TEXT = "Internet is cut. Meet at Republic Square, 18:00. Bring water."
TIMEOUT = 60.0


def say(text: str = "") -> None:
    print(text, flush=True)


def step(n: int, text: str) -> None:
    say(f"\n[{n}] {text}")


call = ipc.call_daemon_sync


def wait_for(what: str, check: Callable[[], bool], timeout: float = TIMEOUT) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        try:
            if check():
                return time.monotonic() - start
        except (ipc.IpcError, OSError, sqlite3.Error):
            pass
        time.sleep(0.2)
    raise SystemExit(f"demo: timed out waiting for {what}")


class Device:
    def __init__(self, root: Path, name: str, config: Path) -> None:
        self.name = name
        self.path = root / name.lower()
        self.config = config
        self.pw = root / f"{name.lower()}.pass"
        self.pw.write_text(os.urandom(16).hex() + "\n")
        self.pw.chmod(0o600)
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = root / f"{name.lower()}.log"

    def steppe(self, *args: str) -> str:
        cmd = [sys.executable, "-m", "mesh.cli", "--profile", str(self.path)]
        cmd += ["--passphrase-file", str(self.pw), *args]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise SystemExit(f"demo: steppe {' '.join(args)} failed: {done.stderr.strip()}")
        return done.stdout

    def start(self) -> None:
        cmd = [sys.executable, "-m", "mesh.cli", "--profile", str(self.path)]
        cmd += ["--passphrase-file", str(self.pw), "daemon", "--config", str(self.config)]
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=log)
        wait_for(f"{self.name}'s daemon", lambda: bool(call(self.path, "status")))

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=20)
            self.proc = None

    def status(self) -> dict[str, Any]:
        result: dict[str, Any] = call(self.path, "status")
        return result

    def open_links(self) -> int:
        return int(self.status()["open_links"])


def relay_view(relay: Device) -> list[envelope.Envelope]:
    """The relay's envelope store, read the way anyone holding the device could."""
    db = sqlite3.connect(f"file:{relay.path / 'envelopes.db'}?mode=ro", uri=True)
    try:
        rows = db.execute("SELECT data FROM envelopes").fetchall()
    finally:
        db.close()
    return [envelope.decode(bytes(r[0])) for r in rows]


def main() -> int:
    root = Path(tempfile.mkdtemp(prefix="steppe-demo-"))
    config = root / "config.toml"
    config.write_text(
        '[lan]\nport = 0\ninterfaces = ["lo"]\nbeacon_interval = 0.5\n'
        f"discovery_port = {random.randint(40000, 60000)}\n"
        '[routing]\nreceipt_delay = [1, 2]\n[daemon]\nlog_level = "info"\n'
    )
    alice, relay, bob = (Device(root, n, config) for n in ("Alice", "Relay", "Bob"))
    try:
        run(alice, relay, bob)
    finally:
        for d in (alice, relay, bob):
            d.stop()
        shutil.rmtree(root, ignore_errors=True)
    return 0


def run(alice: Device, relay: Device, bob: Device) -> None:
    say("Steppe demo: Alice -> relay -> Bob with three real daemons over loopback.")
    say(f"Profiles, configs and logs in {alice.path.parent} (deleted at the end).")

    step(1, "Three devices create identities (Argon2id keystores); Alice and Bob swap cards.")
    for d in (alice, relay, bob):
        d.steppe("id", "new", "--name", d.name, "--kdf", "interactive")
    card = {d.name: _card(d) for d in (alice, bob)}
    alice.steppe("contact", "add", card["Bob"])
    bob.steppe("contact", "add", card["Alice"])
    alice.steppe("contact", "verify", "Bob", "--yes")
    bob.steppe("contact", "verify", "Alice", "--yes")
    say("    Alice and Bob met in person, compared safety numbers and are verified contacts.")

    step(2, "The relay's daemon starts (a Raspberry Pi in a shop, say).")
    relay.start()
    say(f"    relay up, TCP port {relay.status()['tcp_port']}, no configured peers")

    step(3, "Bob's daemon starts, finds the relay by LAN beacon, and stops again.")
    bob.start()
    took = wait_for(
        "Bob's prekey on the relay",
        lambda: sum(e.kind is envelope.Kind.PREKEY for e in relay_view(relay)) >= 1,
    )
    say(f"    found each other and synced in {took:.1f} s; the relay now carries")
    say("    Bob's signed prekey announcement (public, signed, needed for a first message)")
    bob.stop()
    wait_for("the relay to notice Bob left", lambda: relay.open_links() == 0)
    say("    Bob's daemon is down.")

    step(4, "Alice's daemon starts; she writes to Bob, who is unreachable.")
    alice.start()
    wait_for(
        "Alice to learn Bob's prekey",
        lambda: any(c["can_write"] for c in call(alice.path, "contacts")),
    )
    say(f"    $ steppe send Bob {TEXT!r}")
    say("    " + alice.steppe("send", "Bob", TEXT).strip())
    took = wait_for(
        "the relay to take the envelope",
        lambda: any(e.kind is envelope.Kind.FIRST_CONTACT for e in relay_view(relay)),
    )
    say(f"    the relay holds the sealed envelope {took:.1f} s later; Alice goes offline.")
    alice.stop()

    step(5, "What the relay holds, read straight from its envelopes.db:")
    envs = relay_view(relay)
    for env in envs:
        say(
            f"    {env.kind.name:<13} tag {env.tag.hex() or '-':<16} body {len(env.body):5d} B"
            f"  expiry hour {env.expiry_hour}  budget {env.budget}"
        )
    on_disk = b"".join(f.read_bytes() for f in relay.path.iterdir() if f.is_file())
    leaks = [w for w in ("Alice", TEXT, "Republic") if w.encode() in on_disk]
    say(f"    searching the relay's files for names and text: {', '.join(leaks) or 'none found'}")
    say("    no sender, no recipient, no stable identifier: a tag, a size bucket, an hour.")

    step(6, "Bob's daemon starts again and syncs with the relay.")
    bob.start()
    took = wait_for("Bob to receive", lambda: bool(call(bob.path, "messages")))
    for m in call(bob.path, "messages"):
        say(f"    Bob's inbox: from {m['contact_name']}: {m['text']!r}  ({took:.1f} s)")
    took = wait_for(
        "the receipt to purge the relay's copy",
        lambda: all(e.kind is not envelope.Kind.FIRST_CONTACT for e in relay_view(relay)),
    )
    counters = relay.status()["node_stats"]
    say(
        f"    Bob's receipt reached the relay {took:.1f} s later: purged_by_receipt = "
        f"{counters.get('purged_by_receipt', 0)}, relay now holds {relay.status()['envelopes']}"
    )
    say("    (only Bob could produce the receipt; the relay learns it may delete, not who)")

    step(7, "Alice comes back: the receipt tells her the message arrived.")
    alice.start()
    wait_for(
        "Alice's receipt",
        lambda: any(m["state"] == "acked" for m in call(alice.path, "messages")),
    )
    say("    " + alice.steppe("inbox").strip())
    say("\nDone: real daemons, real sockets, real crypto; nothing for the relay to read.")


def _card(d: Device) -> str:
    for line in d.steppe("id", "show", "--no-qr").splitlines():
        if line.startswith("Contact card:"):
            return line.split()[-1]
    raise SystemExit("demo: no contact card")


if __name__ == "__main__":
    sys.exit(main())
