"""HELLO inside the Noise XX handshake: a contact trades sooner (short Bluetooth contacts
need every round trip), and a handshake that breaks the rule closes the link."""

from __future__ import annotations

import random

from crypto.noise import HandshakeState, KeyPair
from mesh.core.events import (
    Action,
    CloseLink,
    FrameReceived,
    LinkUp,
    MessageDelivered,
    SendMessage,
    Transmit,
)
from mesh.core.link import PROLOGUE, LinkSession, fragment
from mesh.core.node import Node
from tests.netsim import Net

MTU = 1400


def _frames(actions: list[Action]) -> list[bytes]:
    return [x.data for x in actions if isinstance(x, Transmit)]


def _trips_until_delivered(initiator_writes: bool, seed: int) -> int:
    """One-way trips from both LinkUps until the message is delivered: every frame in
    flight arrives at once, then the answers go out (a link with a fixed latency)."""
    net = Net(seed=seed)
    a, b = net.add(), net.add()
    net.introduce_all()
    dialler, listener = net.nodes[a], net.nodes[b]
    sender, recipient = (dialler, listener) if initiator_writes else (listener, dialler)
    now = int(net.now)
    sender.handle(SendMessage(recipient.identity.sign_public, b"hi", 3600), now)
    to_listener = _frames(dialler.handle(LinkUp(1, True, MTU), now))
    to_dialler = _frames(listener.handle(LinkUp(1, False, MTU), now))
    for trip in range(1, 20):
        delivered = False
        next_listener: list[bytes] = []
        next_dialler: list[bytes] = []
        for data in to_listener:
            acts = listener.handle(FrameReceived(1, data), now)
            next_dialler += _frames(acts)
            delivered |= any(isinstance(x, MessageDelivered) for x in acts)
        for data in to_dialler:
            acts = dialler.handle(FrameReceived(1, data), now)
            next_listener += _frames(acts)
            delivered |= any(isinstance(x, MessageDelivered) for x in acts)
        if delivered:
            return trip
        to_listener, to_dialler = next_listener, next_dialler
    raise AssertionError("never delivered")


def test_mail_waiting_on_the_listener_arrives_a_round_trip_sooner() -> None:
    """The listener's HELLO comes in handshake message 2, so the dialler's first MORE
    leaves with message 3. Mail a relay (the listener) holds for the dialler took 8 trips
    when HELLOs followed the handshake and the listener reconciled; now 6. Mail the
    dialler brings still takes 7 (it was 7)."""
    for seed in (1, 2):
        assert _trips_until_delivered(initiator_writes=False, seed=seed) == 6
        assert _trips_until_delivered(initiator_writes=True, seed=seed) == 7


def _victim() -> tuple[Node, list[bytes]]:
    net = Net(seed=3)
    node = net.nodes[net.add()]
    return node, _frames(node.handle(LinkUp(1, False, MTU), int(net.now)))


def _closes(actions: list[Action]) -> list[str]:
    return [x.reason for x in actions if isinstance(x, CloseLink)]


def test_a_handshake_without_a_hello_closes_the_link() -> None:
    node, _ = _victim()
    rng = random.Random(4).randbytes
    peer = LinkSession(initiator=True, static=KeyPair.generate(rng), mtu=MTU, rng=rng, now=0)
    replies: list[bytes] = []
    for frame in peer.start().frames:
        replies += _frames(node.handle(FrameReceived(1, frame), 0))
    last: list[Action] = []
    for frame in replies:
        for out in peer.receive_frame(frame, 0).frames:  # message 3, with no payload
            last += node.handle(FrameReceived(1, out), 0)
    assert _closes(last) == ["no HELLO in the handshake"]
    assert 1 not in node.links


def test_a_payload_in_the_clear_first_message_closes_the_link() -> None:
    """Handshake message 1 is not encrypted: nothing may ride in it."""
    node, _ = _victim()
    rng = random.Random(5).randbytes
    hs = HandshakeState("XX", True, PROLOGUE, rng=rng, s=KeyPair.generate(rng))
    msg = hs.write_message(b"a HELLO in the clear")
    acts: list[Action] = []
    for frame in fragment(len(msg).to_bytes(2, "big") + msg, 0, MTU):
        acts += node.handle(FrameReceived(1, frame), 0)
    assert _closes(acts) == ["malformed frame"]
    assert node.stats.get("links_closed_bad_frame") == 1
