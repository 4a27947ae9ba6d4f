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

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

ID_LEN = 32
CHECK_LEN = 8
SYMBOL_LEN = ID_LEN + CHECK_LEN
MAX_SYMBOLS = 1 << 16
_MASK = (1 << 64) - 1
_ZERO_ID = 0


_C0 = 0x9E3779B97F4A7C15
_C1 = 0xBF58476D1CE4E5B9
_C2 = 0x94D049BB133111EB
_CHECK_SALT = 0x5354455050455249  # "STEPPERI"


def _mix(z: int) -> int:
    z = ((z ^ (z >> 30)) * _C1) & _MASK
    z = ((z ^ (z >> 27)) * _C2) & _MASK
    return z ^ (z >> 31)


def _rotl(x: int, r: int) -> int:
    return ((x << r) | (x >> (64 - r))) & _MASK


def _checksum(item: int) -> int:
    """A 64-bit checksum of an id, independent of the XOR sum (SplitMix64 finaliser over
    rotated words; ids are already uniform BLAKE2b outputs)."""
    w0, w1, w2, w3 = (
        (item >> 192) & _MASK,
        (item >> 128) & _MASK,
        (item >> 64) & _MASK,
        item & _MASK,
    )
    return _mix(w0 ^ _rotl(w1, 17) ^ _rotl(w2, 31) ^ _rotl(w3, 47) ^ _CHECK_SALT)


def _indices(item: int, limit: int) -> Iterator[int]:
    """Symbol indices of ``item`` below ``limit``: 0, then sampled gaps."""
    state = (item ^ (item >> 64) ^ (item >> 128) ^ (item >> 192)) & _MASK
    i = 0
    while i < limit:
        yield i
        state = (state + _C0) & _MASK  # SplitMix64 step
        z = _mix(state)
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
    """The first ``count`` coded symbols of the set ``ids`` (vectorised with numpy; the
    arithmetic is exactly that of :func:`_indices` and :func:`_checksum`)."""
    raw = b"".join(ids)
    n = len(raw) // ID_LEN
    if n == 0 or count == 0:
        return Symbols([0] * count, [0] * count, [0] * count)
    w = np.frombuffer(raw, dtype=">u8").reshape(n, 4).astype(np.uint64)
    sums = np.zeros((count, 4), dtype=np.uint64)
    checks = np.zeros(count, dtype=np.uint64)
    counts = np.zeros(count, dtype=np.int64)
    chk = _mix_vec(
        w[:, 0]
        ^ _rotl_vec(w[:, 1], 17)
        ^ _rotl_vec(w[:, 2], 31)
        ^ _rotl_vec(w[:, 3], 47)
        ^ np.uint64(_CHECK_SALT)
    )
    state = w[:, 0] ^ w[:, 1] ^ w[:, 2] ^ w[:, 3]
    idx = np.zeros(n, dtype=np.int64)
    active = np.arange(n)
    while active.size:
        cur = idx[active]
        np.bitwise_xor.at(sums, cur, w[active])
        np.bitwise_xor.at(checks, cur, chk[active])
        np.add.at(counts, cur, 1)
        st = state[active] + np.uint64(_C0)
        state[active] = st
        z = _mix_vec(st)
        u = ((z >> np.uint64(11)) + np.uint64(1)).astype(np.float64) / 9007199254740992.0
        i = cur.astype(np.float64)
        k = (i + 1.0) * (i + 2.0) / u
        j = np.floor((-3.0 + np.sqrt(1.0 + 4.0 * k)) / 2.0) + 1.0
        nxt = np.minimum(np.maximum(j, i + 1.0), float(count)).astype(np.int64)
        idx[active] = nxt
        active = active[nxt < count]
    big = sums.astype(">u8").tobytes()
    return Symbols(
        [int.from_bytes(big[r * ID_LEN : (r + 1) * ID_LEN], "big") for r in range(count)],
        [int(x) for x in checks],
        [int(x) for x in counts],
    )


def _rotl_vec(x: npt.NDArray[np.uint64], r: int) -> npt.NDArray[np.uint64]:
    return (x << np.uint64(r)) | (x >> np.uint64(64 - r))


def _mix_vec(z: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    z = (z ^ (z >> np.uint64(30))) * np.uint64(_C1)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(_C2)
    return z ^ (z >> np.uint64(31))


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
