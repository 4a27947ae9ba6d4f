"""What a node originates (private to :mod:`mesh.core.node`): its messages to contacts,
its prekey record, its bulletins.

A message is sealed in the newest usable session with the contact, or else as a first
contact to their prekey (which starts a session); it is stamped, stored protected, its
receipt awaited, and offered on every open link at once.
"""

from __future__ import annotations

from crypto.bulletin import Bulletin
from mesh.core._context import Context
from mesh.core._delivery import Delivery
from mesh.core._index import EnvelopeIndex
from mesh.core._receipts import Receipts
from mesh.core._trade import Trader
from mesh.core.config import EMPTY_TEXT, MAX_BODY, hint_for
from mesh.core.envelope import Envelope
from mesh.core.errors import LocalError
from mesh.core.events import Action, MessageQueued, SendFailed, SendMessage
from mesh.core.messages import (
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
        env = stamped(self._seal(ev, msg_id, now), self._ctx.config.mint_difficulty, self._ctx.rng)
        status = self._index.store_local(env, now)
        if status is not PutStatus.STORED:  # cannot happen after the room check above
            raise LocalError(f"own envelope not stored: {status.value}")
        self._receipts.expect(env, msg_id)
        return [MessageQueued(msg_id, env.id(), ev.ref), *self._trader.offer_everywhere([env.id()])]

    def _seal(self, ev: SendMessage, msg_id: bytes, now: int) -> Envelope:
        """The message sealed in a session with the recipient, or as a first contact."""
        ctx = self._ctx
        budget = min(ctx.strategy.INITIAL_BUDGET, ctx.config.max_budget)
        ttl = min(ev.ttl, ctx.config.max_ttl)
        sess = self._delivery.session_for(ev.recipient)
        if sess is not None:
            route = ctx.strategy.route_for(sess.send_tag_key, now)
            env = session_envelope(
                sess,
                ev.body,
                now=now,
                ttl=ttl,
                rng=ctx.rng,
                msg_id=msg_id,
                budget=budget,
                route=route,
            )
            sess.last_used = now
            ctx.state.touch_session(sess)
            return env
        contact = ctx.contacts[ev.recipient]
        assert contact.prekey is not None
        secret: list[bytes] = []
        env = first_contact_envelope(
            ctx.identity,
            contact.identity,
            contact.prekey,
            ev.body,
            now=now,
            ttl=ttl,
            rng=ctx.rng,
            budget=budget,
            tag=hint_for(contact.prekey.public),
            msg_id=msg_id,
            secret_out=secret,
        )
        new = Session.as_alice(secret[0], ev.recipient, contact.prekey.public, ctx.rng, now)
        self._delivery.add_session(new)
        return env

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
