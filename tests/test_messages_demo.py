"""Envelope builders of mesh.core.messages, and the demo run end to end."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from crypto.bulletin import Bulletin
from crypto.errors import CryptoError
from mesh.core import envelope as E
from mesh.core import messages as M
from tests.helpers import NOW, party, seeded

ROOT = Path(__file__).resolve().parent.parent


def test_prekey_envelope_round_trip_and_forgery() -> None:
    bob, eve = party(2), party(3)
    rec = bob.ring.keys[-1].record
    env = E.decode(E.encode(M.prekey_envelope(rec)))
    assert M.read_prekey_envelope(env) == rec
    M.read_prekey_envelope(env).verify(bob.identity.sign_public, NOW)
    with pytest.raises(CryptoError):
        M.read_prekey_envelope(env).verify(eve.identity.sign_public, NOW)
    # The envelope never outlives the record (coarse hours, rounded down).
    assert rec.expires - 3600 < env.expiry <= rec.expires


def test_bulletin_envelope_round_trip() -> None:
    b = Bulletin.create(
        seeded(1).randbytes(32),
        type="notice",
        key="k",
        sequence=1,
        created=NOW,
        expiry=NOW + 7200,
        body=b"clinic open",
    )
    env = E.decode(E.encode(M.bulletin_envelope(b)))
    got = M.read_bulletin_envelope(env)
    got.verify(NOW)
    assert got == b
    with pytest.raises(E.MalformedEnvelope):
        M.read_prekey_envelope(env)


def test_first_contact_envelope_and_stamp() -> None:
    alice, bob = party(1), party(2)
    r = seeded(5).randbytes
    env = M.first_contact_envelope(
        alice.identity,
        bob.identity.public(),
        bob.ring.keys[-1].record,
        b"hi",
        now=NOW,
        ttl=3600,
        rng=r,
    )
    env = M.stamped(env, 10, r)
    assert M.stamp_ok(env, 10)
    assert not M.stamp_ok(env.with_stamp(bytes(8)), 20)
    back = E.decode(E.encode(env))
    assert M.open_first_contact_envelope(bob.identity, bob.ring, back, NOW).body == b"hi"
    # Expiry never outlives the prekey it was sealed to.
    long = M.first_contact_envelope(
        alice.identity,
        bob.identity.public(),
        bob.ring.keys[-1].record,
        b"hi",
        now=NOW,
        ttl=10**8,
        rng=r,
    )
    assert long.expiry <= bob.ring.keys[-1].record.expires + 3600


def test_demo_runs_and_tells_the_story() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "mesh.demo"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "Bob's inbox: from Alice: 'Internet is cut." in out
    assert "searching the relay's files for names and text: none found" in out
    assert "FIRST_CONTACT" in out
    assert "purged_by_receipt = 1, relay now holds" in out
    assert "to Bob [acked]: Internet is cut." in out
    assert r.stderr == ""


def test_receipt_secret_opens_only_for_recipient_and_matches_header() -> None:
    from crypto.receipts import receipt_hash

    alice, bob = party(1), party(2)
    r = seeded(6).randbytes
    env = M.first_contact_envelope(
        alice.identity,
        bob.identity.public(),
        bob.ring.keys[-1].record,
        b"hi",
        now=NOW,
        ttl=3600,
        rng=r,
    )
    assert len(env.receipt) == 16
    opened = M.open_first_contact_envelope(bob.identity, bob.ring, env, NOW)
    assert receipt_hash(opened.receipt_secret) == env.receipt
    # The receipt hash is bound: changing it breaks the seal.
    forged = E.make(
        env.kind, env.expiry_hour, env.tag, env.body, env.budget, env.stamp, receipt=bytes(16)
    )
    with pytest.raises(CryptoError):
        M.open_first_contact_envelope(bob.identity, bob.ring, forged, NOW)
