"""A profile on disk: the encrypted keystore (identity, prekeys, contacts) and the store.

Layout of a profile directory (mode 0700, files 0600, names that reveal nothing)::

    keystore      Argon2id-wrapped data key + XChaCha20-Poly1305 secrets (crypto.keystore)
    envelopes.db  the SQLite envelope store (WAL)

Everything personal — identity keys, prekeys, display name, contacts and their
verification state, personas (:mod:`mesh.personas`) — lives inside the encrypted
keystore, so a seized device without the passphrase shows only that Steppe is installed.
Writes are atomic (temp file, fsync, rename, fsync of the directory).
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import platformdirs

from crypto import keystore
from crypto.errors import BadPassphrase, CryptoError
from crypto.identity import ContactCard, Identity, PublicIdentity, clean_name
from crypto.prekeys import PrekeyRing, card_prekey
from crypto.primitives import Rng
from crypto.wire import expect_bytes, expect_int, expect_list, pack, strict_unpack
from mesh.personas import Persona, personas_from_list

KEYSTORE = "keystore"
STORE = "envelopes.db"
SECRETS_VERSION = 1


class ProfileError(Exception):
    """A problem the user can fix; its message is one readable line."""


def default_profile_dir() -> Path:
    return Path(platformdirs.user_data_dir("steppe", appauthor=False))


def resolve_profile_dir(arg: str | None) -> Path:
    """``--profile`` wins, then ``STEPPE_PROFILE``, then the platform's data directory."""
    if arg:
        return Path(arg).expanduser()
    env = os.environ.get("STEPPE_PROFILE")
    if env:
        return Path(env).expanduser()
    return default_profile_dir()


def atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


@dataclass(slots=True)
class Contact:
    name: str
    card: ContactCard | None  # None: added from a message they sent (no card seen)
    verified: bool = False
    added: int = 0
    key_changed: bool = False  # the contact's key changed: frozen until re-verified
    known_as: PublicIdentity | None = None  # the identity of a contact with no card

    @property
    def identity(self) -> PublicIdentity:
        if self.card is not None:
            return self.card.identity
        assert self.known_as is not None, "a contact has a card or a known identity"
        return self.known_as

    def to_list(self) -> list[object]:
        if self.card is not None:
            return [self.name, self.card.encode(), self.verified, self.added, self.key_changed]
        ident = self.identity.to_list()
        return [self.name, "", self.verified, self.added, self.key_changed, ident]

    @classmethod
    def from_list(cls, obj: object) -> Contact:
        if not isinstance(obj, list) or len(obj) not in (5, 6):
            raise ProfileError("corrupt contact entry in keystore")
        items = obj
        if not isinstance(items[0], str) or not isinstance(items[1], str):
            raise ProfileError("corrupt contact entry in keystore")
        card = ContactCard.decode(items[1]) if items[1] else None
        known_as = PublicIdentity.from_list(items[5]) if len(items) == 6 else None
        if (card is None) == (known_as is None):
            raise ProfileError("corrupt contact entry in keystore")
        if known_as is not None:
            known_as.verify()
        return cls(
            items[0],
            card,
            bool(items[2]),
            expect_int(items[3], "added"),
            bool(items[4]),
            known_as,
        )


