"""Helpers for the sender-key tests: a wired group, a node's delivery by tag, and a hostile
member's re-sealer."""

from __future__ import annotations

import random

from crypto import primitives as p
from crypto import sender_keys as sk
from crypto.group_tag import message_tag
from crypto.megolm import MegolmRatchet, message_key
from crypto.padding import bucket_for, pad
from crypto.sender_keys import Group, Opened, SenderKey
from crypto.sender_keys_state import _Epoch

T0 = 1_700_000_000


def member_ids(n: int) -> list[bytes]:
    return [p.blake2b(bytes([i]), digest_size=32, person=b"test-member") for i in range(n)]


def rng(seed: int = 1) -> p.Rng:
    return random.Random(seed).randbytes


def wire(groups: list[Group], now: int = T0) -> None:
    """Every member's current sender key to every other member, through its encoding."""
    keys = [g.sender_key() for g in groups]
    for g in groups:
        for key in keys:
            if key.author != g.me:
                assert g.accept_sender_key(SenderKey.decode(key.encode()), key.author, now)


def make_group(n: int, seed: int = 1, ids: list[bytes] | None = None) -> list[Group]:
    """``n`` members, all holding every chain: the first creates, invites, the rest join."""
    r = rng(seed)
    ids = ids or member_ids(n)
    creator = Group.create(ids[0], r)
    record = creator.epoch_record()
    for m in ids[1:]:
        record = creator.invite(m)
    groups = [creator] + [Group.join(record, m, ids[0], r) for m in ids[1:]]
    wire(groups)
    return groups


def send(author: Group, body: bytes, ad: bytes = b"") -> tuple[bytes, bytes]:
    """``(message, tag)``: what the author's envelope carries, as the node builds it."""
    tag = author.next_tag()
    return author.seal(body, ad), tag


def deliver(
    reader: Group, sent: list[tuple[bytes, bytes]], now: int = T0, ad: bytes = b""
) -> list[Opened]:
    """What a node does with envelopes of a group: open each whose tag is expected, keep
    the others, look at those again whenever the table changed; in arrival order."""
    waiting = list(sent)
    opened: list[Opened] = []
    while True:
        expected = reader.expected_tags(now)
        ready = [m for m in waiting if m[1] in expected]
        if not ready:
            return opened
        data, tag = ready[0]
        opened.append(reader.open(data, tag, now, ad))
        waiting.remove(ready[0])


def _epoch_of(holder: Group, epoch_number: int | None) -> _Epoch:
    epochs = holder._epochs.values()
    return next(
        e
        for e in epochs
        if (e.eid == holder._current if epoch_number is None else e.number == epoch_number)
    )


def signature_of(holder: Group, data: bytes, tag: bytes, ad: bytes = b"") -> bytes:
    """The author's signature inside ``data``, read with ``holder``'s chain (no commit)."""
    epoch, chain, seq = holder._find(tag)
    mk, _after, _skipped = chain.lookup(seq)
    body_ad = sk._body_ad(holder.group_id, epoch.eid, epoch.number, chain.author, seq, ad)
    return p.xchacha_decrypt(mk[:32], mk[32:], data, body_ad)[: p.SIG_LEN]


def reseal(
    holder: Group,
    author: bytes,
    seq: int,
    body: bytes,
    signature: bytes,
    *,
    epoch_number: int | None = None,
    ad: bytes = b"",
) -> tuple[bytes, bytes]:
    """What a hostile member can build: ``(message, tag)`` in ``holder``'s epoch (the
    current one, or the one numbered ``epoch_number``) under ``author``'s chain as
    ``holder`` holds it, carrying any ``signature``. Same layout as :meth:`Group.seal`."""
    epoch = _epoch_of(holder, epoch_number)
    chain = epoch.inbound[author]
    mk = message_key(MegolmRatchet(chain.ratchet.index, chain.ratchet.data).advanced_to(seq))
    gid, eid, n = holder.group_id, epoch.eid, epoch.number
    size = bucket_for(len(body) + sk.OVERHEAD)
    plain = signature + pad(body, size - p.SIG_LEN - p.TAG_LEN)
    body_ad = sk._body_ad(gid, eid, n, author, seq, ad)
    tag = message_tag(epoch.tag_key, author, seq)
    return p.xchacha_encrypt(mk[:32], mk[32:], plain, body_ad), tag
