"""Rateless IBLT set reconciliation (Yang, Gilad, Alizadeh: "Practical Rateless Set
Reconciliation", SIGCOMM 2024).

Theory of operation
-------------------
Each side holds a set of 32-byte ids (envelope ids: already uniform hashes). An id belongs
to coded symbol ``i`` with probability ``2 / (i + 2)`` (always to symbol 0). A coded symbol is
``(XOR of ids, XOR of 8-byte id checksums, count)``. Side A streams its symbols
``0, 1, 2, ...``; side B subtracts its own symbols for the same indices and *peels*: a
difference symbol whose count is +1 or -1 and whose checksum matches its id sum holds
exactly one id that only A (+1) or only B (-1) has; removing that id from the other symbols
it belongs to exposes more such symbols. When symbol 0 of the difference is empty, B knows
the whole symmetric difference. About 1.35-2 symbols per differing id are needed, so the
bytes grow with the size of the difference, not with the size of the sets.

The index sequence of an id is sampled by exact inversion of the gap distribution:
``P(next > j | at i) = (i+1)(i+2) / ((j+1)(j+2))`` (the product telescopes), driven by a
SplitMix64 generator seeded from the id, so both sides compute identical sequences.

Adversarial note: ids are BLAKE2b outputs of envelope contents, so a peer cannot choose
them freely; a malicious peer can at worst send symbols that never decode, which the
caller bounds (:data:`MAX_SYMBOLS`) and treats as a failed reconciliation.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

ID_LEN = 32
CHECK_LEN = 8
SYMBOL_LEN = ID_LEN + CHECK_LEN
MAX_SYMBOLS = 1 << 16
_MASK = (1 << 64) - 1
_ZERO_ID = 0


def _checksum(item: int) -> int:
    digest = hashlib.blake2b(
        item.to_bytes(ID_LEN, "big"), digest_size=CHECK_LEN, person=b"steppe-riblt"
    ).digest()
    return int.from_bytes(digest, "big")


def _indices(item: int, limit: int) -> Iterator[int]:
    """Symbol indices of ``item`` below ``limit``: 0, then sampled gaps."""
    state = (item ^ (item >> 64) ^ (item >> 128) ^ (item >> 192)) & _MASK
    i = 0
    while i < limit:
        yield i
        # SplitMix64 step.
        state = (state + 0x9E3779B97F4A7C15) & _MASK
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
        z ^= z >> 31
        u = ((z >> 11) + 1) / 9007199254740992.0  # uniform in (0, 1]
        k = (i + 1) * (i + 2) / u
        j = math.floor((-3.0 + math.sqrt(1.0 + 4.0 * k)) / 2.0) + 1
        i = max(j, i + 1)


@dataclass(slots=True)
class Symbols:
    """The first ``len(sums)`` coded symbols of a set (kept as Python ints for speed)."""

    sums: list[int] = field(default_factory=list)
    checks: list[int] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.sums)

    def encode(self, start: int, stop: int) -> bytes:
        out = bytearray()
        for i in range(start, stop):
            out += self.sums[i].to_bytes(ID_LEN, "big")
            out += self.checks[i].to_bytes(CHECK_LEN, "big")
        return bytes(out)

    def counts_slice(self, start: int, stop: int) -> list[int]:
        return self.counts[start:stop]


def encode_set(ids: Iterable[bytes], count: int) -> Symbols:
    """The first ``count`` coded symbols of the set ``ids``."""
    sums = [0] * count
    checks = [0] * count
    counts = [0] * count
    for raw in ids:
        item = int.from_bytes(raw, "big")
        check = _checksum(item)
        for i in _indices(item, count):
            sums[i] ^= item
            checks[i] ^= check
            counts[i] += 1
    return Symbols(sums, checks, counts)


def decode_symbols(data: bytes, counts: list[int]) -> Symbols:
    """Parse ``len(counts)`` symbols sent by the peer (raises ValueError if malformed)."""
    if len(data) != SYMBOL_LEN * len(counts):
        raise ValueError("symbol block has the wrong length")
    sums, checks = [], []
    for off in range(0, len(data), SYMBOL_LEN):
        sums.append(int.from_bytes(data[off : off + ID_LEN], "big"))
        checks.append(int.from_bytes(data[off + ID_LEN : off + SYMBOL_LEN], "big"))
    return Symbols(sums, checks, list(counts))


@dataclass(frozen=True, slots=True)
class Difference:
    only_remote: list[bytes]  # the peer has them, we do not
    only_local: list[bytes]  # we have them, the peer does not


def subtract_and_peel(remote: Symbols, local: Symbols) -> Difference | None:
    """Peel ``remote - local``; the symmetric difference, or None if more symbols are needed."""
    m = len(remote)
    if len(local) < m:
        raise ValueError("local symbols must cover the remote ones")
    sums = [remote.sums[i] ^ local.sums[i] for i in range(m)]
    checks = [remote.checks[i] ^ local.checks[i] for i in range(m)]
    counts = [remote.counts[i] - local.counts[i] for i in range(m)]
    only_remote: list[int] = []
    only_local: list[int] = []
    queue = [i for i in range(m) if counts[i] in (1, -1)]
    while queue:
        i = queue.pop()
        side = counts[i]
        if side not in (1, -1) or sums[i] == _ZERO_ID:
            continue
        item = sums[i]
        check = _checksum(item)
        if checks[i] != check:
            continue
        (only_remote if side == 1 else only_local).append(item)
        for j in _indices(item, m):
            sums[j] ^= item
            checks[j] ^= check
            counts[j] -= side
            if counts[j] in (1, -1):
                queue.append(j)
    if counts[0] != 0 or sums[0] != 0 or checks[0] != 0:
        return None
    return Difference(
        [x.to_bytes(ID_LEN, "big") for x in only_remote],
        [x.to_bytes(ID_LEN, "big") for x in only_local],
    )
