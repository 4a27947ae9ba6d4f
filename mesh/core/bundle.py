"""File bundles for sneakernet: the sealed envelopes a node carries, in one file that a
courier takes on a USB stick between islands that share no network.

Format (canonical msgpack, :mod:`crypto.wire`): ``["steppe-bundle", 1, created, expires,
[frame, ...]]``. A bundle holds only sealed envelopes, exactly as relays hold them: no
sender, no recipient, nothing about the node that wrote it besides the creation time.
``expires`` is the latest expiry among its envelopes; an importer refuses a bundle that
has expired, that is larger than its limit (checked before parsing) or that does not
parse, and checks every envelope inside like one from a network peer.
"""

from __future__ import annotations

from dataclasses import dataclass

from crypto.errors import DecodeError
from crypto.wire import expect_bytes, expect_int, expect_list, expect_seq, pack, strict_unpack
from mesh.core.errors import PeerError

MAGIC = "steppe-bundle"
VERSION = 1
_HEAD = b"\x95" + pack(MAGIC)  # how every bundle starts: a 5-item array, then the magic
MAX_FRAMES = 1_000_000
MAX_FRAME = 17 * 1024


class BundleError(PeerError):
    """One readable line: why a bundle was refused."""


@dataclass(frozen=True, slots=True)
class Bundle:
    created: int
    expires: int
    frames: list[bytes]

    def encode(self) -> bytes:
        return pack([MAGIC, VERSION, self.created, self.expires, self.frames])


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
    if not data.startswith(_HEAD) and not _HEAD.startswith(data):  # (a cut-off head: damaged)
        raise BundleError("this file is not a Steppe bundle")
    try:
        f = expect_list(
            strict_unpack(
                data, max_size=max_bytes, max_bin_len=MAX_FRAME, max_array_len=MAX_FRAMES
            ),
            5,
            "bundle",
        )
        if f[1] != VERSION and isinstance(f[1], int) and 0 < f[1] < 1000:
            raise BundleError(
                f"this bundle was written by another version of Steppe (bundle version"
                f" {f[1]}; this one reads {VERSION})"
            )
        if f[1] != VERSION:
            raise DecodeError("bundle version")
        created, expires = expect_int(f[2], "created"), expect_int(f[3], "expires")
        frames = [expect_bytes(x, "frame") for x in expect_seq(f[4], "frames", MAX_FRAMES)]
    except DecodeError as exc:
        raise BundleError(DAMAGED) from exc
    if expires <= now:
        raise BundleError("the bundle has expired: everything in it is out of date")
    return Bundle(created, expires, frames)
