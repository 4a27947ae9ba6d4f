"""Sender keys: membership, epochs, tags, record decoding and hostile bytes."""

from __future__ import annotations

import contextlib
from dataclasses import replace

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crypto.errors import AuthenticationError, CryptoError, DecodeError
from crypto.group_tag import WINDOW, message_tag
from crypto.sender_keys import (
    EPOCH_GRACE,
    MAX_MEMBERS,
    EpochRecord,
    Group,
    MembershipError,
    ReplayError,
    SenderKey,
)
from crypto.wire import pack
from tests.sender_keys_helpers import T0, deliver, make_group, member_ids, rng, send


def _rekey(groups: list[Group], by: Group, gone: list[Group], now: int = T0) -> None:
    """``by`` removes ``gone``; the rest accept the epoch and every new sender key."""
    record, key = by.remove([g.me for g in gone], rng(50), now)
    stay = [g for g in groups if g not in gone]
    keys = [key]
    for g in stay:
        if g is not by:
            update = g.accept_epoch(EpochRecord.decode(record.encode()), by.me, rng(60), now)
            assert update.sender_key is not None
            assert update.sender_key.index == 0
            keys.append(update.sender_key)
    for g in stay:
        for k in keys:
            if k.author != g.me:
                assert g.accept_sender_key(k, k.author, now)


def test_removed_member_cannot_read_the_new_epoch() -> None:
    groups = make_group(4)
    a, b, c, x = groups
    _rekey(groups, a, [x])
    data, tag = send(b, b"not for x")
    assert tag not in x.expected_tags(T0)
    assert c.expected_tags(T0)[tag] == (1, b.me, 0)
    assert c.open(data, tag, T0).body == b"not for x"
    with pytest.raises(ReplayError):
        x.open(data, tag, T0)
    with pytest.raises(AuthenticationError):  # under x's own guess of the old epoch's tag
        x.open(data, next(iter(x.expected_tags(T0))), T0)
    assert x.me not in a.members
    assert a.epoch == 1


def test_after_removal_the_removed_cannot_post_in_the_old_epoch() -> None:
    groups = make_group(4)
    a, b, c, x = groups
    in_flight = [send(b, b"sent in epoch 0"), send(b, b"also")]  # still travelling
    from_x = send(x, b"x after its removal")
    _rekey(groups, a, [x])
    assert from_x[1] not in c.expected_tags(T0)  # x's chain is gone
    with pytest.raises(ReplayError):
        c.open(*from_x, T0)
    assert in_flight[1][1] in c.expected_tags(T0 + EPOCH_GRACE)
    assert c.open(*in_flight[0], T0 + EPOCH_GRACE).epoch == 0  # within the old one's grace
    new = send(a, b"new")
    assert in_flight[1][1] not in c.expected_tags(T0 + EPOCH_GRACE + 1)
    with pytest.raises(ReplayError):
        c.open(*in_flight[1], T0 + EPOCH_GRACE + 1)  # epoch 0 is gone with its chains
    assert c.open(*new, T0 + EPOCH_GRACE + 1).epoch == 1


def test_invitee_reads_from_its_join_on_only() -> None:
    groups = make_group(3)
    a, b, c = groups
    before = send(a, b"before the invite")
    newcomer = member_ids(4)[3]
    record = a.invite(newcomer)
    n = Group.join(record, newcomer, a.me, rng(5))
    assert n.accept_sender_key(a.sender_key(), a.me, T0)
    for g in (b, c):  # the others learn of the newcomer from a, then send it their keys
        assert g.accept_epoch(record, a.me, rng(6), T0).added == (newcomer,)
        assert n.accept_sender_key(g.sender_key(), g.me, T0)
        assert g.accept_sender_key(n.sender_key(), newcomer, T0)  # n sent nothing yet
    assert before[1] not in n.expected_tags(T0)
    with pytest.raises(ReplayError):
        n.open(*before, T0)
    assert n.open(*send(a, b"after"), T0).body == b"after"
    assert n.open(*send(b, b"from b"), T0).body == b"from b"


def test_sender_key_waits_for_its_epoch_and_its_author() -> None:
    ids = member_ids(3)
    a = Group.create(ids[0], rng(1))
    record = a.invite(ids[1])
    b = Group.join(record, ids[1], ids[0], rng(2))
    record = a.invite(ids[2])  # b does not know ids[2] yet
    c = Group.join(record, ids[2], ids[0], rng(3))
    assert not b.accept_sender_key(c.sender_key(), ids[2], T0)  # not a member to b: held
    data = send(c, b"hi")
    assert data[1] not in b.expected_tags(T0)
    assert b.accept_epoch(record, ids[0], rng(4), T0).added == (ids[2],)
    assert data[1] in b.expected_tags(T0)  # the held key is installed: look again
    assert b.open(*data, T0).body == b"hi"


