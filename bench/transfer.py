"""Bulk transfer figures for issue 10, part 2: a relay hands over everything it holds.

Run: ``.venv/bin/python -m bench.transfer`` (``--sizes 1000,10000``).

1. **Hand-over rate.** Alice writes ``n`` messages to Bob while Bob is away (composed in
   one step of her node: their composition is not the figure); her daemon uploads them
   to a relay daemon (its own process, loopback TCP, SQLite). Alice stops,
   Bob's daemon starts and dials the relay; the figure is envelopes per second from Bob's
   start until he has opened all ``n`` (handshake, reconciliation, trade, decryption and
   his commits included), with Bob's shipped flood limit (a burst of 400 envelopes per
   source, then 50/s) and with it lifted. The baseline measured in the same run is a bare
   loop of SQLite puts of the same envelopes on this machine (what a store can take with
   nothing else to do).
2. **Wire bytes.** Real nodes (the sans-I/O core, no sockets) on a stream link, as the
   daemon's TCP links are: bytes that leave the sender per 100-byte message, in bulk, when
   Alice uploads 1,000 to a relay and when the relay hands them to Bob, next to the size
   of one envelope. Target: at most 1.5x the envelope.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import trio

from bench.daemon import Relay, _profile, bench_store_baseline
from crypto.identity import ContactCard
from mesh import ipc
from mesh.core.events import SendMessage
from mesh.daemon.config import Config
from mesh.daemon.daemon import Daemon
from tests.netsim import bulk_wire_bytes


def bench_handover(n: int, lifted: bool) -> tuple[float, float]:
    """Envelopes per second relay -> Bob after Bob reconnects, and seconds it took."""
    root = Path(tempfile.mkdtemp(prefix="steppe-bench-"))
    try:
        relay = Relay(root, unlimited=True)  # Alice's upload is set-up, not the figure
        relay.start()
        try:
            return trio.run(_handover, root, relay, n, lifted)
        finally:
            relay.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)


async def _handover(root: Path, relay: Relay, n: int, lifted: bool) -> tuple[float, float]:
    alice, bob = _profile(root, "alice"), _profile(root, "bob")
    now = int(time.time())
    alice.add_contact(ContactCard.decode(bob.card.encode()), now, name="bob")
    bob.add_contact(ContactCard.decode(alice.card.encode()), now, name="alice")
    via = Config(lan=False, listen="127.0.0.1", port=0, peers=(f"127.0.0.1:{relay.port}",))
    # Bob's prekey reaches Alice through the relay before he goes away.
    async with trio.open_nursery() as nursery:
        a = await nursery.start(Daemon(alice, via, alice.path, handle_signals=False).run)
        await nursery.start(Daemon(bob, via, bob.path, handle_signals=False).run)
        with trio.fail_after(60):
            while a.node.contacts[bob.identity.sign_public].prekey is None:  # noqa: ASYNC110
                await trio.sleep(0.01)
        nursery.cancel_scope.cancel()
    base = await _held(relay)
    async with trio.open_nursery() as nursery:
        a = await nursery.start(Daemon(alice, via, alice.path, handle_signals=False).run)
        # Set-up, not the figure: Alice's node composes all n in one step (one store
        # transaction, one history commit) rather than through n ``send_text`` calls.
        key = bob.identity.sign_public
        texts = [f"message {k}".encode() for k in range(n)]
        a.call_node(lambda now: [x for t in texts for x in a.node.handle(SendMessage(key, t), now)])
        with trio.fail_after(1800):
            while await _held(relay) < base + n:  # noqa: ASYNC110 (another process)
                await trio.sleep(0.1)
        nursery.cancel_scope.cancel()
    cfg = replace(via, link_rate=1e9, link_burst=1e9) if lifted else via
    async with trio.open_nursery() as nursery:
        start = trio.current_time()
        b = await nursery.start(Daemon(bob, cfg, bob.path, handle_signals=False).run)
        with trio.fail_after(1800):
            while b.node.stats.get("delivered", 0) < n:  # noqa: ASYNC110
                await trio.sleep(0.02)
        took = trio.current_time() - start
        nursery.cancel_scope.cancel()
    return n / took, took


async def _held(relay: Relay) -> int:
    status = await ipc.call_daemon(relay.profile.path, "status")
    return int(status["envelopes"])


def wire_bytes(n: int = 1000) -> tuple[int, float, float]:
    """One session envelope's size, and bytes sent per message uploading ``n`` 100-byte
    messages to a relay and downloading them from it, on stream links."""
    run = bulk_wire_bytes(n)
    assert run.relay_holds >= n + 1
    assert run.delivered == n + 1, run.delivered
    return run.envelope, run.uploaded / (n + 1), run.downloaded / (n + 1)


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.transfer")
    ap.add_argument("--sizes", default="1000,10000", help="messages waiting for Bob")
    args = ap.parse_args()
    print("Bulk transfer (issue 10, part 2)")
    envelope, up, down = wire_bytes()
    print(
        f"  wire bytes per 100-byte message, stream link, 1,001 in bulk: session envelope "
        f"{envelope} B; upload to a relay {up:.0f} B ({up / envelope:.2f}x), download from "
        f"it {down:.0f} B ({down / envelope:.2f}x) (target <= 1.5x)"
    )
    base = bench_store_baseline(2000)
    print(f"  baseline: bare SQLite put, one transaction each: {base:.0f} envelopes/s")
    for n in (int(x) for x in args.sizes.split(",")):
        for lifted in (False, True):
            rate, took = bench_handover(n, lifted)
            label = "flood limit lifted" if lifted else "shipped flood limit (400, then 50/s)"
            print(
                f"  relay -> Bob after he reconnects, {n:,} waiting, {label}: {rate:.0f} "
                f"envelopes/s ({took:.1f} s; {rate / base:.2f}x baseline)"
            )


if __name__ == "__main__":
    main()
