"""Attachments (issue 16, part 2): a file as chunks that travel on their own, sealed under
a per-file key, found by the manifest sealed inside an ordinary message. Adversarial: a
chunk at another index, from another file, tampered, truncated or under another header;
manifests that lie; chunk floods; a relay that carries no attachments; a restart half
way; bounds and expiry."""

from __future__ import annotations

import random

import pytest

from crypto.attachment import (
    CHUNK_DATA,
    ID_PREFIX,
    MAX_CHUNKS,
    MAX_FILE,
    Manifest,
    open_chunk,
)
from crypto.errors import CryptoError, DecodeError
from crypto.wire import pack
from mesh.core import envelope as E
from mesh.core.attachments import CONTENT_FILE, build
from mesh.core.config import MAX_BODY
from mesh.core.events import (
    ChunkReceived,
    FileDropped,
    FileOffered,
    FileReceived,
    MessageQueued,
    SendFailed,
    SendFile,
    SendMessage,
)
from mesh.core.messages import stamped
from mesh.core.node import Node, NodeConfig
from mesh.core.stats import Stat
from mesh.core.store import Quotas
from tests.netsim import Net

EXPIRY_HOUR = 480_000
CFG = NodeConfig(mint_difficulty=4, base_difficulty=4, receipt_delay=(5, 30))


def _rng(seed: int) -> random.Random:
    return random.Random(seed)


def _file(n: int, seed: int = 1) -> bytes:
    return _rng(seed).randbytes(n)


def _open_all(m: Manifest, chunks: list[E.Envelope]) -> bytes:
    return b"".join(m.open(i, c.body, c.header()) for i, c in enumerate(chunks))


# ---- sealing and the manifest ----------------------------------------------------------


def test_a_file_opens_from_its_chunks_in_any_order_and_every_chunk_looks_the_same() -> None:
    data = _file(3 * CHUNK_DATA + 1000)
    m, chunks = build(data, "photo.jpg", "image/jpeg", EXPIRY_HOUR, 8, _rng(2).randbytes)
    assert m.count == len(chunks) == 4
    assert {len(c.body) for c in chunks} == {16384}  # the last one too
    assert len({c.tag for c in chunks}) == len({c.receipt for c in chunks}) == 4
    decoded = Manifest.decode(m.encode())
    assert decoded == m
    order = [2, 0, 3, 1]
    pieces = {i: decoded.open(i, chunks[i].body, chunks[i].header()) for i in order}
    assert b"".join(pieces[i] for i in range(4)) == data
    assert decoded.ids == tuple(c.id()[:ID_PREFIX] for c in chunks)


def test_a_chunk_does_not_open_at_another_index_in_another_file_or_under_another_header() -> None:
    data = _file(2 * CHUNK_DATA + 5)
    m, chunks = build(data, "a.bin", "", EXPIRY_HOUR, 8, _rng(3).randbytes)
    _other, other_chunks = build(data, "a.bin", "", EXPIRY_HOUR, 8, _rng(4).randbytes)
    with pytest.raises(CryptoError):
        m.open(1, chunks[0].body, chunks[0].header())  # moved to another index
    with pytest.raises(CryptoError):
        m.open(0, other_chunks[0].body, other_chunks[0].header())  # another file's
    with pytest.raises(CryptoError):
        m.open(0, chunks[0].body, chunks[1].header())  # another envelope's header
    tampered = bytearray(chunks[0].body)
    tampered[100] ^= 1
    with pytest.raises(CryptoError):
        m.open(0, bytes(tampered), chunks[0].header())
    with pytest.raises(CryptoError):
        m.open(0, chunks[0].body[:-1], chunks[0].header())  # truncated
    # The same key, but told the file has fewer chunks: the last one is not last.
    with pytest.raises(CryptoError):
        open_chunk(m.key, m.file_id, 1, 2, chunks[1].body, chunks[1].header())
    assert _open_all(m, chunks) == data


def _fields(m: Manifest) -> list[object]:
    return [1, m.file_id, m.key, m.name, m.mime, m.size, m.digest, b"".join(m.ids)]