def test_membership_checks() -> None:
    a, b, c = make_group(3)
    with pytest.raises(MembershipError):
        b.accept_sender_key(c.sender_key(), a.me, T0)  # not from its author
    other = make_group(2, seed=8, ids=[a.me, b.me])
    with pytest.raises(MembershipError):
        b.accept_sender_key(other[0].sender_key(), a.me, T0)  # another group
    stranger = member_ids(9)[8]
    with pytest.raises(MembershipError):
        b.accept_epoch(a.epoch_record(), stranger, rng(1), T0)
    record, _key = a.remove([c.me], rng(2), T0)
    with pytest.raises(MembershipError):
        c.accept_epoch(record, a.me, rng(3), T0)  # does not name c
    with pytest.raises(MembershipError):
        b.accept_sender_key(replace(a.sender_key(), author=b.me), b.me, T0)  # "from us"
    with pytest.raises(ValueError, match="leave"):
        a.remove([a.me], rng(6), T0)


def test_second_sender_key_for_one_author_and_epoch_refused() -> None:
    a, b = make_group(2)
    twin = Group.join(a.epoch_record(), a.me, b.me, rng(77))  # another chain for "a"
    with pytest.raises(AuthenticationError):
        b.accept_sender_key(twin.sender_key(), a.me, T0)
    assert b.accept_sender_key(a.sender_key(), a.me, T0)  # a copy of the held one: fine


def test_at_most_64_members() -> None:
    ids = member_ids(MAX_MEMBERS + 1)
    a = Group.create(ids[0], rng(1))
    for m in ids[1:MAX_MEMBERS]:
        a.invite(m)
    assert len(a.members) == MAX_MEMBERS
    with pytest.raises(MembershipError):
        a.invite(ids[MAX_MEMBERS])


def test_leave_forgets_everything() -> None:
    a, b = make_group(2)
    data = send(a, b"bye")
    b.leave()
    assert b.left
    with pytest.raises(MembershipError):
        b.open(*data, T0)
    with pytest.raises(MembershipError):
        b.expected_tags(T0)
    with pytest.raises(MembershipError):
        b.seal(b"x")


@pytest.mark.parametrize("order", ["first-wins", "second-wins"])
def test_concurrent_rekeys_converge_and_report_lost_removals(order: str) -> None:
    groups = make_group(5)
    a, b, c, x, y = groups
    rec_a, _ = a.remove([x.me], rng(11), T0)
    rec_b, _ = b.remove([y.me], rng(12), T0)
    assert rec_a.number == rec_b.number == 1
    seq = [(rec_a, a.me), (rec_b, b.me)]
    if order == "second-wins":
        seq.reverse()
    lost: set[bytes] = set()
    for record, sender in seq:
        lost |= set(c.accept_epoch(record, sender, rng(13), T0).lost_removals)
    winner = min((rec_a, rec_b), key=lambda r: r.epoch_id)
    assert c.epoch_record() == winner
    loser_removed = {x.me} if winner is rec_b else {y.me}
    assert lost == loser_removed
    c.remove(lost, rng(14), T0)
    assert c.members == {a.me, b.me, c.me}
    assert c.epoch == 2


# -- tags -------------------------------------------------------------------------------
def test_no_two_envelopes_share_a_tag() -> None:
    groups = make_group(4)
    a = groups[0]
    tags = [send(g, b"same body")[1] for g in groups for _ in range(50)]
    _rekey(groups, a, [])
    tags += [send(g, b"same body")[1] for g in groups for _ in range(50)]
    assert len(set(tags)) == len(tags) == 400  # authors, counters and epochs apart
    other = make_group(4, seed=3, ids=[g.me for g in groups])
    assert not {send(g, b"same body")[1] for g in other} & set(tags)  # groups apart
    # The tag is a keyed hash of (author, counter) and nothing else: not of the time, the
    # body or the caller's ad; without the epoch's tag key it is not computable.
    key = a._epochs[a._current].tag_key
    assert a.next_tag() == message_tag(key, a.me, 50)
    assert send(a, b"other body", ad=b"any header")[1] == message_tag(key, a.me, 50)
    assert message_tag(bytes(32), a.me, 51) != a.next_tag()


def test_recognition_window_per_chain_and_epoch() -> None:
    groups = make_group(4)
    a, b, c, d = groups
    expected = b.expected_tags(T0)
    assert len(expected) == 3 * WINDOW  # a, c and d: never b's own
    assert sorted(expected.values()) == sorted(
        (0, g.me, seq) for g in (a, c, d) for seq in range(WINDOW)
    )
    in_flight = send(a, b"old epoch")
    _rekey(groups, a, [])
    both = b.expected_tags(T0)
    assert len(both) == 2 * 3 * WINDOW  # the old epoch in its grace, and the new one
    assert both[in_flight[1]] == (0, a.me, 0)
    assert len(b.expected_tags(T0 + EPOCH_GRACE + 1)) == 3 * WINDOW
    assert deliver(b, [in_flight], T0)[0].epoch == 0


def test_at_most_63_times_window_tags_per_epoch() -> None:
    groups = make_group(MAX_MEMBERS)
    expected = groups[5].expected_tags(T0)
    assert len(expected) == (MAX_MEMBERS - 1) * WINDOW
    assert {author for _e, author, _s in expected.values()} == {
        g.me for g in groups if g is not groups[5]
    }


