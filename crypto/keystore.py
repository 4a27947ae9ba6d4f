"""Keys at rest: a random data key wrapped by an Argon2id passphrase key.

File layout (canonical msgpack): ``[magic, version, slots, nonce, ciphertext]`` where each
slot is ``[salt, opslimit, memlimit, nonce, wrapped_data_key]``. The data key (32 random
bytes) encrypts the secrets with XChaCha20-Poly1305; each slot wraps the data key under
``Argon2id(passphrase, salt, opslimit, memlimit)``. A wrong passphrase fails the AEAD tag of
every slot and raises :class:`~crypto.errors.BadPassphrase`. Destroying the slots
(:func:`wipe_slots`) makes the data unrecoverable even with the right passphrase.

All functions are pure: they take and return bytes; file handling lives in the daemon/CLI.
"""

from __future__ import annotations

from dataclasses import dataclass

import nacl.pwhash

from crypto import primitives as p
from crypto.errors import AuthenticationError, BadPassphrase, DecodeError
from crypto.wire import expect_bytes, expect_int, expect_list, pack, strict_unpack

MAGIC = "steppe-keystore"
VERSION = 1
MAX_KEYSTORE = 1 << 20
_SLOT_AD = b"steppe/keyslot/v1"
_DATA_AD = b"steppe/secrets/v1"


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


def _derive(passphrase: bytes, salt: bytes, params: KdfParams) -> bytes:
    return bytes(
        nacl.pwhash.argon2id.kdf(
            32, passphrase, salt, opslimit=params.opslimit, memlimit=params.memlimit
        )
    )


def seal_secrets(data_key: bytes, secrets: bytes, rng: p.Rng) -> tuple[bytes, bytes]:
    nonce = rng(p.XNONCE_LEN)
    return nonce, p.xchacha_encrypt(data_key, nonce, secrets, _DATA_AD)


def make_slot(passphrase: bytes, data_key: bytes, params: KdfParams, rng: p.Rng) -> list[object]:
    salt = rng(nacl.pwhash.argon2id.SALTBYTES)
    nonce = rng(p.XNONCE_LEN)
    wrapped = p.xchacha_encrypt(_derive(passphrase, salt, params), nonce, data_key, _SLOT_AD)
    return [salt, params.opslimit, params.memlimit, nonce, wrapped]


def create(passphrase: bytes, secrets: bytes, params: KdfParams, rng: p.Rng) -> tuple[bytes, bytes]:
    """A new keystore blob and its data key."""
    if not passphrase:
        raise ValueError("an empty passphrase is not allowed")
    data_key = rng(32)
    nonce, ciphertext = seal_secrets(data_key, secrets, rng)
    blob = pack([MAGIC, VERSION, [make_slot(passphrase, data_key, params, rng)], nonce, ciphertext])
    return blob, data_key


def _parse(blob: bytes) -> list[object]:
    items = expect_list(strict_unpack(blob, max_size=MAX_KEYSTORE, max_array_len=16), 5, "keystore")
    if items[0] != MAGIC or items[1] != VERSION:
        raise DecodeError("not a Steppe keystore of a known version")
    return items


def is_keystore(blob: bytes) -> bool:
    """Whether ``blob`` carries a Steppe keystore header (also once its slots are wiped).
    No passphrase needed: ``steppe panic`` uses it to recognise a profile."""
    try:
        items = strict_unpack(blob, max_size=MAX_KEYSTORE, max_array_len=16)
    except DecodeError:
        return False
    return isinstance(items, list) and len(items) == 5 and items[0] == MAGIC


def unlock(blob: bytes, passphrase: bytes) -> tuple[bytes, bytes]:
    """``(data_key, secrets)``; raises BadPassphrase if no slot opens."""
    items = _parse(blob)
    slots = items[2]
    if not isinstance(slots, list):
        raise DecodeError("keystore slots")
    for slot_raw in slots:
        slot = expect_list(slot_raw, 5, "key slot")
        params = KdfParams(expect_int(slot[1], "opslimit"), expect_int(slot[2], "memlimit"))
        key = _derive(passphrase, expect_bytes(slot[0], "salt", size=16), params)
        try:
            data_key = p.xchacha_decrypt(
                key,
                expect_bytes(slot[3], "nonce", size=24),
                expect_bytes(slot[4], "wrapped key"),
                _SLOT_AD,
            )
        except AuthenticationError:
            continue
        secrets = p.xchacha_decrypt(
            data_key,
            expect_bytes(items[3], "nonce", size=24),
            expect_bytes(items[4], "secrets"),
            _DATA_AD,
        )
        return data_key, secrets
    raise BadPassphrase("wrong passphrase")


def open_secrets(blob: bytes, data_key: bytes) -> bytes:
    """The secrets of a keystore whose data key is already known (no KDF run): how a
    running daemon, or a command that unlocked it a moment ago, reads the current ones."""
    items = _parse(blob)
    return p.xchacha_decrypt(
        data_key,
        expect_bytes(items[3], "nonce", size=24),
        expect_bytes(items[4], "secrets"),
        _DATA_AD,
    )


def replace_secrets(blob: bytes, data_key: bytes, secrets: bytes, rng: p.Rng) -> bytes:
    """The same slots, new encrypted secrets (no KDF run needed)."""
    items = _parse(blob)
    nonce, ciphertext = seal_secrets(data_key, secrets, rng)
    return pack([MAGIC, VERSION, items[2], nonce, ciphertext])


def wipe_slots(blob: bytes) -> bytes:
    """The keystore with every key slot removed: the data key is gone for good."""
    items = _parse(blob)
    return pack([MAGIC, VERSION, [], items[3], items[4]])


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
