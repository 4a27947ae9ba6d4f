"""Saving and loading a member's group state (Group.to_list / Group.from_list): a state
saved mid-conversation loads into one that opens and refuses exactly what the original
does; a damaged or truncated state raises DecodeError and nothing else."""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crypto import sender_keys as sk
from crypto.errors import CryptoError, DecodeError
from crypto.sender_keys import (
    EPOCH_GRACE,
    MAX_SKIPPED_AGE,
    Group,
    Opened,
    ReplayError,
    SenderKey,
)
from crypto.wire import pack, strict_unpack
from tests.sender_keys_helpers import T0, make_group, member_ids, rng, send

Sent = tuple[bytes, bytes]


def _rekey(groups: list[Group], by: Group, now: int) -> None:
    record, key = by.remove([], rng(len(by.me) + now % 97), now)
    keys = [key]
    for g in groups:
        if g is not by:
            update = g.accept_epoch(record, by.me, rng(now % 89), now)
            assert update.sender_key is not None
            keys.append(update.sender_key)
    for g in groups:
        for k in keys:
            if k.author != g.me:
                assert g.accept_sender_key(k, k.author, now)


class _Scene:
    """b's state mid-conversation: skipped keys in three epochs (two of them in their
    grace), messages in flight, and two sender keys pending (one whose author b does not
    know as a member yet, one whose epoch b has not heard of)."""

    def __init__(self) -> None:
        a, b, c = make_group(3)
        self.a, self.b, self.c = a, b, c
        self.sent: list[Sent] = []
        e0 = [send(a, b"e0 a%d" % i) for i in range(6)] + [send(c, b"e0 c%d" % i) for i in range(3)]
        b.open(*e0[5], T0)  # a's 0..4 skipped
        b.open(*e0[1], T0)
        _rekey([a, b, c], a, T0 + 10)
        e1 = [send(c, b"e1 c%d" % i) for i in range(4)]
        b.open(*e1[2], T0 + 20)  # c's 0, 1 skipped in epoch 1
        _rekey([a, b, c], c, T0 + 30)
        e2 = [send(a, b"e2 a%d" % i) for i in range(3)] + [send(b, b"own")]
        b.open(*e2[1], T0 + 40)
        newcomer = member_ids(5)[4]
        self.invite = a.invite(newcomer)
        self.n = Group.join(self.invite, newcomer, a.me, rng(7))
        assert not b.accept_sender_key(self.n.sender_key(), newcomer, T0 + 50)  # pending
        self.record3, key3 = a.remove([], rng(8), T0 + 60)  # epoch 3, b not told yet
        assert not b.accept_sender_key(key3, a.me, T0 + 60)  # pending
        self.sent = e0 + e1 + e2


def _outcome(g: Group, sent: Sent, now: int) -> object:
    """What opening ``sent`` gives: the message, or the type of the error."""
    try:
        return g.open(*sent, now)
    except CryptoError as exc:
        return type(exc)


def _load(state: list[object]) -> Group:
    data = pack(state)
    return Group.from_list(strict_unpack(data, max_size=len(data), max_array_len=1 << 16))


