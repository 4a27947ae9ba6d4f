"""Identities, safety numbers and contact cards, including forged and malformed cards."""

from __future__ import annotations

import base64

import pytest

from crypto.errors import CryptoError, DecodeError, SignatureError
from crypto.identity import (
    CARD_PREFIX,
    ContactCard,
    Identity,
    PublicIdentity,
    fingerprint,
    safety_digits,
    safety_words,
)
from crypto.primitives import blake2b
from crypto.wire import pack
from tests.helpers import NOW, seeded


def ident(seed: int) -> Identity:
    return Identity.generate(seeded(seed).randbytes)


def test_fingerprint_is_blake2b_256_of_identity_key() -> None:
    a = ident(1)
    assert a.fingerprint == blake2b(a.sign_public, digest_size=32) == fingerprint(a.sign_public)
    assert a.fingerprint != ident(2).fingerprint


def test_certificate_binds_dh_key() -> None:
    a, b = ident(1), ident(2)
    a.public().verify()
    swapped = PublicIdentity(a.sign_public, b.dh_public, a.public().cert)
    with pytest.raises(SignatureError):
        swapped.verify()


def test_safety_number_is_symmetric_and_pair_specific() -> None:
    a, b, c = ident(1), ident(2), ident(3)
    assert safety_digits(a.sign_public, b.sign_public) == safety_digits(
        b.sign_public, a.sign_public
    )
    assert safety_words(a.sign_public, b.sign_public) == safety_words(b.sign_public, a.sign_public)
    assert safety_digits(a.sign_public, b.sign_public) != safety_digits(
        a.sign_public, c.sign_public
    )
    digits = safety_digits(a.sign_public, b.sign_public)
    assert len(digits.replace(" ", "")) == 60
    assert digits.replace(" ", "").isdigit()
    assert len(safety_words(a.sign_public, b.sign_public)) == 8


def test_card_round_trip_and_qr_alphabet() -> None:
    a = ident(1)
    card = ContactCard.create(a, "Alice", NOW)
    text = card.encode()
    assert text.startswith(CARD_PREFIX)
    assert set(text) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567:1")  # QR alphanumeric
    assert len(text) < 400
    back = ContactCard.decode(text)
    assert back == card
    # Whitespace and case from copy/paste are tolerated.
    assert ContactCard.decode("  " + text.lower()[:50] + "\n" + text.lower()[50:]) == card


def _raw(card: ContactCard) -> list[object]:
    return [1, card.name, *card.identity.to_list(), card.created, card.signature]


def _enc(items: list[object]) -> str:
    return CARD_PREFIX + base64.b32encode(pack(items)).decode().rstrip("=")


def test_card_with_changed_name_is_rejected() -> None:
    card = ContactCard.create(ident(1), "Alice", NOW)
    items = _raw(card)
    items[1] = "Mallory"
    with pytest.raises(SignatureError):
        ContactCard.decode(_enc(items))


def test_card_with_substituted_key_is_rejected() -> None:
    card = ContactCard.create(ident(1), "Alice", NOW)
    other = ident(2).public()
    items = _raw(card)
    items[3] = other.dh_public
    with pytest.raises(SignatureError):
        ContactCard.decode(_enc(items))


@pytest.mark.parametrize(
    "text",
    [
        "",
        "STEPPE1:",
        "STEPPE2:AAAA",
        "STEPPE1:!!!!",
        "STEPPE1:" + "A" * 5000,
        _enc([1, "x"]),
        _enc([9, "x", b"a" * 32, b"b" * 32, b"c" * 64, 1, b"d" * 64]),
        _enc([1, "", b"a" * 32, b"b" * 32, b"c" * 64, 1, b"d" * 64]),
        _enc([1, "x", b"a" * 31, b"b" * 32, b"c" * 64, 1, b"d" * 64]),
    ],
)
def test_malformed_cards_raise_crypto_errors(text: str) -> None:
    with pytest.raises(CryptoError):
        ContactCard.decode(text)


def test_names_are_cleaned() -> None:
    card = ContactCard.create(ident(1), "  Al\x1b[31mice\n ", NOW)
    assert card.name == "Al[31mice"
    with pytest.raises(DecodeError):
        ContactCard.create(ident(1), "\x00\x01", NOW)
