"""What every part of a node shares (private to :mod:`mesh.core.node`).

One :class:`Context` per node, handed to each part at construction. The parts read
``strategy``, ``observer`` and ``config`` from it at the moment they need them, because a
driver may replace them on the node after it is built (the simulator's black holes, the
benchmarks' unlimited links).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from crypto.identity import Identity, PublicIdentity
from crypto.prekeys import PrekeyRecord, PrekeyRing
from crypto.primitives import Rng
from mesh.core.config import NodeConfig
from mesh.core.durable import Durable
from mesh.core.routing import Strategy
from mesh.core.stats import Counters
from mesh.core.store import PolicyStore

# (event, envelope id, link, frame): "sent" (handed to a link) or "received" (arrived whole)
Observer = Callable[[str, bytes, int, bytes], None]


@dataclass(slots=True)
class ContactKeys:
    """What the core knows of a contact: their identity and newest prekey record."""

    identity: PublicIdentity
    prekey: PrekeyRecord | None = None


@dataclass(slots=True, eq=False)
class Context:
    identity: Identity
    ring: PrekeyRing
    store: PolicyStore
    rng: Rng
    config: NodeConfig
    strategy: Strategy
    state: Durable
    stats: Counters = field(default_factory=Counters)
    contacts: dict[bytes, ContactKeys] = field(default_factory=dict)
    observer: Observer | None = None