@dataclass(slots=True)
class Profile:
    path: Path
    identity: Identity
    name: str
    card_created: int
    ring: PrekeyRing
    contacts: list[Contact] = field(default_factory=list)
    data_key: bytes = b""
    personas: list[Persona] = field(default_factory=list)  # mesh.personas

    @property
    def card(self) -> ContactCard:
        """Our card, with the newest prekey of the ring (a first message to us can be
        sealed at once by whoever gets it in person)."""
        prekey = card_prekey(self.ring.keys[-1].record) if self.ring.keys else b""
        return ContactCard.create(self.identity, self.name, self.card_created, prekey)

    @property
    def store_path(self) -> Path:
        return self.path / STORE

    def contact(self, name: str) -> Contact:
        for c in self.contacts:
            if c.name.casefold() == name.casefold():
                return c
        known = ", ".join(c.name for c in self.contacts) or "none yet"
        raise ProfileError(f"no contact named {name!r} (contacts: {known})")

    def _secrets(self) -> bytes:
        return pack(
            [
                SECRETS_VERSION,
                self.identity.sign_seed,
                self.identity.dh_private,
                self.name,
                self.card_created,
                self.ring.to_list(),
                [c.to_list() for c in self.contacts],
                [x.to_list() for x in self.personas],
            ]
        )

    def save(self, rng: Rng) -> None:
        blob = (self.path / KEYSTORE).read_bytes()
        atomic_write(
            self.path / KEYSTORE,
            keystore.replace_secrets(blob, self.data_key, self._secrets(), rng),
        )

    def reload(self) -> None:
        """Read the prekey ring and the contacts again from the keystore on disk (with the
        data key: no passphrase, no KDF run), in place. Whoever is about to own the
        keystore (a daemon that just took ``daemon.lock``, a command changing contacts)
        calls it so it cannot save over a change made since the profile was opened. A
        profile never saved (tests, benchmarks) has nothing to reload."""
        ks = self.path / KEYSTORE
        if not ks.exists():
            return
        try:
            secrets = keystore.open_secrets(ks.read_bytes(), self.data_key)
        except CryptoError as exc:
            raise ProfileError(f"the keystore in {self.path} is damaged ({exc})") from None
        fresh = _from_secrets(self.path, secrets, self.data_key)
        if fresh.identity.sign_public != self.identity.sign_public:
            raise ProfileError(f"the keystore in {self.path} was replaced by another profile's")
        self.name, self.card_created = fresh.name, fresh.card_created
        self.ring, self.contacts, self.personas = fresh.ring, fresh.contacts, fresh.personas

    def add_contact(
        self, card: ContactCard, now: int, *, name: str | None = None, replace: bool = False
    ) -> Contact:
        """Add a verified-signature card. A different key under a known name needs
        ``replace`` and leaves the contact unverified and frozen until re-verified."""
        if card.identity.sign_public == self.identity.sign_public:
            raise ProfileError("that is your own contact card")
        name = name or card.name
        self._not_yet(card.identity)
        for c in self.contacts:
            if c.name.casefold() == name.casefold():
                if not replace:
                    raise ProfileError(
                        f"{name!r} is already a contact with a different key; if they really "
                        "have a new key, verify it in person and add it with --replace"
                    )
                c.card, c.known_as, c.verified, c.key_changed = card, None, False, True
                return c
        contact = Contact(name, card, False, now)
        self.contacts.append(contact)
        return contact

    def add_sender(self, identity: PublicIdentity, name: str, now: int) -> Contact:
        """Add, unverified, someone known only from a message they sent (its seal proved
        they hold this identity key; nothing proves who they are: verify in person)."""
        try:
            name = clean_name(name)
        except CryptoError as exc:
            raise ProfileError(str(exc)) from None
        self._not_yet(identity)
        if any(c.name.casefold() == name.casefold() for c in self.contacts):
            raise ProfileError(f"{name!r} is already a contact: choose another name")
        contact = Contact(name, None, False, now, known_as=identity)
        self.contacts.append(contact)
        return contact

    def remove_contact(self, name: str) -> Contact:
        """Take a contact out (their messages stay in the history, from an unknown sender)."""
        contact = self.contact(name)
        self.contacts.remove(contact)
        return contact

    def rename_contact(self, name: str, new_name: str) -> Contact:
        """Give a contact another name (only the name: the key and its verification stay)."""
        contact = self.contact(name)
        try:
            new_name = clean_name(new_name)
        except CryptoError as exc:
            raise ProfileError(str(exc)) from None
        for c in self.contacts:
            if c is not contact and c.name.casefold() == new_name.casefold():
                raise ProfileError(f"{new_name!r} is already a contact: choose another name")
        contact.name = new_name
        return contact

    def _not_yet(self, identity: PublicIdentity) -> None:
        for c in self.contacts:
            if c.identity.sign_public == identity.sign_public:
                raise ProfileError(f"already a contact, as {c.name!r}")


