"""Rateless IBLT: the vectorised encoder agrees with the scalar definition; decoding finds
exactly the symmetric difference; garbage does not decode."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mesh.core import riblt as R


def scalar_encode(ids: list[bytes], count: int) -> R.Symbols:
    sums, checks, counts = [0] * count, [0] * count, [0] * count
    for raw in ids:
        item = int.from_bytes(raw, "big")
        for i in R._indices(item, count):
            sums[i] ^= item
            checks[i] ^= R._checksum(item)
            counts[i] += 1
    words = [[(x >> (64 * (3 - k))) & ((1 << 64) - 1) for k in range(4)] for x in sums]
    return R.Symbols(
        np.array(words, dtype=np.uint64).reshape(count, 4),
        np.array(checks, dtype=np.uint64),
        np.array(counts, dtype=np.int64),
    )


def test_vectorised_encoder_matches_the_definition() -> None:
    r = random.Random(1)
    for n in (3, 300):  # the small-set path and the vectorised path
        ids = [r.randbytes(32) for _ in range(n)]
        for count in (1, 7, 64, 500):
            assert R.encode_set(ids, count) == scalar_encode(ids, count)


@pytest.mark.parametrize(("n", "d"), [(0, 3), (50, 0), (2000, 1), (2000, 40), (500, 300)])
def test_symmetric_difference(n: int, d: int) -> None:
    r = random.Random(n * 7 + d)
    common = [r.randbytes(32) for _ in range(n)]
    a_only = [r.randbytes(32) for _ in range(d // 2)]
    b_only = [r.randbytes(32) for _ in range(d - d // 2)]
    m = 8
    while True:
        diff = R.subtract_and_peel(
            R.encode_set(common + a_only, m), R.encode_set(b_only + common, m)
        )
        if diff is not None:
            break
        m *= 2
        assert m <= 8 * (d + 8), "did not converge"
    assert sorted(diff.only_remote) == sorted(a_only)
    assert sorted(diff.only_local) == sorted(b_only)


def test_symbols_round_trip_and_garbage() -> None:
    r = random.Random(3)
    ids = [r.randbytes(32) for _ in range(20)]
    sym = R.encode_set(ids, 16)
    back = R.decode_symbols(sym.encode(0, 16), sym.counts_slice(0, 16))
    assert back == sym
    with pytest.raises(ValueError, match="length"):
        R.decode_symbols(b"x" * 39, [1])
    assert back != R.encode_set(ids[1:], 16)
    junk = R.decode_symbols(r.randbytes(40 * 16), [r.randrange(5) for _ in range(16)])
    assert R.subtract_and_peel(junk, R.encode_set(ids, 16)) is None


def test_sketch_follows_a_changing_set() -> None:
    """The incremental sketch always equals a fresh encoding of the set it was given."""
    r = random.Random(4)
    sketch = R.Sketch(size=64)
    current: list[bytes] = []
    for step in range(30):
        gone = current[: r.randrange(0, 5)] if step % 7 != 6 else list(current)
        new = [r.randbytes(32) for _ in range(r.randrange(0, 50 if step % 7 == 6 else 4))]
        sketch.remove(gone)
        sketch.add(new)
        current = [i for i in current if i not in gone] + new
        r.shuffle(current)
        for count in (1, 32, 64):
            assert sketch.symbols(count) == R.encode_set(current, count)
    with pytest.raises(ValueError, match="grow"):
        sketch.symbols(100)
    sketch.grow(100, iter(current))
    assert sketch.symbols(100) == R.encode_set(current, 100)


def test_chunked_encoding_equals_one_encoding(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(R, "ENCODE_CHUNK", 7)
    r = random.Random(5)
    ids = [r.randbytes(32) for _ in range(50)]
    assert R.encode_chunked(iter(ids), 40) == R.encode_set(ids, 40)


_FORGED = """
import random
from mesh.core import riblt as R

# Symbols that claim an id X in exactly one of the indices X belongs to: the peeler takes
# X out as ours-only, which exposes X as theirs-only in that symbol, whose removal exposes
# X as ours-only again, and so on. It used to loop for ever, its queue growing without
# bound (found by the fuzz harness: one SYMBOLS message hung a node and ate its memory).
r = random.Random(5)
m = 32
x = r.randbytes(32)
local = R.encode_set([x], m)
k = R._indices(int.from_bytes(x, "big"), m)[1]
remote = R.Symbols.empty(m)
remote.sums[k], remote.checks[k], remote.counts[k] = local.sums[k], local.checks[k], 1
print(R.subtract_and_peel(remote, local))
# the same among honest symbols: the peer lacks ids[0] but claims it in one symbol
ids = [r.randbytes(32) for _ in range(5)]
local = R.encode_set(ids, m)
forged = R.encode_set(ids[1:], m)
k = R._indices(int.from_bytes(ids[0], "big"), m)[1]
forged.sums[k], forged.checks[k] = local.sums[k], local.checks[k]
forged.counts[k] = local.counts[k]
print(R.subtract_and_peel(forged, local))
"""


def test_forged_symbols_cannot_make_the_peeler_loop() -> None:
    """An id recovered twice cannot happen with honest symbols: the difference is refused
    (None, as for symbols that do not decode yet), after bounded work. Run in a child
    process, so the old behaviour (an endless loop eating memory) fails by timing out
    instead of hanging the suite."""
    out = subprocess.run(
        [sys.executable, "-c", _FORGED],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert out.stdout.split() == ["None", "None"]


def test_no_symbols_decode_nothing() -> None:
    assert R.subtract_and_peel(R.Symbols.empty(), R.Symbols.empty()) is None
