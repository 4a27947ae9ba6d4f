"""A node's contacts and the strangers it has sessions with (private to
:mod:`mesh.core.node`).

A contact is an identity the user added and, if known, their newest prekey record (from
their card, from the store, or learned and saved with the node's state). A stranger is
someone who is not a contact but opened a session with us: their first contact's seal
proved they hold the identity, kept while a session of theirs is, so the user can add
them from the inbox.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from crypto.errors import DecodeError
from crypto.identity import PublicIdentity
from crypto.prekeys import PrekeyRecord
from mesh.core._context import ContactKeys, Context

log = logging.getLogger(__name__)


class Contacts:
    def __init__(
        self,
        ctx: Context,
        newest_prekey: Callable[[bytes, int], PrekeyRecord | None],
        bound_strangers: Callable[[], None],
    ) -> None:
        self._ctx = ctx
        self._newest_prekey = newest_prekey  # the store's newest PREKEY envelope of a key
        self._bound_strangers = bound_strangers  # the stranger-session cap, after a removal

    def add(self, identity: PublicIdentity, prekey: PrekeyRecord | None, now: int) -> None:
        identity.verify()
        if prekey is None:  # someone added from a message: their prekey may be stored
            prekey = self._newest_prekey(identity.sign_public, now)
        self._ctx.contacts[identity.sign_public] = ContactKeys(identity, prekey)
        self._ctx.state.touch_prekey(identity.sign_public)
        self._ctx.state.forget_stranger(identity.sign_public)

    def remove(self, identity_key: bytes) -> None:
        self._ctx.contacts.pop(identity_key, None)
        self._ctx.state.touch_prekey(identity_key)
        self._bound_strangers()

    def stranger(self, identity_key: bytes) -> PublicIdentity | None:
        return self._ctx.state.strangers.get(identity_key)

    def strangers(self) -> list[PublicIdentity]:
        return list(self._ctx.state.strangers.values())

    def prekey_of(self, key: bytes) -> PrekeyRecord | None:
        contact = self._ctx.contacts.get(key)
        return None if contact is None else contact.prekey

    def learned(self, prekeys: Iterable[tuple[bytes, bytes]]) -> None:
        """Prekeys saved with the node's state, (contact key, encoded record): each
        replaces a contact's older one (a newer one from the card stays)."""
        for key, rec in prekeys:
            contact = self._ctx.contacts.get(key)
            if contact is None:
                continue
            try:
                learned = PrekeyRecord.decode(rec)
            except DecodeError:  # learned before the decoder refused its kind: forget it
                log.warning("forgetting a learned prekey that no longer decodes")
                continue
            if contact.prekey is None or learned.created >= contact.prekey.created:
                contact.prekey = learned
