"""Delivery receipts (private to :mod:`mesh.core.node`): receipts as anti-packets.

Three tables, all durable rows in :class:`~mesh.core.durable.Durable` (every change marks
its row): the receipts our own mail awaits (receipt hash -> message id), the receipts
released by recipients that this node passes on (hash -> secret), and the secrets of
mail delivered to us that wait for a random delay before release. A released receipt
purges the copies it answers (unless ``purge_delivered`` is off). Sending receipts to
peers is the peer part's (:mod:`mesh.core._peer`): this one says which.
"""

from __future__ import annotations

from collections.abc import Iterable

from crypto.receipts import receipt_hash
from mesh.core._context import Context
from mesh.core.envelope import Envelope
from mesh.core.events import Action, MessageAcked
from mesh.core.stats import Stat


class Receipts:
    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx
        self._state = ctx.state

    def take(self, secrets: Iterable[bytes], now: int) -> tuple[list[Action], list[bytes]]:
        """Released receipts from a neighbour or a bundle: purge what they answer, tell
        the user about their own mail. Returns those actions and the new, validated
        secrets (to pass on at once: relays purge early)."""
        actions: list[Action] = []
        fresh: list[bytes] = []
        store = self._ctx.store
        for secret in secrets:
            if secret in self._state.known_secrets:
                continue
            h = receipt_hash(secret)
            if h in self._state.receipts:
                continue
            eids = store.ids_with_receipt(h)
            own = self._state.pop_own(h)
            msg_id = own[0] if own else None
            if not eids and msg_id is None:
                self._ctx.stats.count(Stat.RECEIPTS_UNMATCHED)
                continue
            expiry = now + self._ctx.config.max_ttl
            if eids:
                metas = [m for m in map(store.meta, eids) if m is not None]
                expiry = max((m.expiry for m in metas), default=expiry)
                self.purge(eids, now)
            self._state.add_receipt(h, secret, expiry)
            fresh.append(secret)
            if msg_id is not None:
                actions.append(MessageAcked(msg_id))
        return actions, fresh

    def purge(self, eids: list[bytes], now: int) -> None:
        """Drop delivered copies (ours or carried for others), unless configured to keep
        carrying them (``purge_delivered`` off)."""
        if self._ctx.config.purge_delivered:
            for eid in eids:
                if self._ctx.store.delete(eid, now):
                    self._ctx.stats.count(Stat.PURGED_BY_RECEIPT)

    def expect(self, env: Envelope, msg_id: bytes) -> None:
        """Our own message was stored: await its receipt."""
        self._state.expect_receipt(env.receipt, msg_id, env.expiry)

    def hold(self, secret: bytes, env: Envelope, now: int) -> bool:
        """Mail for us was delivered: hold its receipt secret for a random delay (False
        if it carries none that matches, so there is nothing to wait for)."""
        if not self.answers(secret, env):
            return False
        self.hold_secret(secret, env.expiry, now)
        return True

    @staticmethod
    def answers(secret: bytes, env: Envelope) -> bool:
        """Is ``secret`` the receipt secret of ``env`` (whose header has its hash)?"""
        return bool(secret) and receipt_hash(secret) == env.receipt

    def hold_secret(self, secret: bytes, expiry: int, now: int) -> None:
        """Release this receipt secret after a random delay."""
        lo, hi = self._ctx.config.receipt_delay
        delay = lo + int.from_bytes(self._ctx.rng(4), "big") % max(1, hi - lo + 1)
        self._state.hold_receipt(secret, now + delay, expiry)

    def held(self, secrets: Iterable[bytes]) -> int:
        """How many distinct ones among ``secrets`` are released receipts we hold."""
        return len({r for r in secrets if receipt_hash(r) in self._state.receipts})

    def live(self, now: int) -> list[tuple[bytes, int]]:
        """The released receipts we pass on, with their expiry."""
        return [(s, exp) for s, exp in self._state.receipts.values() if exp > now]

    def awaited(self) -> dict[bytes, bytes]:
        """Receipt hash -> message id of our own mail whose receipt has not come."""
        return {h: msg_id for h, (msg_id, _e) in self._state.own.items()}

    def protect_stored(self) -> None:
        """After a start: mark stored copies of our own mail, and of mail delivered to us
        whose receipt is not released yet, as ours."""
        store = self._ctx.store
        for h in self._state.own:
            for eid in store.ids_with_receipt(h):
                store.protect(eid)
        for secret in self._state.pending:  # delivered, receipt not yet released
            for eid in store.ids_with_receipt(receipt_hash(secret)):
                store.protect(eid)

    # ---- time -------------------------------------------------------------------------
    def next_deadline(self) -> int | None:
        return self._state.next_release()

    def tick(self, now: int) -> list[bytes]:
        """Release the receipts that fell due (purging our copy, at last); returns them,
        to pass on."""
        due = self._state.due_receipts(now)
        for secret, expiry in due:
            h = receipt_hash(secret)
            self._state.add_receipt(h, secret, expiry)
            self.purge(self._ctx.store.ids_with_receipt(h), now)
        return [s for s, _e in due]

    def expire(self, now: int) -> None:
        """Forget receipts, awaited receipts and delivered ids past their expiry."""
        self._state.expire(now)