def test_manifests_that_lie_are_refused_whole() -> None:
    m, _chunks = build(_file(2 * CHUNK_DATA), "x", "", EXPIRY_HOUR, 8, _rng(5).randbytes)
    lies = []
    f = _fields(m)
    f[5] = m.size + CHUNK_DATA  # a size that needs a third chunk
    lies.append(f)
    f = _fields(m)
    f[5] = MAX_FILE + 1
    lies.append(f)
    f = _fields(m)
    f[7] = m.ids[0] * 2  # the same chunk twice
    lies.append(f)
    f = _fields(m)
    f[7] = b"".join(m.ids)[:-1]  # a truncated id list
    lies.append(f)
    f = _fields(m)
    f[2] = m.key[:31]
    lies.append(f)
    f = _fields(m)
    f[3] = "é" * 200  # 400 bytes of name
    lies.append(f)
    for lie in lies:
        with pytest.raises(DecodeError):
            Manifest.decode(pack(lie))
    for junk in (b"", b"\x93\x01\x02\x03", _file(300, seed=9), m.encode()[:-3]):
        with pytest.raises(DecodeError):
            Manifest.decode(junk)


def test_a_size_that_disagrees_with_the_last_chunk_is_refused_when_it_opens() -> None:
    m, chunks = build(_file(CHUNK_DATA + 10), "x", "", EXPIRY_HOUR, 8, _rng(6).randbytes)
    f = _fields(m)
    f[5] = m.size - 1  # still two chunks, but the last piece is one byte longer
    liar = Manifest.decode(pack(f))
    liar.open(0, chunks[0].body, chunks[0].header())
    with pytest.raises(DecodeError):
        liar.open(1, chunks[1].body, chunks[1].header())


def test_the_manifest_of_the_largest_file_fits_one_message() -> None:
    m, _chunks = build(_file(MAX_FILE), "n" * 300, "m" * 100, EXPIRY_HOUR, 8, _rng(7).randbytes)
    assert m.count == MAX_CHUNKS == 641
    assert len(m.encode()) <= MAX_BODY
    assert len(m.name.encode()) <= 255
    assert len(m.mime) <= 64


def test_a_sent_name_is_only_its_last_path_part_without_control_characters() -> None:
    m, _c = build(b"x", "../../etc/\x1b[2Jpass\nwd", "", EXPIRY_HOUR, 8, _rng(8).randbytes)
    assert m.name == "[2Jpasswd"


# ---- between nodes ---------------------------------------------------------------------


def _pair(seed: int, cfg: NodeConfig = CFG) -> tuple[Net, int, int]:
    net = Net(seed=seed)
    alice, bob = net.add(cfg), net.add(cfg)
    net.introduce_all()
    return net, alice, bob


def _send(net: Net, a: int, b: int, data: bytes, name: str = "f.bin") -> bytes:
    ev = SendFile(net.nodes[b].identity.sign_public, name, data)
    actions = net.nodes[a].handle(ev, int(net.now))
    net.apply(a, actions)
    queued = [x for x in actions if isinstance(x, MessageQueued)]
    assert queued, actions
    return queued[0].msg_id


def _reassembled(net: Net, idx: int) -> dict[bytes, bytes]:
    pieces: dict[bytes, dict[int, bytes]] = {}
    done: dict[bytes, bytes] = {}
    for act in net.files[idx]:
        if isinstance(act, ChunkReceived):
            assert act.index not in pieces.setdefault(act.file_id, {})  # exactly once
            pieces[act.file_id][act.index] = act.data
        if isinstance(act, FileReceived):
            got = pieces[act.file_id]
            done[act.msg_id] = b"".join(got[i] for i in range(len(got)))
    return done


def _chunk_frames(node: Node) -> list[bytes]:
    store = node.store
    frames = [store.get(i) for i in store.ids_in_range(b"", None)]
    return [f for f in frames if f is not None and E.decode(f).kind is E.Kind.CHUNK]


