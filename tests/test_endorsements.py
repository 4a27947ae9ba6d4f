"""Bulletins endorsed by verified contacts, and personas (issue 16, part 3).

What is claimed, and against whom: a post is shown as "endorsed" to a reader only when at
least ``bulletins.endorsements`` of that reader's verified contacts signed an
endorsement of exactly that post; an endorsement cannot be forged by a relay, moved to
another post, or made to count by strangers, unverified contacts or a contact whose key
changed, however many of them sign. A post signed with a persona carries nothing of the
identity key (readers who know the person see an unknown key)."""

from __future__ import annotations

import dataclasses
import os
import time
from functools import partial
from pathlib import Path

import pytest
import trio

from crypto import keystore
from crypto.bulletin import (
    ENDORSE,
    Bulletin,
    endorsed_id,
    endorsement,
    post_id,
)
from crypto.errors import SignatureError
from crypto.wire import pack, strict_unpack
from mesh import ipc
from mesh.core.bundle import Bundle
from mesh.core.envelope import Kind, encode
from mesh.core.messages import bulletin_envelope, stamped
from mesh.daemon.daemon import Daemon
from mesh.ipc.events import BulletinEndorsed
from mesh.personas import Persona
from mesh.profile import create_profile, open_profile
from tests.daemon_helpers import befriend, loopback_config, make_profile
from tests.test_daemon import start, until

NOW = 1_800_000_000


def _post(seed: bytes, text: str = "the bridge on Abay is closed", **kw: object) -> Bulletin:
    fields: dict[str, object] = {
        "type": "post", "key": "roads", "sequence": NOW, "created": NOW,
        "expiry": NOW + 3600, "body": text.encode(),
    }  # fmt: skip
    fields.update(kw)
    return Bulletin.create(seed, **fields)  # type: ignore[arg-type]


# ---- the records ------------------------------------------------------------------------
def test_a_post_id_covers_every_signed_field() -> None:
    seed = os.urandom(32)
    base = _post(seed)
    others = [
        _post(os.urandom(32)),
        _post(seed, key="water"),
        _post(seed, sequence=NOW + 1),
        _post(seed, created=NOW - 1),
        _post(seed, expiry=NOW + 7200),
        _post(seed, "the bridge on Abay is open"),
    ]
    assert len({post_id(b) for b in [base, *others]}) == 1 + len(others)
    assert post_id(Bulletin.decode(base.encode())) == post_id(base)


def test_an_endorsement_names_one_post_and_cannot_be_moved_or_forged() -> None:
    post, other = _post(os.urandom(32)), _post(os.urandom(32), "the bridge is open")
    e = endorsement(os.urandom(32), post, NOW + 10)
    e.verify(NOW + 10)
    assert (e.type, e.body, e.expiry) == (ENDORSE, b"", post.expiry)
    assert endorsed_id(e) == post_id(post)
    moved = dataclasses.replace(e, key=post_id(other).hex())  # a relay points it elsewhere
    with pytest.raises(SignatureError):
        moved.verify(NOW + 10)
    forged = dataclasses.replace(e, signature=bytes(64))
    with pytest.raises(SignatureError):
        forged.verify(NOW + 10)


@pytest.mark.parametrize(
    "change",
    [
        {"type": "post"},
        {"body": b"x"},
        {"key": "AB" * 32},  # not lowercase: two spellings of one id
        {"key": "ab " * 21 + "a"},  # fromhex would skip the spaces
        {"key": "zz" * 32},
        {"key": "ab" * 31},
    ],
)
def test_only_a_well_formed_endorsement_names_a_post(change: dict[str, object]) -> None:
    e = endorsement(os.urandom(32), _post(os.urandom(32)), NOW)
    assert endorsed_id(dataclasses.replace(e, **change)) is None  # type: ignore[arg-type]


def test_only_live_posts_can_be_endorsed() -> None:
    post = _post(os.urandom(32))
    with pytest.raises(ValueError, match="expired"):
        endorsement(os.urandom(32), post, post.expiry)
    e = endorsement(os.urandom(32), post, NOW)
    with pytest.raises(ValueError, match="only posts"):
        endorsement(os.urandom(32), e, NOW)


# ---- personas at rest -------------------------------------------------------------------
def test_personas_are_kept_in_the_keystore_and_old_keystores_still_open(tmp_path: Path) -> None:
    params = keystore.KdfParams.named("interactive")
    prof = create_profile(tmp_path / "p", "Alice", b"pass phrase", params, NOW, os.urandom)
    assert prof.personas == []
    prof.personas.append(Persona("Witness", os.urandom(32)))
    prof.save(os.urandom)
    assert open_profile(tmp_path / "p", b"pass phrase").personas == prof.personas
    raw = (tmp_path / "p" / "keystore").read_bytes()
    assert b"Witness" not in raw
    assert prof.personas[0].seed not in raw
    # A keystore written before personas (seven items) opens with none.
    old = create_profile(tmp_path / "o", "Bob", b"pass phrase", params, NOW, os.urandom)
    items = strict_unpack(old._secrets(), max_size=1 << 20, max_array_len=100000)
    blob = (tmp_path / "o" / "keystore").read_bytes()
    seven = pack(items[:7])
    (tmp_path / "o" / "keystore").write_bytes(
        keystore.replace_secrets(blob, old.data_key, seven, os.urandom)
    )
    again = open_profile(tmp_path / "o", b"pass phrase")
    assert (again.name, again.personas) == ("Bob", [])


