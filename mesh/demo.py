"""``make demo``: store-and-forward through a relay that learns nothing.

Three real profiles (Alice, a relay, Bob) are created in a temporary directory with the
same code the ``steppe`` command uses: Argon2id-encrypted keystores, real X25519/Ed25519
keys, a real SQLite store for the relay. Frames cross between them as bytes, exactly as
they would over a link. (Until the daemon exists, this script plays the part of the
links; the protocol code is the real one.)
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

from crypto import keystore
from crypto.errors import CryptoError
from crypto.identity import ContactCard, safety_digits, safety_words
from crypto.primitives import Rng
from crypto.seal import open_first_contact
from mesh.core import envelope as E
from mesh.core import messages as M
from mesh.core.store import PutStatus, StoreItem
from mesh.daemon.sqlite_store import SQLiteStore
from mesh.profile import Profile, create_profile

STAMP_BITS = 14
TEXT = "Internet is cut. Meet at Republic Square, 18:00. Bring water."


def say(text: str = "") -> None:
    print(text, flush=True)


def step(n: int, text: str) -> None:
    say(f"\n[{n}] {text}")


def hexdump(data: bytes, limit: int = 64) -> str:
    shown = data[:limit].hex(" ")
    return shown + (f" ... ({len(data)} bytes)" if len(data) > limit else "")


def relay_accepts(relay: SQLiteStore, frame: bytes, source: bytes, now: int) -> PutStatus:
    """What a relay does with a frame from a neighbour: strict decode, stamp, store."""
    env = E.decode(frame)
    if not M.stamp_ok(env, STAMP_BITS):
        raise E.MalformedEnvelope("stamp does not carry enough work")
    item = StoreItem(env.id(), frame, env.expiry, priority=0, source=source)
    return relay.put(item, now).status


def main() -> int:
    now = int(time.time())
    rng = os.urandom
    fast = keystore.KdfParams.named("interactive")
    with tempfile.TemporaryDirectory(prefix="steppe-demo-") as tmp:
        root = Path(tmp)
        say("Steppe demo: Alice -> relay -> Bob, store and forward, end to end encrypted.")
        say(f"Profiles in {root} (deleted at the end).")

        step(1, "Three devices create identities (Argon2id-encrypted keystores on disk).")
        alice = create_profile(root / "alice", "Alice", rng(16).hex().encode(), fast, now, rng)
        relay_p = create_profile(root / "relay", "Relay", rng(16).hex().encode(), fast, now, rng)
        bob = create_profile(root / "bob", "Bob", rng(16).hex().encode(), fast, now, rng)
        for p in (alice, relay_p, bob):
            say(f"    {p.name:<6} {p.path}  keystore {len((p.path / 'keystore').read_bytes())} B")

        step(2, "Alice and Bob meet in person, scan each other's contact cards, compare.")
        alice.add_contact(ContactCard.decode(bob.card.encode()), now)
        bob.add_contact(ContactCard.decode(alice.card.encode()), now)
        a_view = safety_digits(alice.identity.sign_public, bob.identity.sign_public)
        b_view = safety_digits(bob.identity.sign_public, alice.identity.sign_public)
        say(f"    Alice's screen: {a_view}")
        say(f"    Bob's screen:   {b_view}")
        words = " ".join(safety_words(alice.identity.sign_public, bob.identity.sign_public))
        say(f"    words:          {words}")
        assert a_view == b_view
        for p in (alice, bob):
            p.contacts[0].verified = True
            p.save(rng)
        say("    They match: each marks the other verified.")

        relay = SQLiteStore(relay_p.store_path)
        try:
            _run(now, rng, alice, bob, relay_p, relay)
        finally:
            relay.close()
    say("\nDemo finished. Next: 'make test' runs the test suite.")
    return 0


def _run(
    now: int, rng: Rng, alice: Profile, bob: Profile, relay_p: Profile, relay: SQLiteStore
) -> None:
    step(3, "Bob publishes his signed prekey; it floods to the relay.")
    prekey_env = M.stamped(M.prekey_envelope(bob.ring.keys[-1].record), STAMP_BITS, rng)
    status = relay_accepts(relay, E.encode(prekey_env), b"bob-link", now)
    say(f"    relay store: {status.value} (prekey record, {len(prekey_env.body)} B bucket)")

    step(4, "Bob walks away. Later Alice reaches the relay and finds Bob's prekey.")
    contact = alice.contact("Bob")
    record = None
    for eid in relay.ids_in_range(b"", None):
        frame = relay.get(eid)
        assert frame is not None
        env = E.decode(frame)
        if env.kind is E.Kind.PREKEY:
            candidate = M.read_prekey_envelope(env)
            try:
                candidate.verify(contact.card.identity.sign_public, now)
            except CryptoError:
                continue
            record = candidate
    assert record is not None
    say(
        f"    prekey {record.prekey_id:#010x} signed by Bob's verified key; "
        f"expires in {(record.expires - now) // 3600} h"
    )

    step(5, f"Alice seals a message to Bob and hands it to the relay ({STAMP_BITS}-bit stamp).")
    say(f"    text: {TEXT!r}")
    t0 = time.perf_counter()
    env = M.stamped(
        M.first_contact_envelope(
            alice.identity,
            contact.card.identity,
            record,
            TEXT.encode(),
            now=now,
            ttl=3 * 86400,
            rng=rng,
        ),
        STAMP_BITS,
        rng,
    )
    frame = E.encode(env)
    say(f"    sealed + stamped in {1000 * (time.perf_counter() - t0):.0f} ms")
    status = relay_accepts(relay, frame, b"alice-link", now)
    say(
        f"    relay store: {status.value}; relay now holds {relay.count()} envelopes, "
        f"{relay.total_bytes()} B"
    )

    step(6, "Exactly what the relay sees (and keeps in envelopes.db):")
    say(f"    frame     {hexdump(frame)}")
    say(f"    version   {env.version}")
    say(f"    kind      {env.kind.name} (a sealed first-contact message)")
    when = time.strftime("%Y-%m-%d %H:00 UTC", time.gmtime(env.expiry))
    say(f"    expiry    hour {env.expiry_hour} (= {when}, coarse on purpose)")
    say(f"    tag       {env.tag.hex() or '(none)'}")
    say(f"    body      {len(env.body)} B of ciphertext (size bucket), starts {env.body[:8].hex()}")
    say(f"    budget    {env.budget} hops")
    say(f"    stamp     {env.stamp.hex()}")
    say(f"    id        {env.id().hex()}")
    secrets = {
        "Alice's identity key": alice.identity.sign_public,
        "Alice's DH key": alice.identity.dh_public,
        "Bob's identity key": bob.identity.sign_public,
        "Bob's DH key": bob.identity.dh_public,
        "Bob's prekey": record.public,
        "Alice's fingerprint": alice.identity.fingerprint,
        "Bob's fingerprint": bob.identity.fingerprint,
        "the text": TEXT.encode(),
    }
    on_disk = b"".join(f.read_bytes() for f in relay_p.path.iterdir() if f.is_file())
    in_frame = [what for what, value in secrets.items() if value in frame]
    in_files = [what for what, value in secrets.items() if value in on_disk]
    say("    searched for: " + ", ".join(secrets))
    say(f"    in the message frame: {', '.join(in_frame) or 'none of them'}")
    say(f"    in the relay's files: {', '.join(in_files) or 'none of them'}")
    if set(in_files) <= {"Bob's identity key", "Bob's prekey"}:
        say("      (those come from Bob's prekey record of step 3, a public signed announcement;")
        say("       nothing in the message links it to that record, to Bob or to Alice)")
    try:
        open_first_contact(
            relay_p.identity, relay_p.ring, env.body, header_ad=env.header(), now=now
        )
        say("    !!! the relay could open it")
    except CryptoError:
        say("    the relay tries its own keys on the body: it does not open.")

    step(7, "A hostile relay flips one bit before passing the message on.")
    bad = bytearray(env.body)
    bad[100] ^= 0x01
    tampered = E.make(
        env.kind, env.expiry_hour, env.tag, bytes(bad), env.budget, env.stamp, env.receipt
    )
    ok = M.stamp_ok(tampered, STAMP_BITS)
    try:
        M.open_first_contact_envelope(bob.identity, bob.ring, tampered, now)
        say("    !!! tampered message opened")
    except CryptoError as exc:
        say(f"    the id changed, so the stamp no longer verifies (valid: {ok}): relays drop it;")
        say(f"    Bob's device rejects it as well: {exc}")

    step(8, "Bob comes back in range and syncs with the relay.")
    for eid in relay.ids_in_range(b"", None):
        raw = relay.get(eid)
        assert raw is not None
        got = E.decode(raw)
        if got.kind is not E.Kind.FIRST_CONTACT:
            continue
        try:
            opened = M.open_first_contact_envelope(bob.identity, bob.ring, got, now)
        except CryptoError:
            continue
        sender = next(
            (c for c in bob.contacts if c.card.identity.sign_public == opened.sender.sign_public),
            None,
        )
        who = f"{sender.name} (verified contact)" if sender and sender.verified else "unknown"
        say(f"    from:    {who}")
        say(f"    sent:    {time.strftime('%H:%M:%S UTC', time.gmtime(opened.created))}")
        say(f"    message: {opened.body.decode()!r}")
        relay.delete(eid, now)
        say(
            "    Bob's copy delivered; the relay deletes its copy and remembers the id "
            "(a replay is refused):"
        )
        say(
            f"    replaying the same frame to the relay -> "
            f"{relay_accepts(relay, raw, b'mallory', now).value}"
        )


if __name__ == "__main__":
    sys.exit(main())
