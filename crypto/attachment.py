"""Attachments: a file of up to 10 MiB as chunks that travel on their own.

Theory of operation
-------------------
A file is cut into ``count`` pieces of :data:`CHUNK_DATA` bytes (the last one shorter),
and each piece is sealed into exactly one 16 KiB body (the largest size bucket, so every
chunk, the last included, looks like every other on the air) with XChaCha20-Poly1305
under a fresh random per-file key. The nonce is the chunk's index (24 bytes big-endian):
unique because each index is sealed once under a key used for one file only. The
associated data is ``(file id, index, count, last)`` and the chunk envelope's header, so a
chunk cannot be moved to another index, another file or another envelope, and a file
cannot be cut short by dropping its last chunk (only the chunk sealed as last says so).

The per-file key, the file id, the size, a BLAKE2b-256 digest of the whole file and the
first :data:`ID_PREFIX` bytes of every chunk envelope's id (its *manifest*) are sealed
inside an ordinary end-to-end message (a session message or a first contact), which
authenticates the sender. Nothing on a chunk names the file: its routing tag and receipt
hash are derived from the file key and the index (:func:`chunk_tag`,
:func:`chunk_receipt_secret`), so relays and radio listeners see unrelated 16 KiB
envelopes, in any order, from any carrier. A 10 MiB file is 641 chunks and a manifest of
about 10.5 kB, which fits Steppe's 12,000-byte message.

What it protects, and against whom: a chunk's content and its place in the file against
everyone without the file key (relays, neighbours, listeners); a forged, altered, swapped
or replayed chunk is refused by the recipient (wrong id prefix or AEAD failure); a
manifest that lies (size against count, more than 10 MiB, duplicate ids) is refused
whole; the reassembled file is checked against the digest. Not protected: that *some*
large transfer happens (many 16 KiB envelopes at once), and the file's approximate size
to anyone who can link the chunks by timing.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from crypto import primitives as p
from crypto.errors import DecodeError
from crypto.padding import MAX_BODY, pad, unpad
from crypto.receipts import SECRET_LEN
from crypto.wire import expect_bytes, expect_int, expect_list, expect_str, pack, strict_unpack

VERSION = 1
FILE_ID_LEN = 16
ID_PREFIX = 16  # bytes of each chunk envelope's id the manifest lists
CHUNK_DATA = MAX_BODY - p.TAG_LEN - 4  # 16,364 bytes of file per 16 KiB chunk
MAX_FILE = 10 * 1024 * 1024
MAX_CHUNKS = -(-MAX_FILE // CHUNK_DATA)  # 641
MAX_NAME = 255  # bytes of UTF-8
MAX_MIME = 64
DIGEST_LEN = 32
CHUNK_TAG_LEN = 8


def chunk_count(size: int) -> int:
    """How many chunks a file of ``size`` bytes takes (ValueError outside 1..MAX_FILE)."""
    if not 1 <= size <= MAX_FILE:
        raise ValueError(f"a file of {size} bytes is not 1 byte to {MAX_FILE} bytes")
    return -(-size // CHUNK_DATA)


def piece_len(size: int, index: int) -> int:
    """The length of chunk ``index``'s piece of a file of ``size`` bytes."""
    count = chunk_count(size)
    return CHUNK_DATA if index < count - 1 else size - (count - 1) * CHUNK_DATA


def file_hasher() -> hashlib.blake2b:
    """The file digest, fed piece by piece (a file is checked without holding it whole)."""
    return hashlib.blake2b(digest_size=DIGEST_LEN, person=b"steppe-file")


def file_digest(data: bytes) -> bytes:
    h = file_hasher()
    h.update(data)
    return h.digest()


def _derived(key: bytes, index: int, person: bytes, size: int) -> bytes:
    return p.blake2b(index.to_bytes(4, "big"), key=key, digest_size=size, person=person)


def chunk_tag(key: bytes, index: int) -> bytes:
    """The routing tag of chunk ``index``: unlinkable to the others without the key."""
    return _derived(key, index, b"steppe-chunk-tag", CHUNK_TAG_LEN)