def test_round_trip_opens_and_refuses_exactly_as_the_original() -> None:
    scene = _Scene()
    b = scene.b
    state = b.to_list()
    loaded = _load(state)
    assert loaded.to_list() == state
    assert (loaded.epoch, loaded.members, loaded.left) == (b.epoch, b.members, False)
    for now in (T0 + 60, T0 + 10 + EPOCH_GRACE + 1, T0 + MAX_SKIPPED_AGE + 1):
        assert loaded.expected_tags(now) == b.expected_tags(now)
    assert loaded.next_tag() == b.next_tag()
    assert loaded.seal(b"same", b"hdr") == b.seal(b"same", b"hdr")  # outbound chain, key
    passes = []
    for _twice in range(2):  # then every one a duplicate
        outcomes = []
        for sent in scene.sent:
            mine = _outcome(b, sent, T0 + 70)
            assert _outcome(loaded, sent, T0 + 70) == mine
            outcomes.append(mine)
        passes.append(outcomes)
    opened = [o.body for o in passes[0] if isinstance(o, Opened)]
    assert len(opened) == len(scene.sent) - 5  # all but the 4 opened before and our own
    assert {b"e0 a0", b"e0 c2", b"e1 c0", b"e1 c3", b"e2 a2"} <= set(opened)
    assert passes[1] == [ReplayError] * len(scene.sent)
    assert loaded.to_list() == b.to_list()
    # The pending keys: installed, alike, when their author and epoch become known.
    for g in (b, loaded):
        assert g.accept_epoch(scene.invite, scene.a.me, rng(9), T0 + 80).added == (scene.n.me,)
    from_n = send(scene.n, b"hello from the newcomer")
    assert loaded.open(*from_n, T0 + 80) == b.open(*from_n, T0 + 80)
    updates = [g.accept_epoch(scene.record3, scene.a.me, rng(10), T0 + 90) for g in (b, loaded)]
    assert updates[0] == updates[1]
    from_a = send(scene.a, b"epoch 3")
    assert loaded.open(*from_a, T0 + 90) == b.open(*from_a, T0 + 90)
    assert loaded.to_list() == b.to_list()


def test_what_is_opened_after_loading_stays_opened() -> None:
    scene = _Scene()
    opened = scene.b.open(*scene.sent[0], T0 + 70)  # a's skipped 0 in epoch 0
    loaded = _load(scene.b.to_list())
    assert opened.seq == 0
    assert _outcome(loaded, scene.sent[0], T0 + 70) is ReplayError
    assert loaded.open(*scene.sent[2], T0 + 70).seq == 2


def test_a_member_who_left_loads_as_left() -> None:
    _a, b = make_group(2)
    b.leave()
    loaded = _load(b.to_list())
    assert loaded.left
    assert loaded.to_list() == b.to_list()


# -- damaged states -----------------------------------------------------------------------
_STATE: list[Any] = _Scene().b.to_list()


def _damaged() -> list[tuple[str, list[Any]]]:
    bad: list[tuple[str, list[Any]]] = []

    def case(what: str, edit: Callable[[list[Any]], object]) -> None:
        s = copy.deepcopy(_STATE)
        edit(s)
        bad.append((what, s))

    def at(*path: int) -> Callable[[list[Any]], list[Any]]:
        def get(s: list[Any]) -> list[Any]:
            node = s
            for i in path:
                node = node[i]
            return node

        return get

    top, epoch, chain, skip, out = at(), at(5, 0), at(5, 0, 4, 0), at(5, 0, 4, 0, 4), at(4)

    def truncate(node: Callable[[list[Any]], list[Any]]) -> Callable[[list[Any]], object]:
        return lambda s: node(s).pop()

    def extend(node: Callable[[list[Any]], list[Any]]) -> Callable[[list[Any]], object]:
        return lambda s: node(s).append(0)

    for name, node in (("state", top), ("epoch", epoch), ("chain", chain), ("outbound", out)):
        case(f"{name} truncated", truncate(node))
        case(f"{name} extended", extend(node))
    case("skipped key truncated", lambda s: skip(s)[0].pop())
    case("version", lambda s: top(s).__setitem__(0, 2))
    case("group id", lambda s: top(s).__setitem__(1, b"\0" * 15))
    case("me not a member", lambda s: top(s).__setitem__(2, b"\1" * 32))
    case("current epoch unknown", lambda s: top(s).__setitem__(3, b"\0" * 16))
    case("no outbound chain", lambda s: top(s).__setitem__(4, None))
    case("an epoch twice", lambda s: top(s)[5].append(copy.deepcopy(top(s)[5][0])))
    case("current epoch ended", lambda s: [e.__setitem__(3, T0) for e in top(s)[5]])
    case("old epoch not ended", lambda s: epoch(s).__setitem__(3, None))
    case("epoch end a bool", lambda s: epoch(s).__setitem__(3, True))
    case("epoch number negative", lambda s: epoch(s).__setitem__(0, -1))
    case("epoch secret short", lambda s: epoch(s).__setitem__(1, b"\0" * 31))
    case("members unsorted", lambda s: epoch(s)[2].reverse())
    case("members repeated", lambda s: epoch(s)[2].append(epoch(s)[2][-1]))
    case("members not a list", lambda s: epoch(s).__setitem__(2, b"x"))
    case("chain of a stranger", lambda s: chain(s).__setitem__(0, b"\7" * 32))
    case("chain of ours", lambda s: chain(s).__setitem__(0, top(s)[2]))
    case("two chains of one", lambda s: epoch(s)[4].append(copy.deepcopy(chain(s))))
    case("ratchet short", lambda s: chain(s).__setitem__(3, b"\0" * 127))
    case("chain index too big", lambda s: chain(s).__setitem__(2, 2**32 - 1))
    case("signing key short", lambda s: chain(s).__setitem__(1, b"\0" * 31))
    case("skipped at the index", lambda s: skip(s)[-1].__setitem__(0, chain(s)[2]))
    case("skipped descending", lambda s: skip(s).reverse())
    case("skipped twice", lambda s: skip(s).append(copy.deepcopy(skip(s)[-1])))
    case("skipped key short", lambda s: skip(s)[0].__setitem__(1, b"\0" * 55))
    case("skipped time a string", lambda s: skip(s)[0].__setitem__(2, "now"))
    case("signing seed short", lambda s: out(s).__setitem__(0, b"\0" * 31))
    case("outbound index", lambda s: out(s).__setitem__(1, -1))
    case("pending not bytes", lambda s: top(s)[6].append([1]))
    case("pending garbage", lambda s: top(s)[6].append(b"\x93\x01"))
    case("pending twice", lambda s: top(s)[6].append(top(s)[6][0]))
    case("not a list", lambda s: s.clear())
    return bad


