"""How many neighbours carry each of our messages: "carried by N neighbours".

Theory of operation
-------------------
The node's observer hook (:attr:`mesh.core.node.Node.observer`) says, inside a step, that an
envelope went to a link. When it is the envelope of one of our own messages still waiting
for its receipt, :class:`Carriers` adds the link's peer key (the Noise static key the
neighbour proved in the handshake) to the set of neighbours that message went to; the
daemon commits the new counts with the rest of the step (before the frames leave) and
tells subscribers (:class:`mesh.ipc.events.MessageCarried`).

"Carried" means handed over: the neighbour took the bytes; its store may still refuse or
later evict them, and nothing comes back to say so until the receipt does. A neighbour is
counted once however often it is handed the message (on every reconnect it asks again).

Only the count is saved, never which devices carried a message: a seized laptop should not
list who helped. So after a restart the sets start empty and the count shown is the larger
of the saved count and the neighbours met since: it may undercount (a neighbour met only
after the restart is not added to the saved ones) but never claims a carrier that was not,
and it never goes down.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from mesh.core.events import Action, MessageAcked, MessageQueued
from mesh.daemon.history import Message


class Carriers:
    """Our unacknowledged messages by envelope id, and the neighbours each went to."""

    def __init__(self) -> None:
        self._ours: dict[bytes, bytes] = {}  # envelope id -> msg id
        self._envelope: dict[bytes, bytes] = {}  # msg id -> envelope id
        self._saved: dict[bytes, int] = {}  # msg id -> its count (as committed)
        self._peers: dict[bytes, set[bytes]] = {}  # msg id -> peer keys since this start
        self._handed: list[tuple[bytes, bytes]] = []  # (envelope id, peer) in this step

    def load(self, waiting: Iterable[Message]) -> None:
        for m in waiting:
            self._queued(m.envelope_id, m.msg_id, m.carriers)

    def _queued(self, envelope_id: bytes, msg_id: bytes, carriers: int = 0) -> None:
        self._ours[envelope_id] = msg_id
        self._envelope[msg_id] = envelope_id
        self._saved[msg_id] = carriers

    def _acked(self, msg_id: bytes) -> None:
        """Its receipt came back: "delivered" says more than any count."""
        self._ours.pop(self._envelope.pop(msg_id, b""), None)
        self._saved.pop(msg_id, None)
        self._peers.pop(msg_id, None)

    def handed(self, envelope_id: bytes, peer: bytes) -> None:
        """The node sent this envelope to the neighbour with link key ``peer`` (called
        from the observer hook, inside a step: :meth:`step` works it out)."""
        if peer:
            self._handed.append((envelope_id, peer))

    def step(self, actions: Sequence[Action]) -> dict[bytes, int]:
        """After a step: msg id -> its new carrier count, for each message whose count
        rose (a message queued in this step may already have been handed over)."""
        for act in actions:
            if isinstance(act, MessageQueued):
                self._queued(act.envelope_id, act.msg_id)
        handed, self._handed = self._handed, []
        changed: dict[bytes, int] = {}
        for envelope_id, peer in handed:
            msg_id = self._ours.get(envelope_id)
            if msg_id is None:
                continue
            peers = self._peers.setdefault(msg_id, set())
            peers.add(peer)
            if len(peers) > self._saved[msg_id]:
                self._saved[msg_id] = changed[msg_id] = len(peers)
        for act in actions:
            if isinstance(act, MessageAcked):
                self._acked(act.msg_id)
                changed.pop(act.msg_id, None)
        return changed

    def count(self, msg_id: bytes) -> int:
        return self._saved.get(msg_id, 0)