# ---- real daemons -----------------------------------------------------------------------
def test_endorsements_by_verified_contacts_and_nobody_else_make_a_post_endorsed(
    tmp_path: Path,
) -> None:
    """Dave, a stranger to Carol, posts twice. Bob (Carol's verified contact) endorses the
    first; Eve (Carol's unverified contact) and Mallory (a stranger) endorse the second,
    and a relay's forgery and a moved endorsement reach Carol's node too: only the first
    post is endorsed for Carol, by Bob."""
    now = int(time.time())
    names = ("Bob", "Carol", "Dave", "Eve", "Mallory")
    bob, carol, dave, eve, mallory = (make_profile(tmp_path, n, now) for n in names)
    befriend(carol, bob, now)
    befriend(carol, eve, now)
    next(c for c in carol.contacts if c.name == "Bob").verified = True
    cfg = loopback_config()

    async def main() -> None:
        async with trio.open_nursery() as n:
            b, c, d, e, m = [await start(n, p, cfg) for p in (bob, carol, dave, eve, mallory)]
            events = Recorder(c.daemon.local_api)
            c.daemon.local_api = events  # type: ignore[assignment]
            first = d.daemon.ops.bulletin_post("checkpoint at the bridge", topic="roads")
            second = d.daemon.ops.bulletin_post("free bread at the mosque", topic="food")
            for who in (b, c, e, m):
                await until("both posts", partial(_holds, who.daemon, 2))
            ids = {r.topic: r.post_id for r in c.daemon.ops.bulletin_list()}
            assert ids["roads"] != ids["food"]
            assert {first.topic, second.topic} == set(ids)
            b.daemon.ops.bulletin_endorse(ids["roads"][:10])
            e.daemon.ops.bulletin_endorse(ids["food"])
            m.daemon.ops.bulletin_endorse(ids["food"])
            # A relay's forgery in Bob's name, and Bob's endorsement moved to the other post.
            food = next(x for x in d.daemon.node.bulletins(d.daemon.now()) if x.key == "food")
            real = endorsement(bob.identity.sign_seed, food, d.daemon.now())
            forged = dataclasses.replace(real, signature=bytes(64))
            roads_post = next(x for x in d.daemon.node.bulletins(now) if x.key == "roads")
            bobs = endorsement(bob.identity.sign_seed, roads_post, d.daemon.now())
            moved = dataclasses.replace(bobs, key=post_id(food).hex())
            frames = [encode(stamped(bulletin_envelope(x), 8, os.urandom)) for x in (forged, moved)]
            courier = tmp_path / "courier.steppe"
            courier.write_bytes(Bundle(now, now + 3600, frames).encode())
            got = c.daemon.ops.import_(str(courier))  # a hostile courier hands them over
            assert got["envelopes"] == 2
            assert got.get("stored", 0) == 0, got

            def roads() -> ipc.calls.BulletinRow:
                return next(r for r in c.daemon.ops.bulletin_list() if r.topic == "roads")

            await until("Bob's endorsement at Carol's", lambda: roads().level == "endorsed")
            await until(
                "the strangers' endorsements at Carol's node",
                lambda: _endorsements(c.daemon) >= 3,
            )
            rows = {r.topic: r for r in c.daemon.ops.bulletin_list()}
            assert rows["roads"].endorsed_by == ("Bob",)
            assert rows["roads"].signer.startswith("unknown key ")
            assert (rows["food"].level, rows["food"].endorsed_by) == ("unknown", ())
            said = [x for x in events.said if isinstance(x, BulletinEndorsed)]
            assert said == [BulletinEndorsed(ids["roads"], "Bob")]
            # Bob sees his own endorsement, which moves no level for him.
            mine = next(r for r in b.daemon.ops.bulletin_list() if r.topic == "roads")
            assert (mine.level, mine.endorsed_by) == ("unknown", ("you",))
            with pytest.raises(ipc.IpcError, match="already"):
                b.daemon.ops.bulletin_endorse(ids["roads"])
            with pytest.raises(ipc.IpcError, match="no post"):
                b.daemon.ops.bulletin_endorse("00000000")
            with pytest.raises(ipc.IpcError, match="your own post"):
                d.daemon.ops.bulletin_endorse(ids["roads"])
            # Bob's key changes at Carol's: his endorsement stops counting.
            bob_at_carol = next(x for x in carol.contacts if x.name == "Bob")
            bob_at_carol.key_changed = True
            assert (roads().level, roads().endorsed_by) == ("unknown", ())
            n.cancel_scope.cancel()

    trio.run(main)


