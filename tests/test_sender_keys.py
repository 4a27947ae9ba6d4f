"""Group messages with sender keys (crypto/sender_keys.py): delivery, order, bounds,
binding to group/epoch/author, forgery, membership changes."""

from __future__ import annotations

import random

import pytest

from crypto import primitives as p
from crypto import sender_keys as sk
from crypto import sender_keys_state as sks
from crypto.errors import AuthenticationError, SignatureError
from crypto.group_tag import WINDOW
from crypto.padding import BUCKETS
from crypto.sender_keys import MAX_SKIPPED_AGE, MAX_TEXT, OVERHEAD, Group, ReplayError
from tests.sender_keys_helpers import (
    T0,
    deliver,
    make_group,
    member_ids,
    reseal,
    rng,
    send,
    signature_of,
)


def test_round_trip_eight_members() -> None:
    groups = make_group(8)
    fits = 512 - OVERHEAD  # the longest body of the smallest bucket
    bodies = [b"", b"x" * fits, b"y" * (fits + 1), bytes(range(256)) * 7, b"z" * MAX_TEXT]
    for author in groups:
        for k, body in enumerate(bodies):
            data, tag = send(author, body, ad=b"hdr")
            assert len(data) in BUCKETS
            for reader in groups:
                if reader is author:
                    continue
                assert reader.expected_tags(T0)[tag] == (0, author.me, k)
                opened = reader.open(data, tag, T0, ad=b"hdr")
                assert (opened.author, opened.seq, opened.epoch, opened.body) == (
                    author.me,
                    k,
                    0,
                    body,
                )
    assert [len(groups[0].seal(b"x" * n)) for n in (fits, fits + 1)] == [512, 2048]


def test_caller_ad_is_bound() -> None:
    a, b = make_group(2)
    data, tag = send(a, b"hi", ad=b"envelope header 1")
    with pytest.raises(AuthenticationError):
        b.open(data, tag, T0, ad=b"envelope header 2")
    assert b.open(data, tag, T0, ad=b"envelope header 1").body == b"hi"


def test_out_of_order_and_every_duplicate_refused() -> None:
    a, b = make_group(2)
    sealed = [send(a, f"m{i}".encode()) for i in range(60)]
    order = list(range(60))
    random.Random(7).shuffle(order)
    opened = deliver(b, [sealed[i] for i in order])  # some wait for the window to move
    assert sorted(m.seq for m in opened) == list(range(60))
    assert all(m.body == f"m{m.seq}".encode() for m in opened)
    assert not set(b.expected_tags(T0)) & {tag for _data, tag in sealed}
    for i in order:
        with pytest.raises(ReplayError):
            b.open(*sealed[i], T0)


def test_own_message_refused() -> None:
    a, _b = make_group(2)
    data, tag = send(a, b"me")
    assert tag not in a.expected_tags(T0)
    with pytest.raises(ReplayError):
        a.open(data, tag, T0)


def test_window_then_recognised_once_earlier_ones_opened() -> None:
    a, b = make_group(2)
    sealed = [send(a, b"%d" % i) for i in range(WINDOW + 5)]
    expected = b.expected_tags(T0)
    assert [tag in expected for _data, tag in sealed] == [True] * WINDOW + [False] * 5
    with pytest.raises(ReplayError):
        b.open(*sealed[WINDOW + 4], T0)  # not recognised: nothing changes
    assert b.open(*sealed[4], T0).seq == 4  # 0..3 skipped, the window now starts at 5
    expected = b.expected_tags(T0)
    assert {sealed[i][1] for i in range(WINDOW + 5)} <= set(expected) | {sealed[4][1]}
    assert sealed[4][1] not in expected
    assert b.open(*sealed[WINDOW + 4], T0).seq == WINDOW + 4
    assert [b.open(*sealed[i], T0).seq for i in range(4)] == [0, 1, 2, 3]  # skipped keys
    seqs = sorted(seq for _e, _a, seq in b.expected_tags(T0).values())
    assert seqs == [*range(5, WINDOW + 4), *range(WINDOW + 5, 2 * WINDOW + 5)]  # skipped, window


def test_skipped_keys_per_chain_cap_evicts_the_oldest(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sks, "MAX_SKIPPED_PER_CHAIN", 40)  # where the chains read it
    a, b = make_group(2)
    sealed = [send(a, b"%d" % i) for i in range(2 * WINDOW)]
    b.open(*sealed[WINDOW - 1], T0)  # skips 0 .. WINDOW - 2
    b.open(*sealed[2 * WINDOW - 2], T0)  # WINDOW - 2 more: over the cap, the oldest go
    lost = 2 * WINDOW - 3 - 40
    for i in range(lost):
        assert sealed[i][1] not in b.expected_tags(T0)
        with pytest.raises(ReplayError):
            b.open(*sealed[i], T0)
    assert b.open(*sealed[lost], T0).seq == lost
    assert b.open(*sealed[2 * WINDOW - 1], T0).seq == 2 * WINDOW - 1


