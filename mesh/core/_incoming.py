"""Attachments being received (private to :mod:`mesh.core.node`).

A manifest message from a contact registers an :class:`~mesh.core.attachments.Incoming`
(a durable row) and the first 16 bytes of each of its chunk envelopes' ids, so a chunk is
recognised by id the moment it arrives (protected, opened, its piece handed to the driver
as :class:`~mesh.core.events.ChunkReceived`) and chunks that came first are found in the
store. Bounds: at most ``max_incoming_files`` files and ``max_incoming_bytes`` bytes
in progress (a manifest over either is refused, and said so, and never acknowledged; 0
files: this node takes none), and files only from contacts unless
``files_from_strangers`` (a stranger's first contact may carry text, not a file that
fills the disk); a file is given up when its
message expires. A chunk that does not open as the manifest says (a wrong index, a
tampered or truncated body, a length that disagrees with the size) is counted and
dropped. Each chunk's receipt is released as it arrives, the manifest's once the file is
whole, so its sender's "delivered" means every chunk.
"""

from __future__ import annotations

from dataclasses import replace

from crypto.attachment import ID_PREFIX, Manifest, chunk_receipt_secret
from crypto.errors import CryptoError, DecodeError
from mesh.core._context import Context
from mesh.core._receipts import Receipts
from mesh.core.attachments import Incoming
from mesh.core.envelope import Envelope, EnvelopeError, decode
from mesh.core.events import Action, ChunkReceived, FileDropped, FileOffered, FileReceived
from mesh.core.stats import Refusal, Stat


class IncomingFiles:
    def __init__(self, ctx: Context, receipts: Receipts) -> None:
        self._ctx = ctx
        self._state = ctx.state
        self._receipts = receipts
        self._chunks: dict[bytes, tuple[bytes, int]] = {}  # id prefix -> (file id, index)

    # ---- a manifest arrives -----------------------------------------------------------
    def offered(
        self,
        env: Envelope,
        eid: bytes,
        sender: bytes,
        created: int,
        msg_id: bytes,
        body: bytes,
        secret: bytes,
        now: int,
    ) -> list[Action]:
        """A delivered manifest message: register the file, open the chunks already here."""
        try:
            manifest = Manifest.decode(body)
        except DecodeError as exc:
            blank = FileOffered(sender, created, msg_id, b"", "", "", 0, 0, b"")
            return self._refuse(blank, f"a malformed file manifest ({exc})", eid, now)
        offer = FileOffered(
            sender,
            created,
            msg_id,
            manifest.file_id,
            manifest.name,
            manifest.mime,
            manifest.size,
            manifest.count,
            manifest.digest,
        )
        why = self._refusal(manifest, sender)
        if why:
            return self._refuse(offer, why, eid, now)
        inc = Incoming(sender, msg_id, created, manifest, secret, env.expiry)
        self._state.files[manifest.file_id] = inc
        self._state.touch_file(manifest.file_id)
        self._index(inc)
        return [offer, *self._open_stored(inc, now)]

    def _refuse(self, offer: FileOffered, why: str, eid: bytes, now: int) -> list[Action]:
        """Say why a file will not be received. Its receipt is never released: the
        sender's "delivered" means the whole file, and this one will not be whole here."""
        self._ctx.stats.count(Stat.MANIFESTS_REFUSED)
        self._ctx.store.delete(eid, now)  # relays carry it on until it expires
        return [replace(offer, refused=why)]

    def _refusal(self, m: Manifest, sender: bytes) -> str:
        files, cfg = self._state.files, self._ctx.config
        if cfg.max_incoming_files == 0:
            return "this device does not take files"
        if sender not in self._ctx.contacts and not cfg.files_from_strangers:
            return "files are taken from contacts only"
        if m.file_id in files:
            return "this file is already being received"
        if len(files) >= cfg.max_incoming_files:
            return f"{len(files)} files are already being received"
        busy = sum(f.manifest.size for f in files.values())
        if busy + m.size > cfg.max_incoming_bytes:
            return f"no room: {busy} bytes of files are already being received"
        if any(i in self._chunks for i in m.ids):
            return "the manifest names another file's chunk"
        return ""

    def _index(self, inc: Incoming) -> None:
        fid = inc.manifest.file_id
        for i, prefix in enumerate(inc.manifest.ids):
            if not inc.has(i):
                self._chunks[prefix] = (fid, i)

    def _open_stored(self, inc: Incoming, now: int) -> list[Action]:
        store, actions = self._ctx.store, []
        for i in inc.missing():
            prefix = inc.manifest.ids[i]
            for eid in store.ids_in_range(prefix, _after(prefix), limit=4):
                frame = store.get(eid)
                if frame is not None:
                    actions += self.open_chunk(decode(frame), eid, now)
        return actions

    # ---- chunks -----------------------------------------------------------------------
    def awaits(self, eid: bytes) -> bool:
        return eid[:ID_PREFIX] in self._chunks

    def refuse(self, eid: bytes) -> Refusal | None:
        """A relay configured not to carry attachments refuses chunks not for us."""
        if self._ctx.config.relay_chunks or self.awaits(eid):
            return None
        return Refusal.CHUNKS_NOT_CARRIED

    def open_chunk(self, env: Envelope, eid: bytes, now: int) -> list[Action]:
        where = self._chunks.get(eid[:ID_PREFIX])
        if where is None:
            return []
        fid, index = where
        inc = self._state.files[fid]
        try:
            piece = inc.manifest.open(index, env.body, env.header())
        except (CryptoError, EnvelopeError):
            self._ctx.stats.count(Stat.CHUNKS_REFUSED)
            self._ctx.store.delete(eid, now)
            return []
        del self._chunks[eid[:ID_PREFIX]]
        inc.mark(index)
        self._state.touch_file(fid)
        self._ctx.store.protect(eid)
        if not self._receipts.hold(chunk_receipt_secret(inc.manifest.key, index), env, now):
            self._ctx.store.delete(eid, now)
        self._ctx.stats.count(Stat.CHUNKS_RECEIVED)
        actions: list[Action] = [ChunkReceived(fid, index, piece, inc.received, inc.manifest.count)]
        if inc.complete:
            if inc.secret:
                self._receipts.hold_secret(inc.secret, inc.expiry, now)
            self._state.drop_file(fid)
            actions.append(FileReceived(fid, inc.msg_id))
        return actions

    # ---- start and time ---------------------------------------------------------------
    def reindex(self) -> None:
        """After a start: the chunk table from the saved files."""
        self._chunks = {}
        for inc in self._state.files.values():
            self._index(inc)

    def open_all_stored(self, now: int) -> list[Action]:
        """After :meth:`reindex`: open the chunks of files in progress already stored."""
        actions: list[Action] = []
        for inc in list(self._state.files.values()):
            actions += self._open_stored(inc, now)
        return actions

    def expire(self, now: int) -> list[Action]:
        gone = [f for f in self._state.files.values() if f.expiry <= now]
        for inc in gone:
            fid = inc.manifest.file_id
            self._state.drop_file(fid)
            self._chunks = {p: v for p, v in self._chunks.items() if v[0] != fid}
        return [FileDropped(f.manifest.file_id, "expired") for f in gone]

    def in_progress(self) -> list[Incoming]:
        return list(self._state.files.values())


def _after(prefix: bytes) -> bytes | None:
    """The smallest byte string greater than every string starting with ``prefix``."""
    n = int.from_bytes(prefix, "big") + 1
    if n >> (8 * len(prefix)):
        return None
    return n.to_bytes(len(prefix), "big")
