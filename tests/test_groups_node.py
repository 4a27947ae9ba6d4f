"""Groups in the node (issue 16, part 1): real nodes on the in-test network create a
group, invite, exchange sender keys over pairwise sessions, post group messages, remove,
leave and restart. Adversarial: an invitation from a stranger, malformed control records,
a removed member still reading, a message re-posted under another group, replays."""

from __future__ import annotations

import random

from crypto.sender_keys import Group
from mesh.core import envelope as E
from mesh.core.events import (
    CreateGroup,
    GroupChanged,
    GroupMessageDelivered,
    InviteMember,
    LeaveGroup,
    MessageQueued,
    RemoveMembers,
    SendFailed,
    SendGroupMessage,
    SendMessage,
)
from mesh.core.groups import Control
from mesh.core.messages import stamped
from mesh.core.node import Node
from mesh.core.stats import Stat
from tests.netsim import Net


def _meet(net: Net, seconds: float = 60.0) -> None:
    """Everyone in range of everyone for a while, then apart."""
    n = len(net.nodes)
    links = [(a, net.connect(a, b)[0]) for a in range(n) for b in range(a + 1, n)]
    net.run(seconds)
    for a, la in links:
        if la in net.links_of(a):
            net.disconnect(a, la)


def _do(net: Net, idx: int, ev: object) -> list[object]:
    actions = net.nodes[idx].handle(ev, int(net.now))  # type: ignore[arg-type]
    net.apply(idx, actions)
    return list(actions)


def _create(net: Net, owner: int, name: str = "organisers") -> bytes:
    acts = _do(net, owner, CreateGroup(name, ref=1))
    made = [a for a in acts if isinstance(a, GroupChanged)]
    assert made, acts
    return made[0].group.group_id


def _invite(net: Net, owner: int, gid: bytes, member: int) -> None:
    key = net.nodes[member].identity.sign_public
    acts = _do(net, owner, InviteMember(gid, key, ref=2))
    assert not [a for a in acts if isinstance(a, SendFailed)], acts


def _post(net: Net, idx: int, gid: bytes, text: bytes) -> bytes:
    acts = _do(net, idx, SendGroupMessage(gid, text, 86400, ref=3))
    queued = [a for a in acts if isinstance(a, MessageQueued)]
    assert queued, acts
    return queued[0].msg_id


def _got(net: Net, idx: int) -> list[tuple[bytes, bytes]]:
    """(author, body) of every group message node ``idx`` was given, in order."""
    return [(a.author, a.body) for a in net.groups[idx] if isinstance(a, GroupMessageDelivered)]


def _key(net: Net, idx: int) -> bytes:
    return net.nodes[idx].identity.sign_public


def _group_of(n: int, seed: int) -> tuple[Net, bytes]:
    """``n`` nodes who all know node 0 (only node 0 knows everyone); node 0 makes a group
    of all of them, and they meet once so that every sender key gets around."""
    net = Net(seed=seed)
    for _ in range(n):
        net.add()
    owner = net.nodes[0]
    for i in range(1, n):
        other = net.nodes[i]
        owner.add_contact(other.identity.public(), other.ring.keys[-1].record)
        other.add_contact(owner.identity.public(), owner.ring.keys[-1].record)
    gid = _create(net, 0)
    for i in range(1, n):
        _invite(net, 0, gid, i)
    _meet(net)
    _meet(net)
    return net, gid


def test_members_who_are_not_contacts_get_each_others_keys_and_read_each_other() -> None:
    net, gid = _group_of(4, 161)
    for i in range(4):
        views = net.nodes[i].groups()
        assert len(views) == 1
        assert views[0].group_id == gid
        assert set(views[0].members) == {_key(net, j) for j in range(4)}
    msg = _post(net, 2, gid, b"meet at the fountain at six")
    assert msg
    _meet(net)
    for i in (0, 1, 3):
        assert _got(net, i) == [(_key(net, 2), b"meet at the fountain at six")]
    assert _got(net, 2) == []  # one's own message is not delivered to oneself
    # members 1 and 3 are not each other's contacts: their keys came through the group
    assert _key(net, 3) not in net.nodes[1].contacts


