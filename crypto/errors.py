"""Error types of the crypto package.

``CryptoError`` is the root. Every failure to authenticate, parse or verify input that came
from someone else raises a subclass of it, never a bare ``ValueError`` or a libsodium error.
"""


class CryptoError(Exception):
    """Base class of every error raised by :mod:`crypto`."""


class DecodeError(CryptoError):
    """Bytes that do not parse as the structure they claim to be."""


class AuthenticationError(CryptoError):
    """A MAC, AEAD tag or DH check failed: the data was forged, tampered or not for us."""


class SignatureError(CryptoError):
    """An Ed25519 signature did not verify."""


class ExpiredError(CryptoError):
    """A signed record is past its expiry."""


class BadPassphrase(CryptoError):
    """The passphrase did not unlock any key slot."""
