"""Helpers for the sender-key tests: a wired group, and a hostile member's re-sealer."""

from __future__ import annotations

import random

from crypto import primitives as p
from crypto import sender_keys as sk
from crypto.megolm import MegolmRatchet, message_key
from crypto.padding import bucket_for, pad
from crypto.sender_keys import Group, SenderKey

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


def signature_of(holder: Group, data: bytes, ad: bytes = b"") -> bytes:
    """The author's signature inside ``data``, read with ``holder``'s chain (no commit)."""
    epoch, author, seq = holder._read_header(data, ad)
    mk, _after, _skipped = epoch.inbound[author].lookup(seq)
    body_ad = sk._body_ad(holder.group_id, epoch.eid, epoch.number, author, seq, ad)
    return p.xchacha_decrypt(mk[:32], mk[32:], data[sk._PREFIX :], body_ad)[: p.SIG_LEN]


def reseal(
    holder: Group,
    author: bytes,
    seq: int,
    body: bytes,
    signature: bytes,
    *,
    epoch_number: int | None = None,
    ad: bytes = b"",
) -> bytes:
    """What a hostile member can build: a message in ``holder``'s epoch (the current one,
    or the one numbered ``epoch_number``) under ``author``'s chain as ``holder`` holds it,
    carrying any ``signature``. Same layout as :meth:`Group.seal`."""
    epochs = holder._epochs.values()
    epoch = next(
        e
        for e in epochs
        if (e.eid == holder._current if epoch_number is None else e.number == epoch_number)
    )
    chain = epoch.inbound[author]
    mk = message_key(MegolmRatchet(chain.ratchet.index, chain.ratchet.data).advanced_to(seq))
    gid, eid, n = holder.group_id, epoch.eid, epoch.number
    size = bucket_for(len(body) + sk.OVERHEAD)
    plain = signature + pad(body, size - sk._PREFIX - p.SIG_LEN - p.TAG_LEN)
    nonce = p.blake2b(mk, digest_size=p.XNONCE_LEN, person=b"steppe-grp-hn")
    header = p.xchacha_encrypt(
        epoch.header_key, nonce, author + seq.to_bytes(4, "big"), sk._header_ad(gid, eid, ad)
    )
    body_ad = sk._body_ad(gid, eid, n, author, seq, ad)
    return nonce + header + p.xchacha_encrypt(mk[:32], mk[32:], plain, body_ad)