def chunk_receipt_secret(key: bytes, index: int) -> bytes:
    """The delivery-receipt secret of chunk ``index`` (the recipient releases it)."""
    return _derived(key, index, b"steppe-chunk-rct", SECRET_LEN)


def _ad(file_id: bytes, index: int, count: int, header: bytes) -> bytes:
    return pack([file_id, index, count, index == count - 1]) + header


def _nonce(index: int) -> bytes:
    return index.to_bytes(p.XNONCE_LEN, "big")


def seal_chunk(
    key: bytes, file_id: bytes, index: int, count: int, piece: bytes, header: bytes
) -> bytes:
    """One chunk's 16 KiB body: ``piece`` padded and sealed under the file key."""
    if not 0 <= index < count <= MAX_CHUNKS:
        raise ValueError("chunk index out of range")
    if len(piece) > CHUNK_DATA:
        raise ValueError("piece larger than a chunk")
    plain = pad(piece, MAX_BODY - p.TAG_LEN)
    return p.xchacha_encrypt(key, _nonce(index), plain, _ad(file_id, index, count, header))


def open_chunk(
    key: bytes, file_id: bytes, index: int, count: int, body: bytes, header: bytes
) -> bytes:
    """The piece inside a chunk body; raises :class:`~crypto.errors.CryptoError` if the
    body was not sealed as chunk ``index`` of ``count`` of this file under this header."""
    if len(body) != MAX_BODY or not 0 <= index < count:
        raise DecodeError("not a chunk body")
    plain = p.xchacha_decrypt(key, _nonce(index), body, _ad(file_id, index, count, header))
    return unpad(plain)


@dataclass(frozen=True, slots=True)
class Manifest:
    """What the recipient needs to find, open and check a file's chunks."""

    file_id: bytes
    key: bytes
    name: str
    mime: str
    size: int
    digest: bytes
    ids: tuple[bytes, ...]  # the first ID_PREFIX bytes of each chunk envelope's id

    @property
    def count(self) -> int:
        return len(self.ids)

    def encode(self) -> bytes:
        return pack(
            [
                VERSION,
                self.file_id,
                self.key,
                self.name,
                self.mime,
                self.size,
                self.digest,
                b"".join(self.ids),
            ]
        )

    @classmethod
    def decode(cls, data: bytes) -> Manifest:
        """Strictly decode and check a manifest; :class:`DecodeError` on any lie."""
        obj = strict_unpack(data, max_size=len(data), max_array_len=8, max_map_len=0)
        f = expect_list(obj, 8, "manifest")
        if expect_int(f[0], "manifest version") != VERSION:
            raise DecodeError("unknown manifest version")
        size = expect_int(f[5], "file size", lo=1, hi=MAX_FILE)
        joined = expect_bytes(f[7], "chunk ids", max_size=MAX_CHUNKS * ID_PREFIX)
        ids = tuple(joined[i : i + ID_PREFIX] for i in range(0, len(joined), ID_PREFIX))
        if len(joined) != chunk_count(size) * ID_PREFIX:
            raise DecodeError("the manifest's size does not match its chunks")
        if len(set(ids)) != len(ids):
            raise DecodeError("the manifest lists a chunk twice")
        name = expect_str(f[3], "file name", max_len=MAX_NAME)
        if len(name.encode("utf-8")) > MAX_NAME:
            raise DecodeError("file name too long")
        return cls(
            file_id=expect_bytes(f[1], "file id", size=FILE_ID_LEN),
            key=expect_bytes(f[2], "file key", size=p.KEY_LEN),
            name=name,
            mime=expect_str(f[4], "media type", max_len=MAX_MIME),
            size=size,
            digest=expect_bytes(f[6], "file digest", size=DIGEST_LEN),
            ids=ids,
        )

    def open(self, index: int, body: bytes, header: bytes) -> bytes:
        """Chunk ``index``'s piece, checked: sealed under this file's key as that index,
        and exactly as long as the manifest's size says it must be."""
        piece = open_chunk(self.key, self.file_id, index, self.count, body, header)
        if len(piece) != piece_len(self.size, index):
            raise DecodeError("a chunk's length disagrees with the manifest's size")
        return piece
