"""Keys at rest: a random data key wrapped by an Argon2id passphrase key, in a file that
looks the same whether or not a duress passphrase is set.

File layout, version 2 (canonical msgpack)::

    [magic, 2, [opslimit, memlimit, salt], slots, nonce, ciphertext, decoy]

``slots`` is always :data:`SLOTS` byte strings of :data:`SLOT_LEN` bytes (a 24-byte nonce
and a data key wrapped with XChaCha20-Poly1305 under ``Argon2id(passphrase, salt)``);
slots in use and unused ones (random bytes, as LUKS fills its key slots) cannot be told
apart without a passphrase. The data key encrypts the secrets (``nonce``, ``ciphertext``).
``decoy`` is always :data:`DECOY_LEN` bytes: random, or the decoy profile's secrets
encrypted under the decoy's own data key. One Argon2id run per unlock (one salt for all
slots); each slot is then tried with two associated-data labels: the real one opens the
profile, the duress one opens the decoy (:func:`open_any`), and the caller destroys the
real profile (mesh.profile). A wrong passphrase fails every tag and raises
:class:`~crypto.errors.BadPassphrase`. Destroying the slots (:func:`wipe_slots`) makes the
data unrecoverable even with the right passphrase.

Version 1 files (``[magic, 1, [[salt, opslimit, memlimit, nonce, wrapped]], nonce,
ciphertext]``) still open and are written as version 2 at the next save: the slot's salt
and parameters become the file's, its wrapped key is kept as it is.

What this does not hide: that Steppe is installed; a copy of the file taken before the
duress passphrase was used (an imaged device) still opens with the real passphrase; flash
storage may keep old blocks. README, "Duress passphrase", says more.

All functions are pure: they take and return bytes; file handling lives in the daemon/CLI.
"""

from __future__ import annotations

from dataclasses import dataclass

import nacl.pwhash

from crypto import primitives as p
from crypto.errors import AuthenticationError, BadPassphrase, DecodeError
from crypto.padding import pad, unpad
from crypto.wire import expect_bytes, expect_int, expect_list, pack, strict_unpack

MAGIC = "steppe-keystore"
VERSION = 2
MAX_KEYSTORE = 1 << 20
SLOTS = 4
SLOT_LEN = p.XNONCE_LEN + 32 + p.TAG_LEN  # nonce, wrapped data key, tag
DECOY_LEN = 4096
_SLOT_AD = b"steppe/keyslot/v1"
_DURESS_AD = b"steppe/keyslot/duress"
_DATA_AD = b"steppe/secrets/v1"  # version 1: unpadded
_DATA_AD_V2 = b"steppe/secrets/v2"  # padded to SECRETS_STEP
SECRETS_STEP = 4096
_DECOY_AD = b"steppe/decoy/v1"


@dataclass(frozen=True, slots=True)
class KdfParams:
    opslimit: int
    memlimit: int

    @classmethod
    def named(cls, name: str) -> KdfParams:
        """``moderate`` (default: 256 MiB, ~1 s), ``interactive`` (64 MiB) or ``sensitive``."""
        table = {
            "interactive": (
                nacl.pwhash.argon2id.OPSLIMIT_INTERACTIVE,
                nacl.pwhash.argon2id.MEMLIMIT_INTERACTIVE,
            ),
            "moderate": (
                nacl.pwhash.argon2id.OPSLIMIT_MODERATE,
                nacl.pwhash.argon2id.MEMLIMIT_MODERATE,
            ),
            "sensitive": (
                nacl.pwhash.argon2id.OPSLIMIT_SENSITIVE,
                nacl.pwhash.argon2id.MEMLIMIT_SENSITIVE,
            ),
        }
        if name not in table:
            raise ValueError(f"unknown KDF strength {name!r}: choose {', '.join(table)}")
        return cls(*table[name])