def test_chunks_that_came_first_by_other_carriers_are_found_when_the_manifest_opens() -> None:
    net, alice, bob = _pair(11)
    data = _file(5 * CHUNK_DATA + 77, seed=12)
    msg_id = _send(net, alice, bob, data)
    frames = _chunk_frames(net.nodes[alice])
    assert len(frames) == 6
    early = frames[1::2]  # half of them reach Bob first, out of order, in a bundle
    random.Random(13).shuffle(early)
    net.apply(bob, net.nodes[bob].courier.import_frames(early, b"usb", int(net.now)))
    assert not [a for a in net.files[bob] if isinstance(a, ChunkReceived)]  # not known yet
    la, _lb = net.connect(alice, bob)
    net.run(20)
    offered = [a for a in net.files[bob] if isinstance(a, FileOffered)]
    assert [(o.refused, o.size) for o in offered] == [("", len(data))]
    assert offered[0].sender == net.nodes[alice].identity.sign_public
    assert _reassembled(net, bob) == {msg_id: data}
    net.run(60)  # Bob releases the manifest's receipt once the file is whole
    assert msg_id in net.acked[alice]
    assert not _chunk_frames(net.nodes[alice])  # the chunks' receipts purged Alice's copies
    net.disconnect(alice, la)


def test_a_relay_carries_chunks_and_drops_them_on_their_receipts() -> None:
    net = Net(seed=14)
    alice, relay, bob = net.add(CFG), net.add(CFG), net.add(CFG)
    net.introduce_all()
    data = _file(2 * CHUNK_DATA + 3, seed=15)
    msg_id = _send(net, alice, bob, data)
    la, _ = net.connect(alice, relay)
    net.run(20)
    net.disconnect(alice, la)
    assert len(_chunk_frames(net.nodes[relay])) == 3
    lb, _ = net.connect(relay, bob)
    net.run(60)
    assert _reassembled(net, bob) == {msg_id: data}
    assert not _chunk_frames(net.nodes[relay])  # purged by the chunks' receipts
    net.disconnect(relay, lb)


def test_a_manifest_listing_its_chunks_at_the_wrong_index_loses_nothing_but_those() -> None:
    """A contact running modified code lists chunk 1's envelope as chunk 0: Bob counts
    and drops both, never hands over a wrong piece, and the file stays incomplete."""
    net, alice, bob = _pair(16)
    node = net.nodes[alice]
    data = _file(3 * CHUNK_DATA, seed=17)
    m, chunks = build(data, "x", "", E.coarse_expiry(int(net.now), 86400), 8, node.rng)
    swapped = (m.ids[1], m.ids[0], m.ids[2])
    liar = Manifest(m.file_id, m.key, m.name, m.mime, m.size, m.digest, swapped)
    for c in chunks:
        node.publish_envelope(stamped(c, 4, node.rng), int(net.now))
    env = node._outbox._seal(  # the modified sender's manifest
        net.nodes[bob].identity.sign_public,
        liar.encode(),
        86400,
        b"m" * 16,
        int(net.now),
        CONTENT_FILE,
    )
    node.publish_envelope(stamped(env, 4, node.rng), int(net.now))
    la, _ = net.connect(alice, bob)
    net.run(20)
    got = [a for a in net.files[bob] if isinstance(a, ChunkReceived)]
    assert [a.index for a in got] == [2]  # only the chunk listed where it was sealed
    assert got[0].data == data[2 * CHUNK_DATA :]
    assert net.nodes[bob].stats[Stat.CHUNKS_REFUSED] == 2
    assert not [a for a in net.files[bob] if isinstance(a, FileReceived)]
    net.disconnect(alice, la)


