"""``make demo-ble``: two real daemons, separate processes, meet over Bluetooth LE on
virtual radios, with no network between them.

Bumble's ``bumble.apps.controllers`` runs two virtual Bluetooth controllers on one
virtual radio link, each served on a loopback TCP port (``tcp-server:127.0.0.1:PORT``,
an HCI transport); Alice's and Bob's ``steppe daemon`` each drive one of them through
the Bumble backend (``ble.adapter = "tcp-client:127.0.0.1:PORT"``) with LAN discovery
off. What runs is the program as on a Raspberry Pi with a USB dongle (``usb:0``) but for
the radio: advertising, scanning, connecting, GATT, the Noise handshake, sync.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mesh.demo import Device, _card, call, say, step, wait_for

TEXT = "No network here. Meet at the bazaar gate, 18:00."


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def listening(port: int) -> bool:
    """Something listens on the loopback port (tested by binding, not by connecting: the
    HCI server takes its first client as the host)."""
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def ble_links(d: Device) -> list[dict[str, object]]:
    return [r for r in call(d.path, "peers") if r["kind"] == "ble" and r["open"]]


def main() -> int:
    root = Path(tempfile.mkdtemp(prefix="steppe-demo-ble-"))
    ports = [free_port(), free_port()]
    radios = [f"tcp-server:127.0.0.1:{p}" for p in ports]
    cmd = [sys.executable, "-m", "bumble.apps.controllers", *radios]
    with (root / "controllers.log").open("ab") as log:
        controllers = subprocess.Popen(cmd, stdout=log, stderr=log)
    devices = []
    try:
        wait_for("the virtual controllers", lambda: all(listening(p) for p in ports), 20)
        for name, port in zip(("Alice", "Bob"), ports, strict=True):
            config = root / f"{name.lower()}.toml"
            config.write_text(
                "[lan]\nenabled = false\nlisten = '127.0.0.1'\nport = 0\n"
                "[ble]\nenabled = true\nbackend = 'bumble'\n"
                f"adapter = 'tcp-client:127.0.0.1:{port}'\n"
                '[daemon]\nlog_level = "info"\n'
            )
            devices.append(Device(root, name, config))
        run(devices[0], devices[1], ports)
    finally:
        for d in devices:
            d.stop()
        controllers.terminate()
        controllers.wait(timeout=10)
        shutil.rmtree(root, ignore_errors=True)
    return 0


def run(alice: Device, bob: Device, ports: list[int]) -> None:
    say("Steppe demo: Alice and Bob meet over Bluetooth LE on virtual radios (no LAN).")
    say(f"Virtual controllers on 127.0.0.1:{ports[0]} and :{ports[1]}, one radio link.")

    step(1, "Two devices create identities; Alice and Bob swap cards.")
    for d in (alice, bob):
        d.steppe("id", "new", "--name", d.name, "--kdf", "interactive")
    card = {d.name: _card(d) for d in (alice, bob)}
    alice.steppe("contact", "add", card["Bob"])
    bob.steppe("contact", "add", card["Alice"])

    step(2, "Both daemons start: each advertises the Steppe service and scans for it.")
    began = time.monotonic()
    alice.start()
    bob.start()
    took = wait_for("a BLE link", lambda: bool(ble_links(alice)) and bool(ble_links(bob)))
    say(f"    a Bluetooth LE link, Noise handshake done, {took:.1f} s after the daemons started")
    say("    $ steppe peers  (Alice)")
    for line in alice.steppe("peers").splitlines():
        say(f"    {line}")

    step(3, "Alice writes to Bob; the message crosses the radio link.")
    wait_for(
        "Alice to learn Bob's prekey",
        lambda: any(c["can_write"] for c in call(alice.path, "contacts")),
    )
    say(f"    $ steppe send Bob {TEXT!r}")
    say("    " + alice.steppe("send", "Bob", TEXT).strip())
    took = wait_for("Bob to receive", lambda: bool(call(bob.path, "messages")))
    for m in call(bob.path, "messages"):
        say(f"    Bob's inbox: from {m['contact_name']}: {m['text']!r}  ({took:.1f} s)")
    stats = alice.status()["daemon_stats"]
    say(f"    Alice's daemon: links_ble = {stats.get('links_ble', 0)}")
    say(
        f"\nDone in {time.monotonic() - began:.1f} s: two processes, one virtual radio, no network."
    )


if __name__ == "__main__":
    sys.exit(main())
