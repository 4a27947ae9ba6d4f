"""Daemons meeting over Bluetooth LE on Bumble virtual controllers: real nodes, real
daemons, the real Bumble host stack; only the radio is virtual. A real clock (the link
waits on the asyncio thread, see mesh/daemon/links/ble/bridge.py)."""

from __future__ import annotations

import time
from pathlib import Path

import trio

from mesh.daemon.links import LinkKind
from tests.ble_helpers import ble_config, radio_name
from tests.daemon_helpers import befriend, make_profile
from tests.test_daemon import start, until


def test_two_daemons_meet_over_ble_and_exchange_both_ways(tmp_path: Path) -> None:
    now = int(time.time())
    alice, bob = make_profile(tmp_path, "Alice", now), make_profile(tmp_path, "Bob", now)
    befriend(alice, bob, now)
    cfg = ble_config(f"local:{radio_name()}")

    async def main() -> None:
        async with trio.open_nursery() as n:
            a = await start(n, alice, cfg)
            b = await start(n, bob, cfg)
            await until("a BLE link open on both", lambda: all(
                any(x.kind is LinkKind.BLE and x.opened for x in d.daemon.links.values())
                for d in (a, b)
            ))
            key_b, key_a = bob.identity.sign_public, alice.identity.sign_public
            await until("prekeys", lambda: a.daemon.node.contacts[key_b].prekey is not None
                        and b.daemon.node.contacts[key_a].prekey is not None)
            a.daemon.send_text("Bob", "over the air")
            b.daemon.send_text("Alice", "and back")
            await until("both delivered", lambda: any(not m.outgoing for m in b.daemon.history.messages())
                        and any(not m.outgoing for m in a.daemon.history.messages()))
            n.cancel_scope.cancel()

    trio.run(main)