class Recorder:
    """The daemon's local API with a subscriber that keeps every event it is sent."""

    subscribed = True

    def __init__(self, inner: object) -> None:
        self.inner = inner
        self.said: list[object] = []

    def publish(self, event: object) -> None:
        self.said.append(event)

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)


def _holds(d: Daemon, posts: int) -> bool:
    return len(d.ops.bulletin_list()) == posts


def _endorsements(d: Daemon) -> int:
    return sum(1 for b in d.node.bulletins(d.now()) if b.type == ENDORSE)


def test_a_threshold_of_two_needs_two_verified_endorsers(tmp_path: Path) -> None:
    now = int(time.time())
    bob, carol, dave, eve = (
        make_profile(tmp_path, n, now) for n in ("Bob", "Carol", "Dave", "Eve")
    )
    for friend in (bob, eve):
        befriend(carol, friend, now)
    for contact in carol.contacts:
        contact.verified = True

    async def main() -> None:
        async with trio.open_nursery() as n:
            cfg = loopback_config()
            b, e, d = [await start(n, p, cfg) for p in (bob, eve, dave)]
            c = await start(n, carol, dataclasses.replace(cfg, bulletins_endorsements=2))
            pid = d.daemon.ops.bulletin_post("water at school 12", topic="water")
            await until("the post", lambda: len(c.daemon.ops.bulletin_list()) == 1)
            await until("the post at Bob's", lambda: len(b.daemon.ops.bulletin_list()) == 1)
            await until("the post at Eve's", lambda: len(e.daemon.ops.bulletin_list()) == 1)
            pid_hex = c.daemon.ops.bulletin_list()[0].post_id
            assert pid.topic == "water"
            b.daemon.ops.bulletin_endorse(pid_hex)
            await until(
                "one endorser", lambda: c.daemon.ops.bulletin_list()[0].endorsed_by == ("Bob",)
            )
            assert c.daemon.ops.bulletin_list()[0].level == "unknown"
            e.daemon.ops.bulletin_endorse(pid_hex)
            await until("two", lambda: c.daemon.ops.bulletin_list()[0].level == "endorsed")
            assert c.daemon.ops.bulletin_list()[0].endorsed_by == ("Bob", "Eve")
            n.cancel_scope.cancel()

    trio.run(main)


def test_a_persona_post_carries_nothing_of_the_identity(tmp_path: Path) -> None:
    now = int(time.time())
    alice, bob = make_profile(tmp_path, "Alice", now), make_profile(tmp_path, "Bob", now)
    befriend(alice, bob, now)
    bob.contacts[0].verified = True

    async def main() -> None:
        async with trio.open_nursery() as n:
            cfg = loopback_config()
            a, b = await start(n, alice, cfg), await start(n, bob, cfg)
            made = a.daemon.ops.handle(ipc.calls.PersonaNew("Witness"), lambda: None)
            assert made.persona != alice.identity.sign_public
            with pytest.raises(ipc.IpcError, match="exists already"):
                a.daemon.ops.handle(ipc.calls.PersonaNew("witness"), lambda: None)
            with pytest.raises(ipc.IpcError, match="no persona named 'Ghost'"):
                a.daemon.ops.bulletin_post("x", persona="Ghost")
            a.daemon.ops.bulletin_post("soldiers at the square", topic="square", persona="Witness")
            a.daemon.ops.bulletin_post("I am safe", topic="me")
            await until("both posts at Bob's", lambda: len(b.daemon.ops.bulletin_list()) == 2)
            seen = {r.topic: r for r in b.daemon.ops.bulletin_list()}
            assert seen["me"].signer == "Alice (verified contact)"
            assert seen["square"].signer.startswith("unknown key ")
            assert seen["square"].level == "unknown"
            own = {r.topic: r for r in a.daemon.ops.bulletin_list()}
            assert own["square"].signer == "you (persona Witness)"
            assert own["square"].level == "you"
            # On the wire: the persona post's envelope holds no identity key, fingerprint
            # or name of Alice's.
            pub = alice.identity.public()
            secrets = [pub.sign_public, pub.fingerprint, b"Alice", pub.dh_public]
            frames = [encode(env) for env in b.daemon.node._index.public(Kind.BULLETIN)]
            square = [f for f in frames if b"soldiers" in f]
            assert len(square) == 1
            assert not any(s in square[0] for s in secrets)
            assert made.persona in square[0]
            n.cancel_scope.cancel()

    trio.run(main)


def test_the_threshold_is_at_least_one_and_a_bad_one_is_one_line() -> None:
    from mesh.daemon.config import ConfigError, parse

    assert parse("[bulletins]\nendorsements = 3\n", "c.toml").bulletins_endorsements == 3
    with pytest.raises(ConfigError, match=r"bulletins\.endorsements must be at least 1, not 0"):
        parse("[bulletins]\nendorsements = 0\n", "c.toml")
