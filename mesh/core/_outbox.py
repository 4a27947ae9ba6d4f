"""What a node originates (private to :mod:`mesh.core.node`): its messages to contacts,
its prekey record, its bulletins.

A message is sealed in the newest usable session with the contact, or else as a first
contact to their prekey (which starts a session); it is stamped, stored protected, its
receipt awaited, and offered on every open link at once.
"""

from __future__ import annotations

from crypto.attachment import MAX_FILE, chunk_count
from crypto.bulletin import Bulletin
from mesh.core._context import ContactKeys, Context
from mesh.core._delivery import Delivery
from mesh.core._index import EnvelopeIndex
from mesh.core._receipts import Receipts
from mesh.core._trade import Trader
from mesh.core.attachments import CONTENT_FILE, build
from mesh.core.config import EMPTY_TEXT, MAX_BODY, hint_for
from mesh.core.envelope import MAX_FRAME, Envelope, coarse_expiry
from mesh.core.errors import LocalError
from mesh.core.events import Action, MessageQueued, SendFailed, SendFile, SendMessage
from mesh.core.groups import CONTENT_GROUP
from mesh.core.messages import (
    CONTENT_TEXT,
    bulletin_envelope,
    first_contact_envelope,
    frame_bound,
    is_blank,
    prekey_envelope,
    session_envelope,
    stamped,
)
from mesh.core.session import Session
from mesh.core.store import PutStatus


