"""What a person reads when a contact card or a bundle is refused: what is wrong, in their
words, and what to do, instead of the parser's ``malformed msgpack: ExtraData``.

The typed errors (:class:`crypto.errors.DecodeError`, :class:`SignatureError`) stay
inside and are chained as the cause; only the line shown changes. (A bundle's reasons are
:class:`mesh.core.bundle.BundleError` lines, already in these words, since the daemon
passes them on as they are.)
"""

from __future__ import annotations

from crypto.errors import CryptoError, SignatureError
from crypto.identity import CARD_PREFIX, MAX_CARD_BYTES

CARD_DAMAGED = "this card is damaged or incomplete: copy all of it again, or scan its QR code"
CARD_ALTERED = (
    "this card is damaged or was altered (its signature does not match):"
    " copy all of it again, or scan its QR code"
)


def card_problem(text: str, exc: CryptoError) -> str:
    """The line to show for a card ``text`` that :meth:`ContactCard.decode` refused."""
    compact = "".join(text.split()).upper()
    if not compact.startswith(CARD_PREFIX):
        return f"this is not a Steppe contact card (a card starts with {CARD_PREFIX})"
    if len(compact) > len(CARD_PREFIX) + MAX_CARD_BYTES * 2:
        return "this is too long to be a contact card: copy only the card, or scan its QR code"
    if isinstance(exc, SignatureError):
        return CARD_ALTERED
    return CARD_DAMAGED
