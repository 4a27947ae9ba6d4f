"""Hashcash stamps over an envelope id.

A stamp is an 8-byte counter such that ``BLAKE2b-256(person="steppe-stamp", id || stamp)``
starts with at least ``difficulty`` zero bits. Minting costs about ``2**difficulty`` hashes;
verifying costs exactly one. The id covers the envelope body, so a stamp cannot be moved
to another envelope.
"""

from __future__ import annotations

from crypto import primitives as p

STAMP_LEN = 8
MAX_DIFFICULTY = 40


def _work(envelope_id: bytes, stamp: bytes) -> int:
    digest = p.blake2b(envelope_id + stamp, digest_size=32, person=b"steppe-stamp")
    value = int.from_bytes(digest, "big")
    return 256 - value.bit_length()


def leading_zero_bits(envelope_id: bytes, stamp: bytes) -> int:
    return _work(envelope_id, stamp)


def verify_stamp(envelope_id: bytes, stamp: bytes, difficulty: int) -> bool:
    """One hash: True if ``stamp`` carries at least ``difficulty`` bits of work."""
    if len(stamp) != STAMP_LEN:
        return False
    return difficulty <= 0 or _work(envelope_id, stamp) >= difficulty


def mint_stamp(
    envelope_id: bytes, difficulty: int, *, start: int = 0, max_tries: int = 2**34
) -> bytes:
    """Search counters from ``start`` (pass a random start so two nodes do not collide)."""
    if not 0 <= difficulty <= MAX_DIFFICULTY:
        raise ValueError(f"difficulty must be in [0, {MAX_DIFFICULTY}]")
    candidates = (((start + i) % 2**64).to_bytes(STAMP_LEN, "big") for i in range(max_tries))
    stamp = p.blake2b_prefix_search(
        envelope_id, candidates, 1 << (256 - difficulty), digest_size=32, person=b"steppe-stamp"
    )
    if stamp is None:
        raise RuntimeError("no stamp found within max_tries")
    return stamp
