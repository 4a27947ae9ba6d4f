"""What a group message costs with sender keys, against the pairwise sends it replaces.

Run: ``.venv/bin/python -m bench.groups`` (``--n 2000`` messages per figure, ``--body 200``
bytes). For groups of 8 and 64 members: group messages sealed and opened per second
(crypto/sender_keys.py: one seal for the whole group, one open per reader), and the
baseline measured in the same run, the pairwise session message of the same body
(mesh/core/session.py: Double Ratchet inside the envelope layer) that a group without
sender keys sends to each of the other ``members - 1``. Printed: the rates, the speed-up
of reaching the whole group (``(members - 1)`` pairwise seals against one group seal),
and what a re-key costs (every member hands its sender key to every other over a
pairwise session: ``members * (members - 1)`` pairwise messages), and the size and cost of
a reader's table of expected per-message tags.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable

from crypto.noise import KeyPair
from mesh.core.session import Inner, Session
from tests.sender_keys_helpers import make_group

NOW = 1_700_000_000


def _per_second(fn: Callable[[int], object], n: int) -> float:
    start = time.perf_counter()
    for i in range(n):
        fn(i)
    return n / (time.perf_counter() - start)


def _pair() -> tuple[Session, Session]:
    sk, prekey = os.urandom(32), KeyPair.generate(os.urandom)
    alice = Session.as_alice(sk, os.urandom(32), prekey.public, os.urandom, NOW)
    bob = Session.as_bob(sk, os.urandom(32), prekey, NOW)
    return alice, bob


def pairwise(body: bytes, n: int) -> tuple[float, float]:
    """Session messages sealed and opened per second."""
    alice, bob = _pair()
    sealed: list[bytes] = []
    ad = b"envelope header"

    def seal(i: int) -> None:
        alice.next_tag()
        inner = Inner(i.to_bytes(16, "big"), NOW, 1, body, bytes(16))
        sealed.append(alice.seal(inner, ad, os.urandom))

    seal_rate = _per_second(seal, n)
    open_rate = _per_second(lambda i: bob.open(sealed[i], ad, i, NOW, os.urandom), n)
    return seal_rate, open_rate


def group(members: int, body: bytes, n: int) -> tuple[float, float]:
    """Group messages sealed and opened (by one reader) per second."""
    groups = make_group(members)
    author, reader = groups[0], groups[1]
    sealed: list[tuple[bytes, bytes]] = []

    def seal(i: int) -> None:
        tag = author.next_tag()
        sealed.append((author.seal(body, b"envelope header"), tag))

    seal_rate = _per_second(seal, n)
    open_rate = _per_second(lambda i: reader.open(*sealed[i], NOW, b"envelope header"), n)
    return seal_rate, open_rate


def table(members: int) -> tuple[int, float, float]:
    """A reader's table of expected tags (crypto/group_tag.py): its size, and the ms to
    build it the first time (every tag hashed) and again (from the chains' caches)."""
    reader = make_group(members)[1]
    start = time.perf_counter()
    size = len(reader.expected_tags(NOW))
    first = time.perf_counter()
    reader.expected_tags(NOW)
    return size, 1000 * (first - start), 1000 * (time.perf_counter() - first)


def run(n: int, body_len: int) -> None:
    body = os.urandom(body_len)
    p_seal, p_open = pairwise(body, n)
    print(f"{body_len}-byte body, {n} messages per figure")
    print(f"baseline, pairwise session message: {p_seal:,.0f} seal/s, {p_open:,.0f} open/s")
    for members in (8, 64):
        g_seal, g_open = group(members, body, n)
        to_all = (members - 1) / p_seal
        print(
            f"{members:2d} members: group message {g_seal:,.0f} seal/s "
            f"({g_seal / p_seal:.2f}x a pairwise seal), {g_open:,.0f} open/s "
            f"({g_open / p_open:.2f}x a pairwise open); reaching all {members - 1} others "
            f"costs the sender {1000 / g_seal:.3f} ms, {1000 * to_all:.2f} ms pairwise "
            f"({to_all * g_seal:.1f}x); a re-key costs {members * (members - 1):,} pairwise "
            f"messages, {members * (members - 1) / p_seal:.2f} s of sealing in all"
        )
        size, first, again = table(members)
        print(
            f"{members:2d} members: a reader expects {size:,} tags, a table built in "
            f"{first:.2f} ms the first time, {again:.2f} ms again"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--body", type=int, default=200)
    args = parser.parse_args()
    run(args.n, args.body)


if __name__ == "__main__":
    main()