def test_a_chunk_flood_does_not_touch_a_file_being_received() -> None:
    net, alice, bob = _pair(18)
    junk_rng = random.Random(19)
    hour = E.coarse_expiry(int(net.now), 86400)
    junk = [
        E.encode(
            stamped(
                E.make(E.Kind.CHUNK, hour, junk_rng.randbytes(8), junk_rng.randbytes(16384), 8),
                4,
                junk_rng.randbytes,
            )
        )
        for _ in range(200)
    ]
    data = _file(CHUNK_DATA + 1, seed=20)
    msg_id = _send(net, alice, bob, data)
    net.apply(bob, net.nodes[bob].courier.import_frames(junk, b"flood", int(net.now)))
    la, _ = net.connect(alice, bob)
    net.run(20)
    assert _reassembled(net, bob) == {msg_id: data}
    assert net.nodes[bob].stats.get(Stat.CHUNKS_REFUSED, 0) == 0  # junk is never opened
    assert len(net.files[bob]) == 4  # offered, two chunks, whole
    net.disconnect(alice, la)


def test_a_relay_that_carries_no_attachments_still_carries_text() -> None:
    net = Net(seed=21)
    alice = net.add(CFG)
    relay = net.add(NodeConfig(mint_difficulty=4, base_difficulty=4, relay_chunks=False))
    bob = net.add(CFG)
    net.introduce_all()
    _send(net, alice, bob, _file(100, seed=22))
    net.send(alice, bob, b"hello")
    la, _ = net.connect(alice, relay)
    net.run(20)
    kinds = [
        E.decode(f).kind
        for f in map(net.nodes[relay].store.get, net.nodes[relay].store.ids_in_range(b"", None))
        if f
    ]
    assert E.Kind.CHUNK not in kinds
    assert E.Kind.SESSION in kinds  # the text, sealed in the session the manifest began
    assert net.nodes[relay].stats[Stat.REJECTED_CHUNKS_NOT_CARRIED] >= 1
    net.disconnect(alice, la)


def test_a_restart_half_way_resumes_the_file() -> None:
    net, alice, bob = _pair(23)
    data = _file(4 * CHUNK_DATA, seed=24)
    msg_id = _send(net, alice, bob, data)
    frames = _chunk_frames(net.nodes[alice])
    # Bob gets the manifest and two chunks, then restarts with his saved rows and store.
    only_manifest = [
        f
        for f in map(net.nodes[alice].store.get, net.nodes[alice].store.ids_in_range(b"", None))
        if f and E.decode(f).kind is not E.Kind.CHUNK
    ]
    node = net.nodes[bob]
    net.apply(bob, node.courier.import_frames(only_manifest + frames[:2], b"usb", int(net.now)))
    assert len([a for a in net.files[bob] if isinstance(a, ChunkReceived)]) == 2
    rows = node.saved.rows()
    again = Node(node.identity, node.ring, node.store, random.Random(5).randbytes, node.config)
    for contact in (net.nodes[alice],):
        again.add_contact(contact.identity.public(), contact.ring.keys[-1].record)
    again.saved.restore_rows(rows, int(net.now))
    assert [f.received for f in again.files_in_progress()] == [2]
    net.nodes[bob] = again
    net.apply(bob, again.courier.import_frames(frames[2:], b"usb", int(net.now)))
    assert _reassembled(net, bob) == {msg_id: data}


def test_bounds_refuse_a_file_too_many_and_expiry_gives_one_up() -> None:
    cfg = NodeConfig(mint_difficulty=4, base_difficulty=4, max_incoming_files=1)
    net, alice, bob = _pair(25, cfg)
    _send(net, alice, bob, _file(2 * CHUNK_DATA, seed=26))
    _send(net, alice, bob, _file(10, seed=27))
    frames = [
        f
        for f in map(net.nodes[alice].store.get, net.nodes[alice].store.ids_in_range(b"", None))
        if f and E.decode(f).kind is not E.Kind.CHUNK
    ]
    net.apply(bob, net.nodes[bob].courier.import_frames(frames, b"usb", int(net.now)))
    offers = [a for a in net.files[bob] if isinstance(a, FileOffered)]
    assert sorted(bool(o.refused) for o in offers) == [False, True]
    assert "already being received" in next(o.refused for o in offers if o.refused)
    assert len(net.nodes[bob].files_in_progress()) == 1
    net.now += 4 * 86400  # past the message's expiry
    net.run(1)
    assert [a for a in net.files[bob] if isinstance(a, FileDropped)]
    assert net.nodes[bob].files_in_progress() == []


