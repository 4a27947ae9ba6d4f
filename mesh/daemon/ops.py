"""The daemon's side of the local API's operations: one typed method per operation of
:mod:`mesh.ipc.calls`, on an object holding the daemon.

:meth:`Ops.handle` is the one dispatch from a checked request (:func:`mesh.ipc.parse_request`
made it) to its method, a ``match`` ending in ``assert_never``: an operation added to the
table and not here is a type error. A method refuses with :class:`mesh.ipc.IpcError`
and one readable line; the local API server sends it to the client as the reply's error.
Tests and benchmarks call the methods directly (``daemon.ops.send(...)``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, assert_never

from crypto.identity import fingerprint_words, safety_digits, safety_words
from crypto.noise import KeyPair
from mesh.core import bundle
from mesh.core.events import Action
from mesh.daemon import bulletins, file_ops
from mesh.daemon.history import Message
from mesh.ipc import IpcError
from mesh.ipc import calls as c
from mesh.profile import ProfileError, atomic_write

if TYPE_CHECKING:
    from mesh.daemon.daemon import Daemon


class Ops:
    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon

    def handle(self, call: c.AnyCall, subscribe: Callable[[], None]) -> Any:
        """Carry out one request; ``subscribe`` makes the asking client a subscriber."""
        match call:
            case c.Status():
                return self.status()
            case c.Peers():
                return self.peers()
            case c.Me():
                return self.me()
            case c.SafetyNumber(name):
                return self.safety_number(name)
            case c.Contacts():
                return self.contacts()
            case c.ContactAdd(card, name, replace):
                return self.contact_add(card, name, replace)
            case c.ContactVerify(name, fingerprint):
                return self.contact_verify(name, fingerprint)
            case c.ContactAddSender(fingerprint, name):
                return self.contact_add_sender(fingerprint, name)
            case c.ContactRemove(name):
                return self.contact_remove(name)
            case c.ContactRename(name, new_name):
                return self.contact_rename(name, new_name)
            case c.Conversations():
                return self.conversations()
            case c.Messages(contact, limit):
                return self.messages(contact, limit)
            case c.Send(contact, text):
                return self.send(contact, text)
            case c.SendFile(contact, path):
                return file_ops.send_file(self.daemon, contact, path)
            case c.Files(contact):
                return file_ops.files(self.daemon, contact)
            case c.FileSave(file, path):
                return file_ops.file_save(self.daemon, file, path)
            case c.FileDelete(file):
                return file_ops.file_delete(self.daemon, file)
            case c.Subscribe():
                subscribe()
                return True
            case c.BulletinPost(text, topic, hours, persona):
                return self.bulletin_post(text, topic, hours, persona)
            case c.BulletinList(limit):
                return self.bulletin_list(limit)
            case c.BulletinEndorse(post_id):
                return self.bulletin_endorse(post_id)
            case c.Personas():
                return bulletins.personas(self.daemon)
            case c.PersonaNew(name):
                return bulletins.persona_new(self.daemon, name)
            case c.Export(path, max_bytes):
                return self.export(path, max_bytes)
            case c.Import(path):
                return self.import_(path)
            case c.Panic():
                return self.panic()
            case _:
                assert_never(call)

    # ---- the daemon and its links ------------------------------------------------------
    def status(self) -> c.StatusInfo:
        from mesh.daemon.daemon import relay_link_key

        d = self.daemon
        relay = d.config.mode == "relay"
        return c.StatusInfo(
            name=d.profile.name,
            fingerprint=d.profile.identity.public().fingerprint.hex(),
            mode=d.config.mode,
            link_key=KeyPair.from_private(relay_link_key(d.profile)).public.hex() if relay else "",
            uptime=int(d.clock() - d.started),
            tcp_port=d.tcp_port,
            links=len(d.links),
            open_links=sum(1 for x in d.links.values() if x.opened),
            envelopes=d.store.count(),
            store_bytes=d.store.total_bytes(),
            node_stats=dict(sorted(d.node.stats.items())),
            daemon_stats=dict(sorted(d.stats.items())),
        )

    def peers(self) -> list[c.PeerRow]:
        d = self.daemon
        return [
            c.PeerRow(x.id, x.kind, x.remote, x.opened, int(d.clock() - x.since))
            for x in sorted(d.links.values(), key=lambda x: x.id)
        ]

    # ---- contacts (mesh.daemon.contacts) ------------------------------------------------
    def me(self) -> c.Card:
        p = self.daemon.profile
        words = " ".join(fingerprint_words(p.identity.sign_public))
        return c.Card(p.name, p.identity.public().fingerprint.hex(), words, p.card.encode())

    def safety_number(self, name: str) -> c.Safety:
        p = self.daemon.profile
        try:
            contact = p.contact(name)
        except ProfileError as exc:
            raise IpcError(str(exc)) from None
        mine, theirs = p.identity.sign_public, contact.identity.sign_public
        return c.Safety(
            contact.name,
            contact.identity.fingerprint.hex(),
            safety_digits(mine, theirs),
            " ".join(safety_words(mine, theirs)),
        )

    def contacts(self) -> list[c.ContactRow]:
        return self.daemon.live.rows()

    def contact_add(self, card: str, name: str = "", replace: bool = False) -> c.ContactRow:
        return self.daemon.live.add(card, name, replace)

    def contact_add_sender(self, fingerprint: str, name: str) -> c.ContactRow:
        return self.daemon.live.add_sender(fingerprint, name)

    def contact_verify(self, name: str, fingerprint: str) -> c.ContactRow:
        return self.daemon.live.verify(name, fingerprint)

    def contact_remove(self, name: str) -> c.ContactRow:
        return self.daemon.live.remove(name)

    def contact_rename(self, name: str, new_name: str) -> c.ContactRow:
        return self.daemon.live.rename(name, new_name)

    # ---- messages -----------------------------------------------------------------------
    def _row(self, m: Message) -> c.MessageRow:
        name = self.daemon.live.name_of(m.contact)
        return c.MessageRow(
            m.contact, name, m.outgoing, m.msg_id, m.created, m.text, m.state, m.carriers, m.file
        )

    def conversations(self) -> list[c.MessageRow]:
        return [self._row(m) for m in self.daemon.history.conversations().values()]

    def messages(self, contact: str = "", limit: int = 50) -> list[c.MessageRow]:
        d = self.daemon
        return [self._row(m) for m in d.history.messages(d.contact_key(contact), limit)]

    def send(self, contact: str, text: str) -> c.Sent:
        return c.Sent(self.daemon.send_text(contact, text))

    # ---- bulletins (mesh.daemon.bulletins) ---------------------------------------------
    def bulletin_post(
        self, text: str, topic: str = "", hours: int = 72, persona: str = ""
    ) -> c.Posted:
        return bulletins.post(self.daemon, text, topic, hours, persona)

    def bulletin_list(self, limit: int = 50) -> list[c.BulletinRow]:
        return bulletins.feed(self.daemon, limit)

    def bulletin_endorse(self, post_id: str) -> c.Endorsed:
        return bulletins.endorse(self.daemon, post_id)

    # ---- bundles (sneakernet) -----------------------------------------------------------
    def export(self, path: str, max_bytes: int = 0) -> c.Exported:
        d = self.daemon
        limit = max_bytes or d.config.bundle_max_bytes
        receipts, until = d.node.courier.export_receipts(d.now())
        room = limit - 64 - (bundle.RECEIPT_BYTES * len(receipts))
        frames, latest = d.node.courier.export_frames(room, d.now())
        data = bundle.Bundle(d.now(), max(latest, until), frames, receipts).encode()
        try:
            atomic_write(Path(path), data)
        except OSError as exc:
            raise IpcError(f"cannot write {path}: {exc.strerror}") from None
        return c.Exported(len(frames), len(receipts), len(data))

    def import_(self, path: str) -> dict[str, int]:
        d = self.daemon
        limit = d.config.bundle_max_bytes
        try:
            with open(path, "rb") as f:
                data = f.read(limit + 1)
        except OSError as exc:
            raise IpcError(f"cannot read {path}: {exc.strerror}") from None
        try:
            b = bundle.decode(data, limit, d.now())
        except bundle.BundleError as exc:
            raise IpcError(f"{path}: {exc}") from None
        counts: dict[str, int] = {}

        def step(now: int) -> list[Action]:
            actions, result = d.node.courier.import_bundle(b.frames, b.receipts, b"file", now)
            counts.update(result.as_dict())
            return actions

        d.call_node(step)
        return {"envelopes": len(b.frames), **counts}

    def panic(self) -> bool:
        """Forget the keys in memory and stop at once, saving nothing (the CLI has already
        shredded the key slots and deletes the files next)."""
        d = self.daemon
        d._panicked = True
        d.profile.data_key = b""
        d.node.forget_sessions()
        if d._nursery is not None:
            d._nursery.cancel_scope.cancel()
        return True