def test_each_message_is_delivered_once_in_any_order_and_duplicates_are_dropped() -> None:
    net, gid = _group_of(3, 162)
    texts = [b"one", b"two", b"three", b"four"]
    for t in texts:
        _post(net, 1, gid, t)
    author = net.nodes[1]
    frames = [
        f
        for f in map(author.store.get, author.store.ids_in_range(b"", None))
        if f and E.decode(f).kind is E.Kind.SESSION and author.store.is_protected(E.decode(f).id())
    ]
    # carried by hand, reversed and twice (two carriers), to member 2
    rng = random.Random(3)
    shuffled = frames[::-1] + rng.sample(frames, len(frames))
    net.apply(2, net.nodes[2].courier.import_frames(shuffled, b"usb", int(net.now)))
    got = [b for _a, b in _got(net, 2)]
    assert sorted(got) == sorted(texts)
    assert len(got) == len(texts)


def test_a_restarted_member_keeps_reading_and_never_reads_twice() -> None:
    net, gid = _group_of(3, 163)
    _post(net, 1, gid, b"before the restart")
    _meet(net)
    assert [b for _a, b in _got(net, 2)] == [b"before the restart"]
    node = net.nodes[2]
    rows = node.saved.rows()
    again = Node(node.identity, node.ring, node.store, random.Random(9).randbytes, node.config)
    owner = net.nodes[0]
    again.add_contact(owner.identity.public(), owner.ring.keys[-1].record)
    again.saved.restore_rows(rows, int(net.now))
    net.nodes[2] = again
    assert [v.group_id for v in again.groups()] == [gid]
    _post(net, 1, gid, b"after the restart")
    _meet(net)
    _meet(net)  # the old copy is offered again too: not delivered twice
    assert [b for _a, b in _got(net, 2)] == [b"before the restart", b"after the restart"]
    _post(net, 2, gid, b"and I can still write")
    _meet(net)
    assert (_key(net, 2), b"and I can still write") in _got(net, 1)


def test_a_removed_member_cannot_read_what_is_sent_after_the_removal() -> None:
    net, gid = _group_of(4, 164)
    _do(net, 0, RemoveMembers(gid, (_key(net, 3),), ref=4))
    _meet(net)
    for i in range(3):
        (view,) = net.nodes[i].groups()
        assert _key(net, 3) not in view.members
        assert view.epoch == 1
    before = net.nodes[3].stats.get(Stat.DELIVERED, 0)
    _post(net, 1, gid, b"the removed one must not see this")
    _meet(net)
    assert (_key(net, 1), b"the removed one must not see this") in _got(net, 2)
    assert (_key(net, 1), b"the removed one must not see this") not in _got(net, 3)
    assert net.nodes[3].stats.get(Stat.DELIVERED, 0) == before
    # it cannot write into the new epoch either: its messages are not read
    _do(net, 3, SendGroupMessage(gid, b"forged from outside", 86400, ref=5))
    _meet(net)
    for i in range(3):
        assert b"forged from outside" not in [b for _a, b in _got(net, i)]


def test_a_leaving_member_is_told_about_and_the_rest_re_key_without_it() -> None:
    net, gid = _group_of(4, 165)
    epoch = net.nodes[0].groups()[0].epoch
    acts = _do(net, 2, LeaveGroup(gid, ref=6))
    assert next(a for a in acts if isinstance(a, GroupChanged)).group.left
    _meet(net)
    _meet(net)
    for i in (0, 1, 3):
        (view,) = net.nodes[i].groups()
        assert _key(net, 2) not in view.members
        assert view.epoch > epoch
    _post(net, 3, gid, b"after she left")
    _meet(net)
    assert (_key(net, 3), b"after she left") in _got(net, 1)
    assert b"after she left" not in [b for _a, b in _got(net, 2)]
    acts = _do(net, 2, SendGroupMessage(gid, b"x", 86400, ref=7))
    assert [a for a in acts if isinstance(a, SendFailed)]


