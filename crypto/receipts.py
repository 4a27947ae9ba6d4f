"""Delivery receipts as anti-packets.

The sender draws a 16-byte secret, puts ``receipt_hash(secret)`` in the envelope header and
the secret inside the sealed body. Only the recipient can open the body, so only the
recipient can release the secret; anyone can check a released secret against the hash and
purge the matching envelope. A "receipt" that hashes to nothing known is ignored: forging
one means finding a BLAKE2b preimage.
"""

from __future__ import annotations

from crypto import primitives as p

SECRET_LEN = 16
HASH_LEN = 16


def receipt_hash(secret: bytes) -> bytes:
    return p.blake2b(secret, digest_size=HASH_LEN, person=b"steppe-receipt")