@dataclass(frozen=True, slots=True)
class _File:
    params: KdfParams
    salt: bytes
    slots: tuple[bytes | None, ...]  # SLOTS of them (a version 1 file: its slot, then None)
    nonce: bytes
    ciphertext: bytes
    decoy: bytes  # DECOY_LEN bytes (a version 1 file: b"")
    version: int = VERSION  # of the secrets' encryption: 1 is unpadded

    def pack(self, rng: p.Rng) -> bytes:
        """Version 2 bytes; what a version 1 file lacks is filled with random bytes."""
        slots = [x if x is not None else rng(SLOT_LEN) for x in self.slots]
        decoy = self.decoy or rng(DECOY_LEN)
        kdf = [self.params.opslimit, self.params.memlimit, self.salt]
        return pack([MAGIC, VERSION, kdf, slots, self.nonce, self.ciphertext, decoy])


@dataclass(frozen=True, slots=True)
class Opened:
    """What a passphrase opened: the profile, or (``duress``) the decoy; then
    ``promoted`` is the file to write at once: the decoy as the only profile, every
    other slot random (the real data key is gone)."""

    data_key: bytes
    secrets: bytes
    duress: bool = False
    promoted: bytes = b""


def _derive(passphrase: bytes, salt: bytes, params: KdfParams) -> bytes:
    return bytes(
        nacl.pwhash.argon2id.kdf(
            32, passphrase, salt, opslimit=params.opslimit, memlimit=params.memlimit
        )
    )


