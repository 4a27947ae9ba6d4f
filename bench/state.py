"""What a send and a delivery cost as the node's state grows (issue 11: the daemon saved
the whole node state on every send and every delivery, so both grew with it).

Run: ``.venv/bin/python -m bench.state`` (``--n 5000``, ``--window 200``). Two daemons
in this process (SQLite store and encrypted history on disk, default durability, no
network): Alice sends ``n`` messages to Bob, each as ``steppe send`` does (one node step
that seals and stores it and commits the rows it changed, then the history row), and
none is answered, so her state holds all ``n`` awaited receipts. Bob then imports them
one per step (each a delivery committed with its rows). Printed: milliseconds per send and
per delivery over the first and the last ``window`` of them, and their ratio (1.0: the
cost does not grow with the state). The baseline, measured in the same run at the end, is
what the previous daemon added to every send and delivery: one save of the whole state
as a single encrypted blob.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from mesh.core.events import MessageQueued, SendMessage
from mesh.daemon.daemon import Daemon
from mesh.profile import Profile, new_profile
from tests.daemon_helpers import befriend, loopback_config

TTL = 7 * 86400


def _daemon(p: Profile) -> Daemon:
    return Daemon(p, loopback_config(lan=False), p.path, handle_signals=False)


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _ms(samples: list[float]) -> float:
    return 1000 * statistics.mean(samples)


def run(n: int, window: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        now = int(time.time())
        alice = new_profile(Path(tmp) / "alice", "Alice", now, os.urandom)
        bob = new_profile(Path(tmp) / "bob", "Bob", now, os.urandom)
        befriend(alice, bob, now)
        a, b = _daemon(alice), _daemon(bob)
        key = bob.identity.sign_public
        frames: list[bytes] = []

        def send(k: int) -> None:  # what Daemon.send_text does, keeping the envelope id
            text = f"message {k}"
            acts = a.feed(SendMessage(key, text.encode(), TTL))
            queued = next(x for x in acts if isinstance(x, MessageQueued))
            a.history.add(key, True, queued.msg_id, a.now(), text)
            frame = a.store.get(queued.envelope_id)
            assert frame is not None
            frames.append(frame)

        sends = [_timed(lambda k=k: send(k)) for k in range(n)]  # type: ignore[misc]

        def deliver(frame: bytes) -> None:
            b.call_node(lambda t: b.node.courier.import_frames([frame], b"bench", t))

        deliveries = [_timed(lambda f=f: deliver(f)) for f in frames]  # type: ignore[misc]
        assert b.node.stats.get("delivered") == n, b.node.stats
        old_send = [_timed(lambda: a.history.save_state("bench", a.node.saved.export()))]
        old_send += [_timed(lambda: a.history.save_state("bench", a.node.saved.export()))]
        old_recv = [_timed(lambda: b.history.save_state("bench", b.node.saved.export()))]
        old_recv += [_timed(lambda: b.history.save_state("bench", b.node.saved.export()))]
        rows = (len(a.node.saved.rows()), len(b.node.saved.rows()))
        a.close()
        b.close()
    first, last = sends[:window], sends[-window:]
    print(f"{n} messages; state rows at the end: Alice {rows[0]}, Bob {rows[1]}")
    print(
        f"send:     {_ms(first):6.2f} ms (first {window}), {_ms(last):6.2f} ms (last {window}), "
        f"ratio {_ms(last) / _ms(first):.2f}"
    )
    first, last = deliveries[:window], deliveries[-window:]
    print(
        f"delivery: {_ms(first):6.2f} ms (first {window}), {_ms(last):6.2f} ms "
        f"(last {window}), ratio {_ms(last) / _ms(first):.2f}"
    )
    print(
        f"baseline (the previous daemon, added per send/delivery): a whole-state save at the "
        f"end takes {_ms(old_send):.2f} ms (Alice) and {_ms(old_recv):.2f} ms (Bob)"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--window", type=int, default=200)
    args = ap.parse_args()
    run(args.n, min(args.window, args.n))


if __name__ == "__main__":
    main()