def test_sending_an_empty_or_oversized_file_fails_with_a_reason() -> None:
    net, alice, bob = _pair(28)
    key = net.nodes[bob].identity.sign_public
    for data in (b"", b"x" * (MAX_FILE + 1)):
        acts = net.nodes[alice].handle(SendFile(key, "f", data), int(net.now))
        reasons = [a.reason for a in acts if isinstance(a, SendFailed)]
        assert reasons[0].startswith("a file must be"), reasons
    tight = net.add(CFG, quotas=Quotas(max_total_bytes=100_000))
    net.nodes[tight].add_contact(
        net.nodes[bob].identity.public(), net.nodes[bob].ring.keys[-1].record
    )
    acts = net.nodes[tight].handle(SendFile(key, "f", b"y" * 200_000), int(net.now))
    assert [a.reason for a in acts if isinstance(a, SendFailed)] == [
        "the envelope store has no room for this file"
    ]
    assert not _chunk_frames(net.nodes[tight])  # nothing half sent


def test_a_refused_file_is_never_acknowledged_to_its_sender() -> None:
    """A node that takes no files (``[files] max_incoming = 0``) says why, opens no
    chunk, and never releases the manifest's receipt: the sender's "delivered" would be
    a lie, since nothing of the file was kept."""
    cfg = NodeConfig(mint_difficulty=4, base_difficulty=4, receipt_delay=(5, 30))
    net = Net(seed=29)
    alice = net.add(cfg)
    bob = net.add(NodeConfig(mint_difficulty=4, base_difficulty=4, max_incoming_files=0))
    net.introduce_all()
    msg_id = _send(net, alice, bob, _file(CHUNK_DATA + 9, seed=30))
    la, _ = net.connect(alice, bob)
    net.run(400)  # well past any receipt delay
    offers = [a for a in net.files[bob] if isinstance(a, FileOffered)]
    assert [o.refused for o in offers] == ["this device does not take files"]
    assert not [a for a in net.files[bob] if isinstance(a, ChunkReceived)]
    assert msg_id not in net.acked[alice]
    net.disconnect(alice, la)


def test_a_stranger_may_write_but_not_send_files_unless_allowed() -> None:
    """A first contact from someone who is not our contact carries text, not a file
    (a stranger in radio range cannot fill the disk 64 MiB at a time), unless the node
    takes files from strangers."""
    for allowed in (False, True):
        cfg = NodeConfig(mint_difficulty=4, base_difficulty=4, receipt_delay=(5, 30))
        net = Net(seed=31)
        alice = net.add(cfg)
        bob = net.add(
            NodeConfig(mint_difficulty=4, base_difficulty=4, files_from_strangers=allowed)
        )
        bob_node = net.nodes[bob]
        net.nodes[alice].add_contact(bob_node.identity.public(), bob_node.ring.keys[-1].record)
        data = _file(CHUNK_DATA + 3, seed=32)
        msg_id = _send(net, alice, bob, data)
        text = SendMessage(bob_node.identity.sign_public, b"hello from a stranger", 3600)
        net.apply(alice, net.nodes[alice].handle(text, int(net.now)))
        la, _ = net.connect(alice, bob)
        net.run(400)
        assert [d.body for d in net.delivered.get(bob, [])] == [b"hello from a stranger"]
        offers = [a.refused for a in net.files[bob] if isinstance(a, FileOffered)]
        if allowed:
            assert offers == [""]
            assert list(_reassembled(net, bob).values()) == [data]
            assert msg_id in net.acked[alice]
        else:
            assert offers == ["files are taken from contacts only"]
            assert not [a for a in net.files[bob] if isinstance(a, ChunkReceived)]
            assert msg_id not in net.acked.get(alice, [])
        net.disconnect(alice, la)