def test_skipped_keys_group_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sk, "MAX_SKIPPED_PER_GROUP", 5)
    a, b, c = make_group(3)
    from_a = [send(a, b"a%d" % i) for i in range(5)]
    from_b = [send(b, b"b%d" % i) for i in range(3)]
    c.open(*from_a[4], T0)  # 4 skipped
    c.open(*from_b[2], T0)  # 2 more: 6 > 5, the biggest chain (a's) loses its oldest
    with pytest.raises(ReplayError):
        c.open(*from_a[0], T0)
    assert [c.open(*m, T0).seq for m in from_a[1:4] + from_b[:2]] == [1, 2, 3, 0, 1]


def test_skipped_keys_expire() -> None:
    a, b = make_group(2)
    sealed = [send(a, b"%d" % i) for i in range(4)]
    b.open(*sealed[3], T0)  # 0, 1, 2 skipped at T0
    assert b.open(*sealed[0], T0 + MAX_SKIPPED_AGE).seq == 0  # still within the age
    assert sealed[1][1] not in b.expected_tags(T0 + MAX_SKIPPED_AGE + 1)
    with pytest.raises(ReplayError):
        b.open(*sealed[1], T0 + MAX_SKIPPED_AGE + 1)
    b.expire(T0 + MAX_SKIPPED_AGE + 1)
    with pytest.raises(ReplayError):
        b.open(*sealed[2], T0)
    assert sealed[2][1] not in b.expected_tags(T0)


def test_not_recognised_until_its_sender_key_arrives() -> None:
    ids = member_ids(3)
    r = rng()
    a = Group.create(ids[0], r)
    a.invite(ids[1])
    record = a.invite(ids[2])
    b, c = (Group.join(record, m, ids[0], r) for m in ids[1:])
    key_c = c.sender_key()  # taken at the join, before c sends: index 0
    data, tag = send(c, b"early")
    assert tag not in b.expected_tags(T0)
    with pytest.raises(ReplayError):
        b.open(data, tag, T0)
    assert b.accept_sender_key(key_c, ids[2], T0)
    assert b.expected_tags(T0)[tag] == (0, ids[2], 0)
    assert b.open(data, tag, T0).body == b"early"
    late = Group.join(record, ids[2], ids[0], r)  # a key taken after sending starts later
    late.seal(b"before the key")
    assert late.sender_key().index == 1


# -- binding: group, epoch, author, signature ----------------------------------------------
def test_message_replayed_into_another_group_refused() -> None:
    ids = member_ids(3)
    g1, g2 = make_group(3, seed=1, ids=ids), make_group(3, seed=2, ids=ids)
    data, tag = send(g1[0], b"only for group 1")
    with pytest.raises(ReplayError):
        g2[1].open(data, tag, T0)  # not a tag of group 2
    with pytest.raises(AuthenticationError):  # under group 2's tag of (author, 0): its key
        g2[1].open(data, g2[0].next_tag(), T0)
    # A member of both re-seals the author's message, with the author's own signature,
    # into group 2 under the author's group-2 chain: the signature names group 1.
    sig = signature_of(g1[2], data, tag)
    moved = reseal(g2[2], ids[0], 0, b"only for group 1", sig)
    with pytest.raises(SignatureError):
        g2[1].open(*moved, T0)
    # Control: the same re-sealing in the right group and place opens, so what refuses
    # ``moved`` is the binding, not the re-sealer.
    again = reseal(g1[2], ids[0], 0, b"only for group 1", sig)
    assert g1[1].open(*again, T0).body == b"only for group 1"


def test_reposted_under_another_author_refused() -> None:
    a, b, c, m = make_group(4)
    data, tag = send(a, b"said by a")
    sig = signature_of(m, data, tag)
    moved = reseal(m, b.me, 0, b"said by a", sig)  # as b's message 0, under b's chain
    with pytest.raises(SignatureError):
        c.open(*moved, T0)
    assert c.open(*send(b, b"b's own"), T0).seq == 0  # b's key 0 was not burnt


def test_reposted_under_another_epoch_refused() -> None:
    a, b, m = make_group(3)
    data, tag = send(a, b"epoch 0")
    sig = signature_of(m, data, tag)
    record, key_a = a.remove([], rng(9), T0)
    for g in (b, m):
        update = g.accept_epoch(record, a.me, rng(10 + len(g.me)), T0)
        assert update.sender_key is not None
        assert g.accept_sender_key(key_a, a.me, T0)
    moved = reseal(m, a.me, 0, b"epoch 0", sig)  # under a's epoch-1 chain
    with pytest.raises(SignatureError):
        b.open(*moved, T0)
    assert b.open(*send(a, b"epoch 1"), T0).epoch == 1


def test_member_forging_another_author_refused_and_burns_no_key() -> None:
    a, b, m = make_group(3)
    m_secret = m._outbound.signing_secret if m._outbound else b""
    eid = m._epochs[m._current].eid
    forged_sig = p.ed25519_sign(m_secret, sk._signed(m.group_id, eid, 0, a.me, 0, b"fake"))
    with pytest.raises(SignatureError):
        b.open(*reseal(m, a.me, 0, b"fake", forged_sig), T0)
    with pytest.raises(SignatureError):
        b.open(*reseal(m, a.me, 0, b"fake", bytes(64)), T0)
    assert b.open(*send(a, b"real"), T0).body == b"real"  # seq 0 still opens