def test_the_damaged_cases_start_from_a_full_state() -> None:
    assert len(_STATE[5]) == 3
    assert all(e[4] for e in _STATE[5])
    assert _STATE[5][0][4][0][4]  # skipped keys in epoch 0
    assert len(_STATE[6]) == 2


@pytest.mark.parametrize(("what", "state"), _damaged(), ids=[w for w, _s in _damaged()])
def test_damaged_state_raises_decode_error(what: str, state: list[Any]) -> None:
    with pytest.raises(DecodeError):
        Group.from_list(state)


def test_more_skipped_keys_than_a_group_keeps(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sk, "MAX_SKIPPED_PER_GROUP", 2)
    with pytest.raises(DecodeError):
        Group.from_list(copy.deepcopy(_STATE))


def test_pending_key_of_another_group() -> None:
    state = copy.deepcopy(_STATE)
    other = make_group(2, seed=30)[0].sender_key()
    state[6] = [SenderKey.decode(other.encode()).encode()]
    with pytest.raises(DecodeError):
        Group.from_list(state)


def _paths(node: object, path: tuple[int, ...] = ()) -> list[tuple[int, ...]]:
    out = [path]
    if isinstance(node, list):
        for i, child in enumerate(node):
            out += _paths(child, (*path, i))
    return out


_PATHS = _paths(_STATE)[1:]
_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**64), 2**64),
    st.binary(max_size=140),
    st.text(max_size=4),
    st.lists(st.one_of(st.integers(-2, 2**33), st.binary(max_size=40)), max_size=4),
)


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(_PATHS), _VALUES, st.booleans())
def test_fuzz_damaged_fields_raise_only_decode_errors(
    path: tuple[int, ...], value: object, delete: bool
) -> None:
    state = copy.deepcopy(_STATE)
    node: object = state
    for i in path[:-1]:
        assert isinstance(node, list)
        node = node[i]
    assert isinstance(node, list)
    if delete:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    with contextlib.suppress(DecodeError):
        Group.from_list(state)


_PACKED = pack(_STATE)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, len(_PACKED) - 1), st.binary(min_size=1, max_size=6), st.booleans())
def test_fuzz_damaged_bytes_raise_only_decode_errors(at: int, patch: bytes, cut: bool) -> None:
    data = _PACKED[:at] if cut else _PACKED[:at] + patch + _PACKED[at + len(patch) :]
    with contextlib.suppress(DecodeError):
        Group.from_list(strict_unpack(data, max_size=len(data), max_array_len=1 << 16))