# -- records ------------------------------------------------------------------------------
def _key() -> SenderKey:
    return make_group(2)[0].sender_key()


def test_records_round_trip() -> None:
    key = _key()
    assert SenderKey.decode(key.encode()) == key
    record = make_group(3)[0].epoch_record()
    assert EpochRecord.decode(record.encode()) == record


def _sender_key_fields() -> list[object]:
    k = _key()
    return [1, k.group_id, k.epoch_id, k.author, k.signing_public, k.index, k.ratchet]


def _bad_sender_keys() -> list[bytes]:
    f = _sender_key_fields()
    bad = []
    for i, value in enumerate(f):
        if isinstance(value, bytes):
            bad += [
                pack([*f[:i], value[:-1], *f[i + 1 :]]),
                pack([*f[:i], value + b"\x00", *f[i + 1 :]]),
            ]
    bad.append(pack([2, *f[1:]]))  # unknown version
    bad.append(pack([*f[:5], 2**32 - 1, f[6]]))  # an index no chain can send from
    bad.append(pack([*f[:5], -1, f[6]]))
    bad.append(pack(f[:6]))  # a field missing
    bad.append(pack([*f, b""]))  # a field too many
    bad.append(pack(dict(enumerate(f))))  # a map
    bad.append(pack(f) + b"\0")  # trailing bytes
    bad.append(msgpack.packb([*f[:5], f[5], f[6]], use_bin_type=False))  # str, not bin
    long_index = pack(f)[:-131] + b"\xce\x00\x00\x00\x00" + pack(f)[-130:]
    bad.append(long_index)  # index 0 as a 32-bit integer: not canonical
    return bad


@pytest.mark.parametrize("data", _bad_sender_keys())
def test_sender_key_decode_is_strict(data: bytes) -> None:
    with pytest.raises(DecodeError):
        SenderKey.decode(data)


def test_the_canonical_check_sees_the_long_index() -> None:
    f = _sender_key_fields()
    assert f[5] == 0
    assert pack(f)[-131] == 0


def _bad_epoch_records() -> list[bytes]:
    r = make_group(3)[0].epoch_record()
    m = list(r.members)
    return [
        pack([1, r.group_id, r.number, r.secret, m[::-1]]),  # unsorted
        pack([1, r.group_id, r.number, r.secret, [m[0], m[0]]]),  # repeated
        pack([1, r.group_id, r.number, r.secret, []]),  # nobody
        pack([1, r.group_id, r.number, r.secret, [x + b"\0" for x in m]]),
        pack([1, r.group_id, r.number, r.secret[:31], m]),
        pack([1, r.group_id, r.number, r.secret, sorted(member_ids(MAX_MEMBERS + 1))]),
        pack([2, r.group_id, r.number, r.secret, m]),
        pack([1, r.group_id, r.number, r.secret, m, 0]),
    ]


@pytest.mark.parametrize("data", _bad_epoch_records())
def test_epoch_record_decode_is_strict(data: bytes) -> None:
    with pytest.raises(DecodeError):
        EpochRecord.decode(data)


# -- hostile bytes ------------------------------------------------------------------------
def test_every_tampered_byte_refused_and_nothing_changes() -> None:
    a, b = make_group(2)
    data, tag = send(a, b"intact")
    for i in range(len(data)):
        bad = data[:i] + bytes([data[i] ^ 0x01]) + data[i + 1 :]
        with pytest.raises(AuthenticationError):
            b.open(bad, tag, T0)
    for i in range(len(tag)):
        with pytest.raises(ReplayError):
            b.open(data, tag[:i] + bytes([tag[i] ^ 0x01]) + tag[i + 1 :], T0)
    for bad in (data[:-1], data + b"\0", data[:100], b"", data + bytes(16384 - 512 + 1)):
        with pytest.raises(DecodeError):
            b.open(bad, tag, T0)
    for bad_tag in (tag[:-1], tag + b"\0", b""):
        with pytest.raises(DecodeError):
            b.open(data, bad_tag, T0)
    assert b.open(data, tag, T0).body == b"intact"


_GROUP = make_group(2, seed=21)
_SEALED, _TAG = send(_GROUP[0], b"fuzz me")


@settings(max_examples=300, deadline=None)
@given(
    st.binary(max_size=600),
    st.integers(0, 511),
    st.binary(min_size=1, max_size=8),
    st.binary(max_size=10),
)
def test_fuzz_open_raises_only_crypto_errors(
    junk: bytes, at: int, patch: bytes, tag: bytes
) -> None:
    reader = _GROUP[1]
    padded = bytes(512 - len(junk[:512])) + junk[:512]
    patched = _SEALED[:at] + patch + _SEALED[at + len(patch) :]
    for data in (junk, padded, patched):
        for t in (_TAG, tag, tag.ljust(8, b"\0")[:8]):
            with contextlib.suppress(CryptoError):
                reader.open(data, t, T0)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_fuzz_records_raise_only_decode_errors(data: bytes) -> None:
    for decode in (SenderKey.decode, EpochRecord.decode):
        with contextlib.suppress(DecodeError):
            decode(data)
