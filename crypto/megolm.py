"""Megolm's sender ratchet, exactly as the Matrix specification defines it.

A ratchet value ``R(i)`` is four 32-byte parts ``R(i,0) .. R(i,3)``. Going from ``i - 1``
to ``i``: if ``i`` is a multiple of 2**24, part 0 and every part after it are rehashed from
part 0; else if a multiple of 2**16, parts 1..3 from part 1; else if a multiple of 2**8,
parts 2..3 from part 2; else part 3 from itself. Rehashing part ``k`` from part ``j`` is
``HMAC-SHA-256(key=R(j), message=bytes([k]))``. Advancing to any later index costs at
most 4 * 256 hashes (:meth:`MegolmRatchet.advanced_to`, libolm's ``megolm_advance_to``).

Only the ratchet is Megolm's: what Steppe derives from a ratchet value (its message key,
:func:`message_key`) and how it encrypts are its own (:mod:`crypto.sender_keys`). The
ratchet is kept byte for byte Megolm's so that an implementation nobody here wrote,
vodozemac, can check it (``tests/test_sender_keys_vodozemac.py``). HMAC-SHA-256 is
:func:`crypto.primitives.hmac_sha256`, like every primitive here.

The index is a 32-bit counter, as in Megolm; Steppe never wraps it around (a sender chain
that reaches :data:`MAX_INDEX` refuses to send; a new epoch starts a new chain).
"""

from __future__ import annotations

from dataclasses import dataclass

from crypto import primitives as p

PARTS = 4
PART_LEN = 32
RATCHET_LEN = PARTS * PART_LEN
MAX_INDEX = 2**32 - 1
MESSAGE_KEY_LEN = p.KEY_LEN + p.XNONCE_LEN


def _rehash(parts: list[bytes], src: int, dst: int) -> None:
    parts[dst] = p.hmac_sha256(parts[src], bytes([dst]))


@dataclass(frozen=True, slots=True)
class MegolmRatchet:
    """The ratchet value at ``index`` (``data`` is ``R(index,0) || .. || R(index,3)``)."""

    index: int
    data: bytes

    def __post_init__(self) -> None:
        if len(self.data) != RATCHET_LEN or not 0 <= self.index <= MAX_INDEX:
            raise ValueError("a Megolm ratchet is 128 bytes at a 32-bit index")

    def _parts(self) -> list[bytes]:
        return [self.data[k * PART_LEN : (k + 1) * PART_LEN] for k in range(PARTS)]

    def advanced(self) -> MegolmRatchet:
        """The value at ``index + 1`` (libolm's ``megolm_advance``)."""
        if self.index == MAX_INDEX:
            raise ValueError("the Megolm ratchet is at its last index")
        index = self.index + 1
        mask, h = 0x00FFFFFF, 0
        while h < PARTS and index & mask:
            h += 1
            mask >>= 8
        parts = self._parts()
        for k in range(PARTS - 1, h - 1, -1):  # R(h) last: the others are rehashed from it
            _rehash(parts, h, k)
        return MegolmRatchet(index, b"".join(parts))

    def advanced_to(self, index: int) -> MegolmRatchet:
        """The value at a later ``index``, in at most 1,024 hashes (``megolm_advance_to``)."""
        if not self.index <= index <= MAX_INDEX:
            raise ValueError("a Megolm ratchet only moves forward, within 32 bits")
        parts, counter = self._parts(), self.index
        for j in range(PARTS):
            shift = (PARTS - j - 1) * 8
            steps = ((index >> shift) - (counter >> shift)) & 0xFF
            if steps == 0:
                continue  # no wrap-around: index >= counter, so R(j) needs no step
            for _ in range(steps - 1):
                _rehash(parts, j, j)
            for k in range(PARTS - 1, j - 1, -1):
                _rehash(parts, j, k)
            counter = index & ((0xFFFFFFFF << shift) & 0xFFFFFFFF)
        return MegolmRatchet(index, b"".join(parts))


def message_key(ratchet: MegolmRatchet) -> bytes:
    """Steppe's per-message secret from a ratchet value: an XChaCha20-Poly1305 key and
    nonce (:data:`MESSAGE_KEY_LEN` bytes). One ratchet value seals one message, so the
    derived nonce is never reused under its key."""
    return p.blake2b(ratchet.data, digest_size=MESSAGE_KEY_LEN, person=b"steppe-grp-mk")