def seal_secrets(data_key: bytes, secrets: bytes, rng: p.Rng) -> tuple[bytes, bytes]:
    """Padded to a multiple of :data:`SECRETS_STEP` bytes: the file's size tells the
    number of contacts only in steps of about 20 (and a decoy's from a profile's hardly)."""
    nonce = rng(p.XNONCE_LEN)
    size = -(-(len(secrets) + 4) // SECRETS_STEP) * SECRETS_STEP
    return nonce, p.xchacha_encrypt(data_key, nonce, pad(secrets, size), _DATA_AD_V2)


def _open_secrets(f: _File, data_key: bytes) -> bytes:
    if f.version == 1:
        return p.xchacha_decrypt(data_key, f.nonce, f.ciphertext, _DATA_AD)
    return unpad(p.xchacha_decrypt(data_key, f.nonce, f.ciphertext, _DATA_AD_V2))


def _wrap(kek: bytes, data_key: bytes, ad: bytes, rng: p.Rng) -> bytes:
    nonce = rng(p.XNONCE_LEN)
    return nonce + p.xchacha_encrypt(kek, nonce, data_key, ad)


def _try(kek: bytes, slot: bytes | None, ad: bytes) -> bytes | None:
    if slot is None:
        return None
    try:
        return p.xchacha_decrypt(kek, slot[: p.XNONCE_LEN], slot[p.XNONCE_LEN :], ad)
    except AuthenticationError:
        return None


def create(passphrase: bytes, secrets: bytes, params: KdfParams, rng: p.Rng) -> tuple[bytes, bytes]:
    """A new keystore blob and its data key (no duress passphrase: the other slots and
    the decoy area are random)."""
    if not passphrase:
        raise ValueError("an empty passphrase is not allowed")
    salt = rng(nacl.pwhash.argon2id.SALTBYTES)
    data_key = rng(32)
    nonce, ciphertext = seal_secrets(data_key, secrets, rng)
    slots = [rng(SLOT_LEN) for _ in range(SLOTS)]
    # Anywhere: a decoy promoted by a duress unlock sits in any slot, so must a real one.
    slots[rng(1)[0] % SLOTS] = _wrap(_derive(passphrase, salt, params), data_key, _SLOT_AD, rng)
    f = _File(params, salt, tuple(slots), nonce, ciphertext, rng(DECOY_LEN))
    return f.pack(rng), data_key


def _parse(blob: bytes) -> _File:
    items = strict_unpack(blob, max_size=MAX_KEYSTORE, max_array_len=16)
    if not isinstance(items, list) or len(items) not in (5, 7) or items[0] != MAGIC:
        raise DecodeError("not a Steppe keystore of a known version")
    if items[1] == 1 and len(items) == 5:
        return _parse_v1(items)
    if items[1] != VERSION or len(items) != 7:
        raise DecodeError("not a Steppe keystore of a known version")
    ops, mem, salt = expect_list(items[2], 3, "kdf")
    slots = expect_list(items[3], SLOTS, "key slots")
    return _File(
        KdfParams(expect_int(ops, "opslimit"), expect_int(mem, "memlimit")),
        expect_bytes(salt, "salt", size=nacl.pwhash.argon2id.SALTBYTES),
        tuple(expect_bytes(x, "key slot", size=SLOT_LEN) for x in slots),
        expect_bytes(items[4], "nonce", size=p.XNONCE_LEN),
        expect_bytes(items[5], "secrets"),
        expect_bytes(items[6], "decoy", size=DECOY_LEN),
    )


def _parse_v1(items: list[object]) -> _File:
    slots = items[2]
    if not isinstance(slots, list) or len(slots) > 1:
        raise DecodeError("keystore slots")
    nonce = expect_bytes(items[3], "nonce", size=p.XNONCE_LEN)
    ciphertext = expect_bytes(items[4], "secrets")
    if not slots:  # wiped by an earlier panic
        none = (None,) * SLOTS
        return _File(KdfParams.named("interactive"), bytes(16), none, nonce, ciphertext, b"", 1)
    slot = expect_list(slots[0], 5, "key slot")
    wrapped = expect_bytes(slot[3], "nonce", size=24) + expect_bytes(slot[4], "wrapped key")
    if len(wrapped) != SLOT_LEN:
        raise DecodeError("key slot")
    rest = (None,) * (SLOTS - 1)
    return _File(
        KdfParams(expect_int(slot[1], "opslimit"), expect_int(slot[2], "memlimit")),
        expect_bytes(slot[0], "salt", size=16),
        (wrapped, *rest),
        nonce,
        ciphertext,
        b"",
        1,
    )


def is_keystore(blob: bytes) -> bool:
    """Whether ``blob`` carries a Steppe keystore header (also once its slots are wiped).
    No passphrase needed: ``steppe panic`` uses it to recognise a profile."""
    try:
        items = strict_unpack(blob, max_size=MAX_KEYSTORE, max_array_len=16)
    except DecodeError:
        return False
    return isinstance(items, list) and len(items) in (5, 7) and items[0] == MAGIC


def open_any(blob: bytes, passphrase: bytes, rng: p.Rng) -> Opened:
    """The profile or, for the duress passphrase, the decoy (see :class:`Opened`);
    BadPassphrase if no slot opens."""
    f = _parse(blob)
    kek = _derive(passphrase, f.salt, f.params)
    for slot in f.slots:
        data_key = _try(kek, slot, _SLOT_AD)
        if data_key is not None:
            return Opened(data_key, _open_secrets(f, data_key))
    for slot in f.slots:
        decoy_key = _try(kek, slot, _DURESS_AD)
        if decoy_key is not None:
            secrets = _open_decoy(decoy_key, f.decoy)
            return Opened(decoy_key, secrets, True, _promote(f, kek, decoy_key, secrets, rng))
    raise BadPassphrase("wrong passphrase")


def unlock(blob: bytes, passphrase: bytes) -> tuple[bytes, bytes]:
    """``(data_key, secrets)`` of the profile itself; raises BadPassphrase if no real
    slot opens (a duress passphrase opens none: use :func:`open_any`)."""
    f = _parse(blob)
    kek = _derive(passphrase, f.salt, f.params)
    for slot in f.slots:
        data_key = _try(kek, slot, _SLOT_AD)
        if data_key is not None:
            return data_key, _open_secrets(f, data_key)
    raise BadPassphrase("wrong passphrase")


def _open_decoy(decoy_key: bytes, area: bytes) -> bytes:
    nonce, rest = area[: p.XNONCE_LEN], area[p.XNONCE_LEN :]
    return unpad(p.xchacha_decrypt(decoy_key, nonce, rest, _DECOY_AD))


def _promote(f: _File, kek: bytes, decoy_key: bytes, secrets: bytes, rng: p.Rng) -> bytes:
    slots = [rng(SLOT_LEN) for _ in range(SLOTS)]
    slots[rng(1)[0] % SLOTS] = _wrap(kek, decoy_key, _SLOT_AD, rng)
    nonce, ciphertext = seal_secrets(decoy_key, secrets, rng)
    return _File(f.params, f.salt, tuple(slots), nonce, ciphertext, rng(DECOY_LEN)).pack(rng)


def set_duress(
    blob: bytes, passphrase: bytes, duress: bytes, decoy_secrets: bytes | None, rng: p.Rng
) -> bytes:
    """The keystore with ``duress`` opening a decoy profile of ``decoy_secrets`` (None:
    no duress passphrase; the slot and the decoy become random again). ``passphrase``
    must open the profile; ``duress`` must be another passphrase. Any earlier duress slot
    is overwritten."""
    f = _parse(blob)
    kek = _derive(passphrase, f.salt, f.params)
    real = [i for i, slot in enumerate(f.slots) if _try(kek, slot, _SLOT_AD) is not None]
    if not real:
        raise BadPassphrase("wrong passphrase")
    slots = [f.slots[i] if i in real else rng(SLOT_LEN) for i in range(SLOTS)]
    decoy = rng(DECOY_LEN)
    if decoy_secrets is not None:
        if not duress or duress == passphrase:
            raise ValueError("the duress passphrase must be another, non-empty passphrase")
        if len(decoy_secrets) > DECOY_LEN - p.XNONCE_LEN - p.TAG_LEN - 4:
            raise ValueError("the decoy profile does not fit its fixed space")
        decoy_key = rng(32)
        free = [i for i in range(SLOTS) if i not in real]
        slots[free[rng(1)[0] % len(free)]] = _wrap(
            _derive(duress, f.salt, f.params), decoy_key, _DURESS_AD, rng
        )
        nonce = rng(p.XNONCE_LEN)
        padded = pad(decoy_secrets, DECOY_LEN - p.XNONCE_LEN - p.TAG_LEN)
        decoy = nonce + p.xchacha_encrypt(decoy_key, nonce, padded, _DECOY_AD)
    data_key = _try(kek, f.slots[real[0]], _SLOT_AD)
    assert data_key is not None
    nonce, ciphertext = seal_secrets(data_key, _open_secrets(f, data_key), rng)  # a v1 file's too
    return _File(f.params, f.salt, tuple(slots), nonce, ciphertext, decoy).pack(rng)


def open_secrets(blob: bytes, data_key: bytes) -> bytes:
    """The secrets of a keystore whose data key is already known (no KDF run): how a
    running daemon, or a command that unlocked it a moment ago, reads the current ones."""
    return _open_secrets(_parse(blob), data_key)


def replace_secrets(blob: bytes, data_key: bytes, secrets: bytes, rng: p.Rng) -> bytes:
    """The same slots and decoy, new encrypted secrets (no KDF run needed)."""
    f = _parse(blob)
    nonce, ciphertext = seal_secrets(data_key, secrets, rng)
    return _File(f.params, f.salt, f.slots, nonce, ciphertext, f.decoy).pack(rng)


def wipe_slots(blob: bytes, rng: p.Rng) -> bytes:
    """The keystore with every key slot and the decoy overwritten with random bytes: the
    data keys are gone for good, and the file looks as it did."""
    f = _parse(blob)
    slots = tuple(rng(SLOT_LEN) for _ in range(SLOTS))
    return _File(f.params, f.salt, slots, f.nonce, f.ciphertext, rng(DECOY_LEN)).pack(rng)


def encrypt_record(data_key: bytes, plaintext: bytes, ad: bytes, rng: p.Rng) -> bytes:
    """Encrypt one record at rest under the data key: nonce || ciphertext || tag."""
    nonce = rng(p.XNONCE_LEN)
    return nonce + p.xchacha_encrypt(data_key, nonce, plaintext, b"steppe/record/v1|" + ad)


def decrypt_record(data_key: bytes, blob: bytes, ad: bytes) -> bytes:
    if len(blob) < p.XNONCE_LEN + p.TAG_LEN:
        raise DecodeError("record too short")
    return p.xchacha_decrypt(
        data_key, blob[: p.XNONCE_LEN], blob[p.XNONCE_LEN :], b"steppe/record/v1|" + ad
    )
