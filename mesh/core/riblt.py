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
caller bounds (:data:`MAX_SYMBOLS`) and treats as a failed reconciliation. Symbols that
claim an id in only some of the symbols it belongs to would make a naive peeler recover it
again and again; :func:`subtract_and_peel` refuses the difference at the first id that
comes out twice.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from mesh.core.errors import ConfigError, MalformedInput

ID_LEN = 32
CHECK_LEN = 8
SYMBOL_LEN = ID_LEN + CHECK_LEN
MAX_SYMBOLS = 1 << 16
_SCALAR_BELOW = 40  # sets this small are encoded with the scalar index generator
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


def _indices(item: int, limit: int) -> list[int]:
    """Symbol indices of ``item`` below ``limit``: 0, then sampled gaps (SplitMix64 steps;
    :func:`_mix` inlined, this is the peeler's inner loop)."""
    state = (item ^ (item >> 64) ^ (item >> 128) ^ (item >> 192)) & _MASK
    out = []
    i = 0
    sqrt, floor = math.sqrt, math.floor
    while i < limit:
        out.append(i)
        state = (state + _C0) & _MASK
        z = ((state ^ (state >> 30)) * _C1) & _MASK
        z = ((z ^ (z >> 27)) * _C2) & _MASK
        z ^= z >> 31
        u = ((z >> 11) + 1) / 9007199254740992.0  # uniform in (0, 1]
        j = floor((-3.0 + sqrt(1.0 + 4.0 * ((i + 1) * (i + 2) / u))) / 2.0) + 1
        i = j if j > i else i + 1
    return out


U64 = npt.NDArray[np.uint64]
I64 = npt.NDArray[np.int64]


@dataclass(slots=True, eq=False)
class Symbols:
    """The first ``len(self)`` coded symbols of a set, as numpy arrays: ``sums`` (m x 4
    64-bit words of the XOR of ids, most significant first), ``checks`` and ``counts``."""

    sums: U64
    checks: U64
    counts: I64

    @classmethod
    def empty(cls, m: int = 0) -> Symbols:
        return cls(
            np.zeros((m, 4), dtype=np.uint64),
            np.zeros(m, dtype=np.uint64),
            np.zeros(m, dtype=np.int64),
        )

    def __len__(self) -> int:
        return len(self.counts)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Symbols)
            and np.array_equal(self.sums, other.sums)
            and np.array_equal(self.checks, other.checks)
            and np.array_equal(self.counts, other.counts)
        )

    def prefix(self, m: int) -> Symbols:
        return Symbols(self.sums[:m].copy(), self.checks[:m].copy(), self.counts[:m].copy())

    def extend(self, more: Symbols) -> Symbols:
        return Symbols(
            np.concatenate((self.sums, more.sums)),
            np.concatenate((self.checks, more.checks)),
            np.concatenate((self.counts, more.counts)),
        )

    def xor_in(self, other: Symbols, sign: int) -> None:
        """Add (``sign`` 1) or remove (-1) the set ``other`` encodes, in place."""
        self.sums ^= other.sums
        self.checks ^= other.checks
        self.counts += sign * other.counts

    def encode(self, start: int, stop: int) -> bytes:
        """Symbols ``start..stop`` on the wire: 32-byte id sum, 8-byte checksum, each."""
        block = np.empty((stop - start, 5), dtype=">u8")
        block[:, :4] = self.sums[start:stop]
        block[:, 4] = self.checks[start:stop]
        return block.tobytes()

    def counts_slice(self, start: int, stop: int) -> list[int]:
        out: list[int] = self.counts[start:stop].tolist()
        return out