MIN_FINGERPRINT_DIGITS = 16  # hex digits of a fingerprint a user must give (64 bits)


def match_sender(candidates: list[PublicIdentity], text: str) -> PublicIdentity:
    """The one identity whose fingerprint starts with ``text`` (hex, spaces and colons
    ignored, at least :data:`MIN_FINGERPRINT_DIGITS` digits); ProfileError otherwise."""
    digits = "".join(ch for ch in text.lower() if ch not in " :")
    if len(digits) < MIN_FINGERPRINT_DIGITS or any(ch not in "0123456789abcdef" for ch in digits):
        raise ProfileError(
            f"give the sender's fingerprint as the inbox shows it (at least "
            f"{MIN_FINGERPRINT_DIGITS} hex digits)"
        )
    found = [who for who in candidates if who.fingerprint.hex().startswith(digits)]
    if not found:
        raise ProfileError(
            "no unknown sender with that fingerprint (their session may have been dropped: "
            "ask for their contact card)"
        )
    if len(found) > 1:
        raise ProfileError("more than one sender has that fingerprint: give more digits")
    return found[0]


def new_profile(path: Path, name: str, now: int, rng: Rng) -> Profile:
    """Fresh keys and a random data key in a new 0700 directory, no keystore written
    (:func:`create_profile` writes one; tests and benchmarks use this directly)."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)
    identity = Identity.generate(rng)
    ring = PrekeyRing()
    ring.create(identity, now, rng)
    ContactCard.create(identity, name, now)  # validates the name
    return Profile(path, identity, name, now, ring, [], rng(32))


def create_profile(
    path: Path, name: str, passphrase: bytes, params: keystore.KdfParams, now: int, rng: Rng
) -> Profile:
    if (path / KEYSTORE).exists():
        raise ProfileError(f"a profile already exists in {path}")
    profile = new_profile(path, name, now, rng)
    if not passphrase:
        raise ProfileError("the passphrase may not be empty")
    blob, data_key = keystore.create(passphrase, profile._secrets(), params, rng)
    profile.data_key = data_key
    atomic_write(path / KEYSTORE, blob)
    return profile


def open_profile(path: Path, passphrase: bytes) -> Profile:
    ks = path / KEYSTORE
    if not ks.exists():
        raise ProfileError(f"no profile in {path}: create one with 'steppe id new'")
    try:
        opened = keystore.open_any(ks.read_bytes(), passphrase, os.urandom)
    except BadPassphrase:
        raise ProfileError(f"wrong passphrase for the profile in {path}") from None
    except CryptoError as exc:
        raise ProfileError(f"the keystore in {path} is damaged ({exc})") from None
    if opened.duress:
        from mesh.duress import fire

        fire(path, opened)
    return _from_secrets(path, opened.secrets, opened.data_key)


def _from_secrets(path: Path, secrets: bytes, data_key: bytes) -> Profile:
    try:
        items = strict_unpack(
            secrets, max_size=len(secrets), max_array_len=100000, max_str_len=1024
        )
        if isinstance(items, list) and len(items) == 7:  # before personas
            items = [*items, []]
        items = expect_list(items, 8, "secrets")
        ident = Identity(
            expect_bytes(items[1], "seed", size=32), expect_bytes(items[2], "dh", size=32)
        )
        return Profile(
            path,
            ident,
            str(items[3]),
            expect_int(items[4], "created"),
            PrekeyRing.from_list(items[5]),
            [Contact.from_list(c) for c in items[6]],
            data_key,
            personas_from_list(items[7]),
        )
    except (CryptoError, TypeError) as exc:
        raise ProfileError(f"the keystore in {path} is damaged ({exc})") from None
