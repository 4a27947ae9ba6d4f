"""File bundles for sneakernet: the sealed envelopes a node carries, in one file that a
courier takes on a USB stick between islands that share no network.

Format (canonical msgpack, :mod:`crypto.wire`): ``["steppe-bundle", 2, created, expires,
[frame, ...], [receipt secret, ...]]`` (version 1, still read, had no receipts). A bundle
holds only sealed envelopes, exactly as relays hold them, and the delivery receipts the
writer knows were released, exactly as a node passes them to its neighbours: no sender,
no recipient, nothing about the node that wrote it besides the creation time. Receipts
travel both ways, so mail carried by hand stops being "queued" at its sender once a
bundle from the recipient's side comes back, and relays on the way purge what was
delivered. ``expires`` is the latest expiry among its envelopes and receipts; an importer
refuses a bundle that has expired, that is larger than its limit (checked before parsing)
or that does not parse, and checks every envelope and receipt inside like one from a
network peer.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from crypto.errors import DecodeError
from crypto.receipts import SECRET_LEN
from crypto.wire import expect_bytes, expect_int, expect_seq, pack, strict_unpack
from mesh.core.errors import PeerError

MAGIC = "steppe-bundle"
VERSION = 2
READS = (1, 2)
_MAGIC = pack(MAGIC)  # every bundle starts with a short array (1 byte), then this
MAX_FRAMES = 1_000_000
MAX_RECEIPTS = 1_000_000
RECEIPT_BYTES = SECRET_LEN + 2  # one receipt's share of an encoded bundle
MAX_FRAME = 17 * 1024


class BundleError(PeerError):
    """One readable line: why a bundle was refused."""


@dataclass(frozen=True, slots=True)
class Bundle:
    created: int
    expires: int
    frames: list[bytes]
    receipts: list[bytes] = field(default_factory=list)

    def encode(self) -> bytes:
        return pack([MAGIC, VERSION, self.created, self.expires, self.frames, self.receipts])


def make(frames: list[bytes], expiries: list[int], now: int) -> Bundle:
    return Bundle(now, max(expiries, default=now), frames)


DAMAGED = "this bundle is damaged or incomplete (was it copied whole?)"


def decode(data: bytes, max_bytes: int, now: int) -> Bundle:
    """The bundle in ``data``; :class:`BundleError` says in the user's words why not (the
    parser's :class:`DecodeError` is chained as its cause)."""
    if len(data) > max_bytes:
        raise BundleError(
            f"this bundle is larger than the limit of {max_bytes} bytes"
            " (store.bundle_max_bytes in the config)"
        )
    if not data:
        raise BundleError("this file is empty, not a Steppe bundle")
    if not _looks_like_a_bundle(data):
        raise BundleError("this file is not a Steppe bundle")
    try:
        f = expect_seq(
            strict_unpack(
                data, max_size=max_bytes, max_bin_len=MAX_FRAME, max_array_len=MAX_FRAMES
            ),
            "bundle",
            15,
        )
        if f[1] not in READS and isinstance(f[1], int) and 0 < f[1] < 1000:
            raise BundleError(
                f"this bundle was written by another version of Steppe (bundle version"
                f" {f[1]}; this one reads {' and '.join(map(str, READS))})"
            )
        if len(f) < 5 or f[0] != MAGIC or f[1] not in READS or len(f) != 4 + f[1]:
            raise DecodeError("not the layout of its bundle version")
        created, expires = expect_int(f[2], "created"), expect_int(f[3], "expires")
        frames = [expect_bytes(x, "frame") for x in expect_seq(f[4], "frames", MAX_FRAMES)]
        receipts = [
            expect_bytes(x, "receipt", size=SECRET_LEN)
            for x in (expect_seq(f[5], "receipts", MAX_RECEIPTS) if len(f) > 5 else [])
        ]
    except DecodeError as exc:
        raise BundleError(DAMAGED) from exc
    if expires <= now:
        raise BundleError("the bundle has expired: everything in it is out of date")
    return Bundle(created, expires, frames, receipts)


def _looks_like_a_bundle(data: bytes) -> bool:
    """A short msgpack array whose first item is the magic (or a cut-off start of one:
    that is a damaged bundle, not some other file)."""
    head = data[1 : 1 + len(_MAGIC)]
    return 0x95 <= data[0] <= 0x9F and (head == _MAGIC or _MAGIC.startswith(head))
