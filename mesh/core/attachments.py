"""Attachments as envelopes: a file's CHUNK envelopes and its manifest, and the record of
a file being received (pure functions and data; the node's part is
:mod:`mesh.core._incoming`).

The sealing is :mod:`crypto.attachment`'s. Here a file becomes ``count`` CHUNK envelopes,
each in the 16 KiB bucket with a tag and a receipt hash derived from the file key and its
index (unlinkable to one another on the air), the file's expiry hour, and the route key
of a routing strategy that wants one appended to the tag. The manifest lists the first 16
bytes of each chunk envelope's id, so the recipient finds its chunks in its store by id
whatever order and whichever carriers brought them, before or after the manifest.

The manifest travels as an ordinary message of content type :data:`CONTENT_FILE`, whose
receipt the recipient releases only once every chunk has arrived: the sender's
"delivered" means the whole file. Each chunk's own receipt is released as it arrives, so
relays drop the copies they carry chunk by chunk.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from crypto.attachment import (
    CHUNK_DATA,
    FILE_ID_LEN,
    ID_PREFIX,
    MAX_MIME,
    MAX_NAME,
    Manifest,
    chunk_count,
    chunk_receipt_secret,
    chunk_tag,
    file_digest,
    seal_chunk,
)
from crypto.primitives import KEY_LEN, Rng
from crypto.receipts import receipt_hash
from crypto.wire import expect_bytes, expect_int, expect_list
from mesh.core import envelope

CONTENT_FILE = 2  # a manifest (mesh.core.messages.CONTENT_TEXT is 1)


def chunk_envelopes(
    data: bytes, key: bytes, file_id: bytes, expiry_hour: int, budget: int, route: bytes = b""
) -> list[envelope.Envelope]:
    """The file's CHUNK envelopes (unstamped), in index order."""
    count = chunk_count(len(data))
    out = []
    for i in range(count):
        tag = chunk_tag(key, i) + route
        receipt = receipt_hash(chunk_receipt_secret(key, i))
        header = envelope.header_bytes(envelope.Kind.CHUNK, expiry_hour, tag, receipt)
        piece = data[i * CHUNK_DATA : (i + 1) * CHUNK_DATA]
        body = seal_chunk(key, file_id, i, count, piece, header)
        out.append(
            envelope.make(envelope.Kind.CHUNK, expiry_hour, tag, body, budget, receipt=receipt)
        )
    return out


def clean_name(name: str) -> str:
    """A file name as it may travel: its last path part, at most 255 bytes of UTF-8, no
    control characters (the reader's side renders it inert again)."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(ch for ch in base if ch.isprintable()) or "file"
    raw = base.encode("utf-8")[:MAX_NAME]
    return raw.decode("utf-8", "ignore")


def build(
    data: bytes, name: str, mime: str, expiry_hour: int, budget: int, rng: Rng, route: bytes = b""
) -> tuple[Manifest, list[envelope.Envelope]]:
    """A new file key and id, the file's chunk envelopes and the manifest naming them."""
    key, file_id = rng(KEY_LEN), rng(FILE_ID_LEN)
    chunks = chunk_envelopes(data, key, file_id, expiry_hour, budget, route)
    manifest = Manifest(
        file_id=file_id,
        key=key,
        name=clean_name(name),
        mime=mime[:MAX_MIME],
        size=len(data),
        digest=file_digest(data),
        ids=tuple(c.id()[:ID_PREFIX] for c in chunks),
    )
    return manifest, chunks


@dataclass(slots=True)
class Incoming:
    """A file being received: its manifest, who sent it, and which chunks have come."""

    sender: bytes
    msg_id: bytes
    created: int
    manifest: Manifest
    secret: bytes  # the manifest message's receipt secret, released once it is whole
    expiry: int
    got: bytearray = field(default_factory=bytearray)  # a bit per chunk

    def __post_init__(self) -> None:
        if not self.got:
            self.got = bytearray(-(-self.manifest.count // 8))

    def has(self, index: int) -> bool:
        return bool(self.got[index // 8] >> (index % 8) & 1)

    def mark(self, index: int) -> None:
        self.got[index // 8] |= 1 << (index % 8)

    @property
    def received(self) -> int:
        return sum(bin(b).count("1") for b in self.got)

    @property
    def complete(self) -> bool:
        return self.received == self.manifest.count

    def missing(self) -> list[int]:
        return [i for i in range(self.manifest.count) if not self.has(i)]

    def to_list(self) -> list[object]:
        return [
            self.sender,
            self.msg_id,
            self.created,
            self.manifest.encode(),
            self.secret,
            self.expiry,
            bytes(self.got),
        ]

    @classmethod
    def from_list(cls, obj: object) -> Incoming:
        f = expect_list(obj, 7, "incoming file")
        manifest = Manifest.decode(expect_bytes(f[3], "manifest"))
        got = expect_bytes(f[6], "chunks received", size=-(-manifest.count // 8))
        return cls(
            sender=expect_bytes(f[0], "sender", size=32),
            msg_id=expect_bytes(f[1], "message id"),
            created=expect_int(f[2], "created"),
            manifest=manifest,
            secret=expect_bytes(f[4], "receipt secret"),
            expiry=expect_int(f[5], "expiry"),
            got=bytearray(got),
        )