class Outbox:
    def __init__(
        self,
        ctx: Context,
        index: EnvelopeIndex,
        delivery: Delivery,
        receipts: Receipts,
        trader: Trader,
    ) -> None:
        self._ctx = ctx
        self._index = index
        self._delivery = delivery
        self._receipts = receipts
        self._trader = trader

    def can_write(self, peer: bytes, now: int) -> bool:
        """Could a message to this contact be sealed now (a session, or a live prekey)?"""
        contact = self._ctx.contacts.get(peer)
        if contact is None:
            return False
        live_prekey = contact.prekey is not None and contact.prekey.expires > now
        return live_prekey or self._delivery.session_for(peer) is not None

    def _refusal(self, ev: SendMessage, now: int) -> str:
        """Why this message cannot be sent ("" if it can)."""
        contact = self._ctx.contacts.get(ev.recipient)
        if contact is None:
            return "not a contact"
        if is_blank(ev.body):
            return EMPTY_TEXT
        if len(ev.body) > MAX_BODY:
            return f"message too long ({len(ev.body)} bytes, at most {MAX_BODY})"
        no_prekey = contact.prekey is None or contact.prekey.expires <= now
        if self._delivery.session_for(ev.recipient) is None and no_prekey:
            return "no current prekey for this contact yet"
        if not self._ctx.store.would_admit_protected(frame_bound(len(ev.body))):
            # Checked before sealing, so no session state moves for a message never sent.
            return "the envelope store is full of your own mail"
        return ""

    def send(self, ev: SendMessage, now: int) -> list[Action]:
        why = self._refusal(ev, now)
        if why:
            return [SendFailed(ev.recipient, why, ev.ref)]
        msg_id = self._ctx.rng(16)
        sealed = self._seal(ev.recipient, ev.body, ev.ttl, msg_id, now)
        env = stamped(sealed, self._ctx.config.mint_difficulty, self._ctx.rng)
        status = self._index.store_local(env, now)
        if status is not PutStatus.STORED:  # cannot happen after the room check above
            raise LocalError(f"own envelope not stored: {status.value}")
        self._receipts.expect(env, msg_id)
        return [MessageQueued(msg_id, env.id(), ev.ref), *self._trader.offer_everywhere([env.id()])]

    def _seal(
        self,
        recipient: bytes,
        body: bytes,
        ttl: int,
        msg_id: bytes,
        now: int,
        content_type: int = CONTENT_TEXT,
    ) -> Envelope:
        """The message sealed in a session with the recipient, or as a first contact."""
        ctx = self._ctx
        budget = self._budget()
        ttl = min(ttl, ctx.config.max_ttl)
        sess = self._delivery.session_for(recipient)
        if sess is not None:
            env = session_envelope(
                sess,
                body,
                now=now,
                ttl=ttl,
                rng=ctx.rng,
                msg_id=msg_id,
                content_type=content_type,
                budget=budget,
                route=ctx.strategy.route_for(sess.send_tag_key, now),
            )
            sess.last_used = now
            ctx.state.touch_session(sess)
            return env
        contact = self._keys(recipient)
        assert contact is not None
        assert contact.prekey is not None
        secret: list[bytes] = []
        env = first_contact_envelope(
            ctx.identity,
            contact.identity,
            contact.prekey,
            body,
            now=now,
            ttl=ttl,
            rng=ctx.rng,
            content_type=content_type,
            budget=budget,
            tag=hint_for(contact.prekey.public),
            msg_id=msg_id,
            secret_out=secret,
        )
        new = Session.as_alice(secret[0], recipient, contact.prekey.public, ctx.rng, now)
        self._delivery.add_session(new)
        return env

    def _keys(self, peer: bytes) -> ContactKeys | None:
        """A contact's keys, or a group member's from their card (mesh.core.groups)."""
        contact = self._ctx.contacts.get(peer)
        if contact is not None:
            return contact
        card = self._ctx.state.cards.get(peer)
        return None if card is None else ContactKeys(card.identity, card.prekey)

    def send_control(self, peer: bytes, body: bytes, now: int) -> list[Action] | None:
        """A group's control record to a member, as a pairwise message (in a session, or
        a first contact to their prekey); None if there is no way to them yet or no room.
        No receipt is awaited by the user (it still purges the copies)."""
        if self._delivery.session_for(peer) is None:
            keys = self._keys(peer)
            if keys is None or keys.prekey is None or keys.prekey.expires <= now:
                return None
        if not self._ctx.store.would_admit_protected(frame_bound(len(body))):
            return None
        ctx = self._ctx
        sealed = self._seal(peer, body, ctx.config.max_ttl, ctx.rng(16), now, CONTENT_GROUP)
        env = stamped(sealed, ctx.config.mint_difficulty, ctx.rng)
        if self._index.store_local(env, now) is not PutStatus.STORED:
            return None
        return self._trader.offer_everywhere([env.id()])

    def _budget(self) -> int:
        return min(self._ctx.strategy.INITIAL_BUDGET, self._ctx.config.max_budget)

    def _route(self, recipient: bytes, now: int) -> bytes:
        """The routing strategy's destination key for a session with ``recipient`` (a
        file's chunks follow the manifest's route)."""
        sess = self._delivery.session_for(recipient)
        return b"" if sess is None else self._ctx.strategy.route_for(sess.send_tag_key, now)

    # ---- attachments ------------------------------------------------------------------
    def _file_refusal(self, ev: SendFile, now: int) -> str:
        contact = self._ctx.contacts.get(ev.recipient)
        if contact is None:
            return "not a contact"
        if not 1 <= len(ev.data) <= MAX_FILE:
            return f"a file must be 1 byte to {MAX_FILE} bytes (this one is {len(ev.data)})"
        if not self.can_write(ev.recipient, now):
            return "no current prekey for this contact yet"
        need = chunk_count(len(ev.data)) * MAX_FRAME + frame_bound(MAX_BODY)  # chunks: 16 KiB
        if not self._ctx.store.would_admit_protected(need):
            return "the envelope store has no room for this file"
        return ""

    def send_file(self, ev: SendFile, now: int) -> list[Action]:
        """A file as stamped CHUNK envelopes and a manifest message, all stored as ours and
        offered; the manifest's receipt (the recipient releases it once the file is
        whole) acknowledges the file."""
        why = self._file_refusal(ev, now)
        if why:
            return [SendFailed(ev.recipient, why, ev.ref)]
        ctx = self._ctx
        ttl = min(ev.ttl, ctx.config.max_ttl)
        expiry_hour = coarse_expiry(now, ttl)
        route = self._route(ev.recipient, now)
        manifest, chunks = build(
            ev.data, ev.name, ev.mime, expiry_hour, self._budget(), ctx.rng, route
        )
        stored: list[bytes] = []
        for chunk in chunks:
            chunk = stamped(chunk, ctx.config.mint_difficulty, ctx.rng)
            if self._index.store_local(chunk, now) is not PutStatus.STORED:
                for eid in stored:  # the room check above makes this rare: undo
                    ctx.store.delete(eid, now)
                return [SendFailed(ev.recipient, "the envelope store has no room", ev.ref)]
            stored.append(chunk.id())
        msg_id = ctx.rng(16)
        sealed = self._seal(ev.recipient, manifest.encode(), ttl, msg_id, now, CONTENT_FILE)
        env = stamped(sealed, ctx.config.mint_difficulty, ctx.rng)
        if self._index.store_local(env, now) is not PutStatus.STORED:
            raise LocalError("own manifest not stored after the room check")
        self._receipts.expect(env, msg_id)
        offers = self._trader.offer_everywhere([env.id(), *stored])
        return [MessageQueued(msg_id, env.id(), ev.ref), *offers]

    def publish_prekey(self, now: int) -> list[Action]:
        """Keep our newest prekey record as a PREKEY envelope (in memory) and offer it."""
        ctx = self._ctx
        current = ctx.ring.current(now)
        if current is None:
            current = ctx.ring.create(ctx.identity, now, ctx.rng)
        env = stamped(
            prekey_envelope(current.record, ctx.strategy.INITIAL_BUDGET),
            ctx.config.mint_difficulty,
            ctx.rng,
        )
        self._index.publish(env, now)
        return self._trader.offer_everywhere([env.id()])

    def publish_envelope(self, env: Envelope, now: int) -> list[Action]:
        """Store an envelope this node originates (protected, like its own messages) and
        offer it on every open link."""
        if self._index.store_local(env, now) is not PutStatus.STORED:
            return []
        return self._trader.offer_everywhere([env.id()])

    def publish_bulletin(
        self, bulletin: Bulletin, now: int
    ) -> tuple[list[Action], Envelope | None]:
        """A signed bulletin as a stamped BULLETIN envelope, stored and offered; a post
        with no visible text is refused (:class:`SendFailed` to its persona). Returns the
        envelope too, if it was stored."""
        bulletin.verify(now)
        if bulletin.type == "post" and is_blank(bulletin.body):
            return [SendFailed(bulletin.persona, EMPTY_TEXT)], None
        env = stamped(
            bulletin_envelope(bulletin, self._ctx.strategy.INITIAL_BUDGET),
            self._ctx.config.mint_difficulty,
            self._ctx.rng,
        )
        actions = self.publish_envelope(env, now)
        return actions, env if self._ctx.store.has(env.id()) else None