def _words(ids: Iterable[bytes]) -> U64:
    raw = b"".join(ids)
    return np.frombuffer(raw, dtype=">u8").reshape(len(raw) // ID_LEN, 4).astype(np.uint64)


def encode_set(ids: Iterable[bytes], count: int) -> Symbols:
    """The first ``count`` coded symbols of the set ``ids`` (vectorised with numpy; the
    arithmetic is exactly that of :func:`_indices` and :func:`_checksum`)."""
    return _encode_words(_words(ids), count)


def _checks_of(w: U64) -> U64:
    return _mix_vec(
        w[:, 0]
        ^ _rotl_vec(w[:, 1], 17)
        ^ _rotl_vec(w[:, 2], 31)
        ^ _rotl_vec(w[:, 3], 47)
        ^ np.uint64(_CHECK_SALT)
    )


def _index_pairs(w: U64, count: int) -> tuple[I64, I64]:
    """Every (symbol index < count, row of ``w``) pair: the symbols each id belongs to."""
    n = len(w)
    at_sym: list[I64] = []  # one array per round
    at_row: list[I64] = []
    if n <= _SCALAR_BELOW:  # a few ids: numpy's per-call cost would dominate
        for row, word in enumerate(w.tolist()):
            item = (word[0] << 192) | (word[1] << 128) | (word[2] << 64) | word[3]
            ix = list(_indices(item, count))
            at_sym.append(np.array(ix, dtype=np.int64))
            at_row.append(np.full(len(ix), row, dtype=np.int64))
        return np.concatenate(at_sym), np.concatenate(at_row)
    state = w[:, 0] ^ w[:, 1] ^ w[:, 2] ^ w[:, 3]
    idx = np.zeros(n, dtype=np.int64)
    active = np.arange(n)
    while active.size:
        cur = idx[active]
        at_sym.append(cur)
        at_row.append(active)
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
    return np.concatenate(at_sym), np.concatenate(at_row)


def _encode_words(w: U64, count: int) -> Symbols:
    out = Symbols.empty(count)
    if len(w) == 0 or count == 0:
        return out
    chk = _checks_of(w)
    syms, rows = _index_pairs(w, count)
    # Group the pairs by symbol and XOR each group at once (sort + reduceat).
    order = np.argsort(syms, kind="stable")
    syms, rows = syms[order], rows[order]
    starts = np.flatnonzero(np.concatenate(([True], syms[1:] != syms[:-1])))
    used = syms[starts]
    out.sums[used] = np.bitwise_xor.reduceat(w[rows], starts, axis=0)
    out.checks[used] = np.bitwise_xor.reduceat(chk[rows], starts)
    out.counts[:] = np.bincount(syms, minlength=count)
    return out


def _rotl_vec(x: U64, r: int) -> U64:
    return (x << np.uint64(r)) | (x >> np.uint64(64 - r))


def _mix_vec(z: U64) -> U64:
    z = (z ^ (z >> np.uint64(30))) * np.uint64(_C1)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(_C2)
    return z ^ (z >> np.uint64(31))


ENCODE_CHUNK = 20_000  # ids encoded at once when a large set is (re)encoded: bounds memory


def encode_chunked(ids: Iterable[bytes], count: int) -> Symbols:
    """:func:`encode_set` of any number of ids in bounded memory (XOR is associative)."""
    out = Symbols.empty(count)
    chunk: list[bytes] = []
    for i in ids:
        chunk.append(i)
        if len(chunk) >= ENCODE_CHUNK:
            out.xor_in(encode_set(chunk, count), 1)
            chunk = []
    if chunk:
        out.xor_in(encode_set(chunk, count), 1)
    return out


class Sketch:
    """The first ``size`` coded symbols of a changing set, updated as ids are added and
    removed (no copy of the set is kept: symbols are XOR sums and counts). Changes are
    batched and applied vectorised when symbols are read or the batch is full.
    :meth:`grow` re-encodes the whole set for more symbols, a chunk at a time."""

    def __init__(self, size: int = 256) -> None:
        self.size = size
        self._sym = Symbols.empty(size)
        self._added: list[bytes] = []
        self._removed: list[bytes] = []

    def add(self, ids: list[bytes]) -> None:
        self._added += ids
        if len(self._added) >= ENCODE_CHUNK:
            self._flush()

    def remove(self, ids: list[bytes]) -> None:
        self._removed += ids
        if len(self._removed) >= ENCODE_CHUNK:
            self._flush()

    def _flush(self) -> None:
        # An id added and removed in one batch cancels out: XOR and +1/-1.
        for ids, sign in ((self._added, 1), (self._removed, -1)):
            if ids:
                self._sym.xor_in(encode_set(ids, self.size), sign)
        self._added, self._removed = [], []

    def grow(self, size: int, all_ids: Iterable[bytes]) -> None:
        self._sym = encode_chunked(all_ids, size)
        self._added, self._removed = [], []
        self.size = size

    def symbols(self, count: int) -> Symbols:
        if count > self.size:
            raise ConfigError("grow the sketch first")
        self._flush()
        return self._sym.prefix(count)


def decode_symbols(data: bytes, counts: list[int]) -> Symbols:
    """Parse ``len(counts)`` symbols sent by the peer (:class:`MalformedInput` if bad)."""
    m = len(counts)
    if len(data) != SYMBOL_LEN * m:
        raise MalformedInput("symbol block has the wrong length")
    block = np.frombuffer(data, dtype=">u8").reshape(m, 5).astype(np.uint64)
    return Symbols(
        np.ascontiguousarray(block[:, :4]), block[:, 4].copy(), np.array(counts, dtype=np.int64)
    )


@dataclass(frozen=True, slots=True)
class Difference:
    only_remote: list[bytes]  # the peer has them, we do not
    only_local: list[bytes]  # we have them, the peer does not


def subtract_and_peel(remote: Symbols, local: Symbols) -> Difference | None:
    """Peel ``remote - local``; the symmetric difference, or None if more symbols are needed.

    Vectorised in rounds: every symbol that is pure right now (count +1 or -1, checksum of
    its sum matching) yields its id at once; all those ids are removed from every symbol
    they belong to in one scatter; repeat until no symbol is pure. An id pure in several
    symbols in one round is taken once. An id that comes out again in a later round cannot
    happen with honest symbols (once peeled it is gone from every symbol it belongs to): a
    peer forged them, claiming an id in only some of its symbols, and peeling would go on
    for ever. The difference is refused (None), so the work is bounded: every round takes
    out at least one id never seen before."""
    m = len(remote)
    if len(local) < m:
        raise ConfigError("local symbols must cover the remote ones")
    if m == 0:
        return None  # no symbols tell nothing yet
    sums = remote.sums ^ local.sums[:m]
    checks = remote.checks ^ local.checks[:m]
    counts = remote.counts - local.counts[:m]
    found: list[U64] = []
    signs: list[I64] = []
    seen: set[bytes] = set()
    while True:
        cand = np.flatnonzero((counts == 1) | (counts == -1))
        if cand.size == 0:
            break
        cand = cand[sums[cand].any(axis=1)]
        cand = cand[_checks_of(sums[cand]) == checks[cand]]
        if cand.size == 0:
            break
        items, first = np.unique(sums[cand], axis=0, return_index=True)
        keys = {row.tobytes() for row in items}
        if not seen.isdisjoint(keys):
            return None  # forged symbols: this id was peeled before
        seen |= keys
        sign = counts[cand[first]]
        found.append(items)
        signs.append(sign)
        syms, rows = _index_pairs(items.copy(), m)
        np.bitwise_xor.at(sums, syms, items[rows])
        np.bitwise_xor.at(checks, syms, _checks_of(items)[rows])
        np.subtract.at(counts, syms, sign[rows])
    if counts[0] != 0 or sums[0].any() or checks[0] != 0:
        return None
    if not found:
        return Difference([], [])
    every = np.concatenate(found).astype(">u8")
    side = np.concatenate(signs)
    raw = every.tobytes()
    ids = [raw[k * ID_LEN : (k + 1) * ID_LEN] for k in range(len(every))]
    return Difference(
        [i for i, sg in zip(ids, side.tolist(), strict=True) if sg == 1],
        [i for i, sg in zip(ids, side.tolist(), strict=True) if sg == -1],
    )
