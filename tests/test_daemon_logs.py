"""What real daemons write to their logs: at the default level no peer address, port,
key or content (a seized laptop's logs must not say who was near); at debug they may.
Also: a relay's ``steppe status`` shows its link key, and a user who pins it links."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from crypto.noise import KeyPair
from mesh import ipc
from mesh.daemon.daemon import relay_link_key
from mesh.profile import create_profile
from tests.daemon_helpers import befriend
from tests.test_daemon_process import free_port
from tests.test_daemon_stop import FAST, PASS, lan_off, open_links, run, wait_for


def _status_lines(profile: Path) -> list[str]:
    cmd = [sys.executable, "-m", "mesh.cli", "--profile", str(profile), "status"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=60)
    return out.stdout.splitlines()


def _remote_ports(profile: Path) -> set[str]:
    return {p["remote"].rsplit(":", 1)[1] for p in ipc.call_daemon_sync(profile, "peers")}


def test_default_logs_hold_no_addresses_keys_or_content(tmp_path: Path) -> None:
    now = int(time.time())
    profiles = {
        n: create_profile(tmp_path / n, n, PASS.encode(), FAST, now, os.urandom)
        for n in ("Relay", "Alice", "Bob")
    }
    for n in profiles:
        (tmp_path / f"{n}.pw").write_text(PASS + "\n")
    alice, bob, relay = profiles["Alice"], profiles["Bob"], profiles["Relay"]
    befriend(alice, bob, now)
    alice.save(os.urandom)
    bob.save(os.urandom)
    port, dead = free_port(), free_port()
    procs = [run(tmp_path, "Relay", '[daemon]\nmode = "relay"\n' + lan_off(port))]
    try:
        lines = _status_lines(relay.path)
        link_key = KeyPair.from_private(relay_link_key(relay)).public.hex()
        assert f"link key: {link_key} (users may pin it in gateway.peers)" in lines
        pinned = f'{{ addr = "127.0.0.1:{port}", key = "{link_key}" }}, "127.0.0.1:{dead}"'
        procs.append(run(tmp_path, "Alice", lan_off(0, pinned)))
        bob_cfg = '[daemon]\nlog_level = "debug"\n' + lan_off(0, f'"127.0.0.1:{port}"')
        procs.append(run(tmp_path, "Bob", bob_cfg))
        wait_for(lambda: open_links(relay.path) == 2, "both linked to the relay")

        def can_write() -> bool:
            contacts = ipc.call_daemon_sync(alice.path, "contacts")
            return bool(contacts[0]["can_write"])

        wait_for(can_write, "Bob's prekey reached Alice through the relay")
        ipc.call_daemon_sync(alice.path, "send", contact="Bob", text="SECRET-xyzzy")
        ipc.call_daemon_sync(alice.path, "bulletin_post", text="BODY-frob", topic="TOPIC-plugh")

        def bob_got_it() -> bool:
            rows = ipc.call_daemon_sync(bob.path, "messages")
            return any(m["text"] == "SECRET-xyzzy" for m in rows)

        wait_for(bob_got_it, "the message reached Bob")
        peer_ports = _remote_ports(relay.path) | {str(port), str(dead)}
        procs[2].send_signal(signal.SIGKILL)  # Bob vanishes: the relay's link to him breaks
        procs[2].wait()
        wait_for(lambda: open_links(relay.path) == 1, "the relay noticed")
        for p in procs:
            p.terminate()
            assert p.wait(timeout=20) in (0, -signal.SIGKILL)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait()
    secrets = [
        "127.0.0.1",
        link_key,
        "SECRET-xyzzy",
        "BODY-frob",
        "TOPIC-plugh",
        *(p.identity.public().fingerprint.hex()[:16] for p in profiles.values()),
        *(p.identity.sign_public.hex()[:16] for p in profiles.values()),
    ]
    logs = {n: (tmp_path / f"{n}.log").read_text() for n in ("Relay", "Alice")}
    assert "cannot reach gateway.peers[1] (Connection refused)" in logs["Alice"]
    assert "daemon up" in logs["Relay"]
    for name, text in logs.items():
        for secret in secrets:
            assert secret not in text, f"{name}'s log holds {secret!r}:\n{text}"
        words = set(text.replace(":", " ").replace("(", " ").split())
        assert not peer_ports & words, f"{name}'s log holds a peer's port:\n{text}"
    assert "127.0.0.1" in (tmp_path / "Bob.log").read_text(), "debug logs may hold addresses"
