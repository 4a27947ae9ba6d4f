"""The running daemon's side of the profile: live contact changes and the prekey ring.

Theory of operation
-------------------
While a daemon runs it owns the profile's keystore (it holds ``daemon.lock``,
:mod:`mesh.daemon.lock`): it took the lock, then read the keystore again
(:meth:`mesh.profile.Profile.reload`), so it works from what is on disk, and from then
on it is the only writer.

- **The prekey ring.** The node rotates and prunes the ring it was given (the profile's)
  on its periodic sweep. After every node step (:meth:`LiveProfile.after_step`), a ring
  whose prekeys differ from those last saved is written to the keystore at once
  (:meth:`mesh.profile.Profile.save`: a fresh encryption under the data key, written
  atomically), before the step's frames reach any socket. So a prekey the mesh may learn
  survives a restart, and a pruned private prekey leaves the file. A failed write is
  logged and tried again after the next step.
- **Contacts.** While a daemon runs, ``steppe contact add`` and ``contact verify`` are
  sent to it over the local API (ops ``contact_add`` and ``contact_verify``); it changes
  its profile, saves the keystore, then tells the node: a new contact is added (with the
  prekey its card carries); a key replaced with ``--replace`` is frozen at once (``send``
  refuses it) and the old key is no longer a contact of the node, so nothing more is
  sealed to it; a verification unfreezes it. Bulletin trust labels read the same
  profile, so they follow at once.
- **Senders.** ``steppe contact add-sender FINGERPRINT --name NAME`` (op
  ``contact_add_sender``) adds, unverified, someone who wrote without being a contact: the
  node kept the identity their first contact's seal proved, with their session; their
  prekey, if one is in the store, comes along so a reply can be sealed.
- **Removing and renaming.** ``steppe contact remove NAME`` (op ``contact_remove``) takes
  the contact out of the keystore and the node forgets the key at once (nothing more is
  sealed to it); the history keeps their messages, shown from an unknown sender (their
  key's fingerprint). ``steppe contact rename OLD NEW`` (op ``contact_rename``) changes
  only the name.
- **Events.** Every change is told to subscribers as a
  :class:`mesh.ipc.events.ContactChanged` once it is in the keystore.
- **Names.** :meth:`LiveProfile.name_of` names a key for the local API: a contact's name,
  or, for a replaced key not yet verified, its fingerprint with a ``KEY CHANGED`` warning
  (never the old conversation's bare name), or a stranger's fingerprint.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from crypto.errors import CryptoError
from crypto.identity import ContactCard, fingerprint, short_fingerprint
from crypto.prekeys import PrekeyRecord, prekey_from_card
from mesh import ipc
from mesh.ipc.calls import ContactRow
from mesh.ipc.events import ContactChange, ContactChanged
from mesh.profile import KEYSTORE, Contact, ProfileError, match_sender

if TYPE_CHECKING:
    from mesh.daemon.daemon import Daemon

log = logging.getLogger(__name__)

KEY_CHANGED = "KEY CHANGED — not verified"


class LiveProfile:
    """The daemon's profile, kept in step with its node and with the keystore on disk."""

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        self.profile = daemon.profile
        self._saved_ring = self._ring_ids()

    # ---- the keystore -------------------------------------------------------------------
    def add_to_node(self) -> None:
        """Every contact whose key is not frozen, to a node just made."""
        for c in self.profile.contacts:
            if not c.key_changed:
                self._tell_node(c)

    def _ring_ids(self) -> tuple[int, ...]:
        return tuple(k.prekey_id for k in self.profile.ring.keys)

    def after_step(self) -> None:
        """Save the keystore if the node rotated or pruned the prekey ring."""
        if self._ring_ids() == self._saved_ring:
            return
        try:
            self.save()
        except (OSError, ProfileError, CryptoError) as exc:
            log.error("could not save the rotated prekeys to the keystore (%s); will retry", exc)

    def save(self) -> None:
        d = self.daemon
        if d._panicked or d.broken or not self.profile.data_key:
            return
        if not (self.profile.path / KEYSTORE).exists():
            return  # a profile never saved (tests, benchmarks): nothing to write into
        self.profile.save(d.rng)
        self._saved_ring = self._ring_ids()
        log.info("keystore saved: %d prekeys", len(self.profile.ring.keys))

    # ---- contact changes (the contact_* ops) -------------------------------------------
    def add(self, card: str, name: str = "", replace: bool = False) -> ContactRow:
        try:
            parsed = ContactCard.decode(card)
        except CryptoError as exc:
            raise ipc.IpcError(f"not a valid contact card: {exc}") from None
        old = next((c for c in self.profile.contacts if _same_name(c, name or parsed.name)), None)
        old_key = old.identity.sign_public if old is not None else b""
        contact = self._change(
            lambda: self.profile.add_contact(
                parsed, self.daemon.now(), name=name or None, replace=replace
            )
        )
        if contact.key_changed:
            self.daemon.node.remove_contact(old_key)
            log.info("a contact's key was replaced: frozen until verified")
            return self._told(ContactChange.REPLACED, contact)
        self._tell_node(contact)
        return self._told(ContactChange.ADDED, contact)

    def add_sender(self, fingerprint_text: str, name: str) -> ContactRow:
        """Add, unverified, someone who wrote to us without being a contact, from the
        identity their first contact proved (kept by the node with their session)."""
        try:
            who = match_sender(self.daemon.node.strangers(), fingerprint_text)
        except ProfileError as exc:
            raise ipc.IpcError(str(exc)) from None
        contact = self._change(lambda: self.profile.add_sender(who, name, self.daemon.now()))
        self._tell_node(contact)
        return self._told(ContactChange.ADDED, contact)

    def verify(self, name: str, fingerprint_hex: str) -> ContactRow:
        """Mark verified the key whose safety number the user compared (its fingerprint
        comes along: a key replaced in between is not verified by mistake)."""
        contact = self._named(name)
        if contact.identity.fingerprint.hex() != fingerprint_hex:
            raise ipc.IpcError(
                f"{contact.name}'s key changed since the safety number was shown: compare again"
            )

        def mark() -> Contact:
            contact.verified, contact.key_changed = True, False
            return contact

        self._change(mark)
        self._tell_node(contact)
        return self._told(ContactChange.VERIFIED, contact)

    def remove(self, name: str) -> ContactRow:
        """Forget a contact: out of the keystore, and the node seals nothing more to their
        key. Their messages stay in the history, from an unknown sender. The answer is the
        row they had."""
        contact = self._named(name)
        row = self.row(contact)
        self._change(lambda: self.profile.remove_contact(contact.name))
        self.daemon.node.remove_contact(contact.identity.sign_public)
        self._publish(ContactChange.REMOVED, contact)
        return row

    def rename(self, name: str, new_name: str) -> ContactRow:
        old = self._named(name).name
        contact = self._change(lambda: self.profile.rename_contact(old, new_name))
        return self._told(ContactChange.RENAMED, contact, old)

    def _named(self, name: str) -> Contact:
        try:
            return self.profile.contact(name)
        except ProfileError as exc:
            raise ipc.IpcError(str(exc)) from None

    def _told(self, change: ContactChange, c: Contact, old_name: str = "") -> ContactRow:
        """Tell subscribers of a change that is in the keystore now; the contact's row."""
        self._publish(change, c, old_name)
        return self.row(c)

    def _publish(self, change: ContactChange, c: Contact, old_name: str = "") -> None:
        fp = c.identity.fingerprint.hex()
        self.daemon.local_api.publish(ContactChanged(change, c.name, fp, old_name))

    def _change(self, change: Callable[[], Contact]) -> Contact:
        """Apply a change to the contacts and save the keystore; if either fails, the
        contacts are as they were and the reason is one line."""
        before = [copy.copy(c) for c in self.profile.contacts]
        try:
            contact: Contact = change()
            self.save()
        except (ProfileError, CryptoError, OSError) as exc:
            self.profile.contacts[:] = before
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise ipc.IpcError(str(reason)) from None
        return contact

    def _tell_node(self, c: Contact) -> None:
        prekey = card_prekey(c.card, self.daemon.now()) if c.card is not None else None
        self.daemon.node.add_contact(c.identity, prekey)

    # ---- names --------------------------------------------------------------------------
    def contact_for(self, key: bytes) -> Contact | None:
        return next((c for c in self.profile.contacts if c.identity.sign_public == key), None)

    def name_of(self, key: bytes) -> str:
        """How the local API names the holder of ``key``. A replaced key not yet verified
        is named by its fingerprint and a warning: its messages are not the old
        conversation's."""
        c = self.contact_for(key)
        if c is None:
            return key.hex()[:16]
        if c.key_changed:
            return f"{short_fingerprint(key)} ({KEY_CHANGED}: the new key of {c.name})"
        return c.name

    def trust(self, persona: bytes) -> str:
        """Trust comes from who holds the key, never from a name in the post."""
        if persona == self.profile.identity.sign_public:
            return "you"
        c = self.contact_for(persona)
        if c is None:
            return "unknown key " + fingerprint(persona).hex()[:16]
        if c.key_changed:
            return f"{c.name} (KEY CHANGED)"
        return f"{c.name} (verified contact)" if c.verified else f"{c.name} (unverified)"

    def rows(self) -> list[ContactRow]:
        return [self.row(c) for c in self.profile.contacts]

    def row(self, c: Contact) -> ContactRow:
        key = c.identity.sign_public
        can_write = self.daemon.node.can_write(key, self.daemon.now())
        return ContactRow(
            c.name, c.verified, c.key_changed, c.identity.fingerprint.hex(), can_write
        )


def _same_name(c: Contact, name: str) -> bool:
    return c.name.casefold() == name.casefold()


def card_prekey(card: ContactCard, now: int) -> PrekeyRecord | None:
    """The prekey a contact's card carries, if it still verifies (cards were checked
    when added; an expired or unreadable one is simply not used)."""
    try:
        return prekey_from_card(card, now)
    except CryptoError:
        return None
