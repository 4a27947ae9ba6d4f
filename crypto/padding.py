"""Size buckets. Every sealed body on the wire is exactly one of :data:`BUCKETS` bytes long,
so a relay or radio listener learns only which bucket a message fell into.

Chosen from measured overheads: a session message adds 143 bytes to its text (inner
payload 46, ratchet header and tag 54, padding length 4, nonce and tag 40), a first
contact 282 (the sender's identity and certificate, Noise X's keys and tags). The
smallest bucket, 512 bytes, holds any text up to 230 bytes of either kind, so every
short message (a text of up to 200 bytes, as most are) looks the same on the air
whether it is a first contact or not and whatever its length; then 2 KiB (up to 1,766
bytes), 8 KiB and 16 KiB (up to Steppe's 12,000-byte limit)."""

from __future__ import annotations

from crypto.errors import DecodeError

BUCKETS: tuple[int, ...] = (512, 2048, 8192, 16384)
MAX_BODY = BUCKETS[-1]


def bucket_for(size: int) -> int:
    """The smallest bucket of at least ``size`` bytes (ValueError if none is big enough)."""
    for bucket in BUCKETS:
        if size <= bucket:
            return bucket
    raise ValueError(f"{size} bytes does not fit the largest bucket ({MAX_BODY})")


def pad(data: bytes, total: int) -> bytes:
    """4-byte big-endian length, the data, then zeros up to ``total`` bytes."""
    if len(data) + 4 > total:
        raise ValueError("data does not fit")
    return len(data).to_bytes(4, "big") + data + bytes(total - 4 - len(data))


def unpad(padded: bytes) -> bytes:
    """Inverse of :func:`pad`; rejects a bad length or non-zero padding."""
    if len(padded) < 4:
        raise DecodeError("padded block too short")
    n = int.from_bytes(padded[:4], "big")
    if n > len(padded) - 4:
        raise DecodeError("padded length out of range")
    if any(padded[4 + n :]):
        raise DecodeError("non-zero padding")
    return padded[4 : 4 + n]