def test_an_invitation_from_a_stranger_is_refused() -> None:
    net = Net(seed=166)
    stranger, victim = net.add(), net.add()
    # the stranger has the victim's card (it was posted somewhere), not the other way round
    v = net.nodes[victim]
    net.nodes[stranger].add_contact(v.identity.public(), v.ring.keys[-1].record)
    gid = _create(net, stranger, "free phones")
    _invite(net, stranger, gid, victim)
    _meet(net)
    assert net.nodes[victim].groups() == []
    assert net.nodes[victim].stats[Stat.GROUP_INVITES_REFUSED] == 1
    # and nobody can invite someone who is not their own contact
    acts = _do(net, victim, CreateGroup("mine", ref=8))
    mine = next(a for a in acts if isinstance(a, GroupChanged)).group.group_id
    key = net.nodes[stranger].identity.sign_public
    acts = _do(net, victim, InviteMember(mine, key, ref=9))
    assert [a.reason for a in acts if isinstance(a, SendFailed)] == [
        "only a contact can be invited"
    ]


def test_malformed_and_forged_control_records_are_counted_and_change_nothing() -> None:
    net, gid = _group_of(3, 167)
    node, sender = net.nodes[1], _key(net, 0)
    before = [v for v in node.groups()]
    junk = [
        b"",
        b"\xc1",
        b"\x96" + b"\x01" * 5,
        Control(gid, "x", b"not an epoch record").encode(),
        Control(gid, "", None, b"not a sender key").encode(),
        Control(b"\x00" * 16, "", b"\x00" * 40).encode(),
        b"\xdc\xff\xff" + b"\x00" * 100,  # an array that claims 65535 entries
        Control(gid, "", None, None).encode()[:-1],  # truncated
    ]
    for raw in junk:
        assert node._groups.control(sender, raw, int(net.now)) == []
    assert node.groups() == before
    assert node.stats[Stat.GROUP_CONTROL_REFUSED] >= 5
    # a valid epoch record signed by someone who is not a member: refused
    outsider = Group.create(_key(net, 2), random.Random(4).randbytes)
    record = outsider.invite(_key(net, 1))
    raw = Control(gid, "", record.encode(), outsider.sender_key().encode()).encode()
    refused = node.stats.get(Stat.GROUP_CONTROL_REFUSED, 0)
    node._groups.control(_key(net, 2), raw, int(net.now))
    assert node.stats[Stat.GROUP_CONTROL_REFUSED] == refused + 1
    assert node.groups() == before


def test_a_message_re_posted_under_another_group_is_not_read_as_that_group() -> None:
    """A member of two groups re-wraps an author's group-A message with group B's tag:
    the signature covers the group id and epoch, so B's members refuse it."""
    net = Net(seed=168)
    for _ in range(3):
        net.add()
    net.introduce_all()
    ga = _create(net, 0, "A")
    gb = _create(net, 0, "B")
    for gid in (ga, gb):
        _invite(net, 0, gid, 1)
        _invite(net, 0, gid, 2)
    _meet(net)
    _meet(net)
    _post(net, 1, ga, b"only for A")
    author = net.nodes[1]
    (frame,) = [
        f
        for f in map(author.store.get, author.store.ids_in_range(b"", None))
        if f and E.decode(f).kind is E.Kind.SESSION and author.store.is_protected(E.decode(f).id())
    ]
    env = E.decode(frame)
    # node 2 expects B's tags; give it A's body under a tag it expects for B
    b_group = net.nodes[2]._groups._state.groups[gb].group
    assert b_group is not None
    tag_b = next(iter(b_group.expected_tags(int(net.now))))
    forged = E.make(
        env.kind, env.expiry_hour, tag_b + env.tag[8:], env.body, env.budget, receipt=env.receipt
    )
    forged = stamped(forged, 8, random.Random(5).randbytes)
    failed = net.nodes[2].stats.get(Stat.GROUP_OPEN_FAILED, 0)
    net.apply(2, net.nodes[2].courier.import_frames([E.encode(forged)], b"usb", int(net.now)))
    assert _got(net, 2) == []
    assert net.nodes[2].stats[Stat.GROUP_OPEN_FAILED] == failed + 1


