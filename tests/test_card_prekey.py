"""Contact cards carry the current signed prekey (issue 11, section 4): after two people
swap cards in person, the first message is sealed at once. It used to fail with "no
current prekey for this contact yet" until a prekey record travelled over the mesh."""

from __future__ import annotations

import io
import os
import time
from pathlib import Path

import pytest
import trio

from crypto.errors import CryptoError
from crypto.identity import MAX_NAME, ContactCard
from crypto.prekeys import PrekeyRing, card_prekey, prekey_from_card
from crypto.wire import pack, strict_unpack
from mesh.cli_common import TERMINAL_WIDTH
from mesh.cli_contacts import print_card_qr
from mesh.core import bundle
from mesh.daemon.daemon import Daemon
from mesh.profile import new_profile
from tests.daemon_helpers import befriend, loopback_config, make_profile


def test_a_card_carries_a_prekey_its_owner_signed(tmp_path: Path) -> None:
    now = int(time.time())
    prof = new_profile(tmp_path / "a", "Aigerim", now, os.urandom)
    card = ContactCard.decode(prof.card.encode())
    rec = prekey_from_card(card, now)
    assert rec == prof.ring.keys[-1].record
    assert prekey_from_card(card, rec.expires) is None  # expired: not used
    # A prekey signed by someone else, under a card signature of the card's owner.
    other = new_profile(tmp_path / "m", "Mallory", now, os.urandom)
    foreign = card_prekey(other.ring.keys[-1].record)
    forged = ContactCard.create(prof.identity, "Aigerim", now, foreign)
    with pytest.raises(CryptoError, match="not signed by its owner"):
        prekey_from_card(ContactCard.decode(forged.encode()), now)
    # Swapping the prekey of a card breaks the card's own signature.
    swapped = ContactCard(card.name, card.identity, card.created, card.signature, foreign)
    with pytest.raises(CryptoError):
        ContactCard.decode(swapped.encode())
    # A version-1 card (no prekey) still reads.
    old = ContactCard.create(prof.identity, "Aigerim", now)
    assert old.encode() != card.encode()
    assert prekey_from_card(ContactCard.decode(old.encode()), now) is None


def test_a_small_order_prekey_on_a_card_is_refused(tmp_path: Path) -> None:
    now = int(time.time())
    prof = new_profile(tmp_path / "a", "Aigerim", now, os.urandom)
    fields = strict_unpack(card_prekey(prof.ring.keys[-1].record), max_size=256)
    assert isinstance(fields, list)
    fields[1] = bytes(32)  # the identity point: small order
    card = ContactCard.create(prof.identity, "Aigerim", now, pack(fields))
    with pytest.raises(CryptoError, match="small-order"):
        prekey_from_card(ContactCard.decode(card.encode()), now)


def test_the_qr_code_of_the_longest_card_fits_80_columns(tmp_path: Path) -> None:
    now = int(time.time())
    prof = new_profile(tmp_path / "p", "Ж" * MAX_NAME, now, os.urandom)
    prof.ring = PrekeyRing()
    prof.ring.create(prof.identity, now, os.urandom)
    out = io.StringIO()
    print_card_qr(prof.card.encode(), out)
    lines = out.getvalue().splitlines()
    assert len(lines) > 20
    assert max(len(line) for line in lines) <= TERMINAL_WIDTH


def test_first_message_right_after_swapping_cards_in_person(tmp_path: Path) -> None:
    """No network, no bundle from Bob first: Alice writes at once and a courier carries it."""
    now = int(time.time())
    alice, bob = make_profile(tmp_path, "Alice", now), make_profile(tmp_path, "Bob", now)
    befriend(alice, bob, now)
    stick = tmp_path / "mail.steppe"
    cfg = loopback_config(lan=False)

    async def main() -> None:
        a = Daemon(alice, cfg, alice.path, handle_signals=False)
        b = Daemon(bob, cfg, bob.path, handle_signals=False)
        async with trio.open_nursery() as n:
            await n.start(a.run)
            await n.start(b.run)
            a.send_text("Bob", "we met at the market")
            a.ops.export(str(stick))
            assert bundle.decode(stick.read_bytes(), 1 << 26, a.now()).frames
            assert b.ops.import_(str(stick))["delivered"] == 1
            assert [m.text for m in b.history.messages()] == ["we met at the market"]
            n.cancel_scope.cancel()

    trio.run(main)