def _own_ids(node: Node) -> set[bytes]:
    return {i for i in node.store.ids_in_range(b"", None) if node.store.is_protected(i)}


def test_a_group_message_looks_like_a_pairwise_one_to_a_relay() -> None:
    net, gid = _group_of(3, 169)
    author = net.nodes[1]
    before = _own_ids(author)
    _post(net, 1, gid, b"hello group")
    (group_id,) = _own_ids(author) - before
    before = _own_ids(author)
    _do(net, 1, SendMessage(_key(net, 0), b"hello owner", 86400, ref=10))
    (pair_id,) = _own_ids(author) - before
    group_env, pair_env = (E.decode(author.store.get(i) or b"") for i in (group_id, pair_id))
    assert group_env.kind is pair_env.kind is E.Kind.SESSION
    assert len(group_env.tag) == len(pair_env.tag)
    assert len(group_env.receipt) == len(pair_env.receipt)
    assert group_env.budget == pair_env.budget
    # and the tag changes with every message, as pairwise tags do
    _post(net, 1, gid, b"hello again")
    (next_id,) = _own_ids(author) - before - {pair_id}
    assert E.decode(author.store.get(next_id) or b"").tag[:8] != group_env.tag[:8]


def test_bounds_on_names_empty_messages_and_unknown_groups() -> None:
    net = Net(seed=170)
    a = net.add()
    acts = _do(net, a, CreateGroup("   ", ref=1))
    assert [x for x in acts if isinstance(x, SendFailed)]
    acts = _do(net, a, CreateGroup("n" * 65, ref=1))
    assert [x for x in acts if isinstance(x, SendFailed)]
    gid = _create(net, a)
    acts = _do(net, a, SendGroupMessage(gid, b"  ", 86400, ref=2))
    assert [x for x in acts if isinstance(x, SendFailed)]
    acts = _do(net, a, SendGroupMessage(b"\x01" * 16, b"hi", 86400, ref=2))
    assert [x.reason for x in acts if isinstance(x, SendFailed)] == ["no such group"]


def _pair_meet(net: Net, a: int, b: int) -> None:
    la, _lb = net.connect(a, b)
    net.run(30)
    if la in net.links_of(a):
        net.disconnect(a, la)


def test_a_sender_key_that_comes_before_the_invitation_is_applied_on_joining() -> None:
    net, gid = _group_of(2, 171)
    newcomer = net.add()
    owner, new = net.nodes[0], net.nodes[newcomer]
    owner.add_contact(new.identity.public(), new.ring.keys[-1].record)
    new.add_contact(owner.identity.public(), owner.ring.keys[-1].record)
    _invite(net, 0, gid, newcomer)
    _pair_meet(net, 0, 1)  # member 1 learns of the newcomer (and its card) ...
    relay = net.nodes[1].store
    for eid in set(relay.ids_in_range(b"", None)) - _own_ids(net.nodes[1]):
        relay.delete(eid, int(net.now))  # ... but had no room to carry the invitation
    _pair_meet(net, 1, newcomer)  # ... and its sender key reaches the newcomer first
    assert new.groups() == []  # held, not a group yet
    _post(net, 1, gid, b"for all three")
    _pair_meet(net, 1, 0)
    _pair_meet(net, 0, newcomer)  # the invitation, and member 1's message, come now
    assert [v.group_id for v in new.groups()] == [gid]
    assert _got(net, newcomer) == [(_key(net, 1), b"for all three")]
