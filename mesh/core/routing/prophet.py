"""PRoPHET (RFC 6693): delivery predictabilities with aging and transitivity.

Destinations are routing tags (a node's "address" is the set of tags it receives on in the
current epoch), because Steppe has no stable node identifiers.

- Encounter (RFC 6693 sec. 2.1.1): ``P(a,b) = P_old + (1 - delta - P_old) * P_enc`` where
  ``P_enc = P_encounter_max * min(1, interval / I_typ)`` (``P_encounter_first`` on a first
  encounter).
- Aging: ``P = P_old * gamma ** k`` with ``k`` elapsed time units.
- Transitivity: ``P(a,c) = max(P_old(a,c), P(a,b) * P(b,c) * beta)``.
- Forwarding (GRTR): give a copy if ``P(peer, dest) > P(self, dest)``.

Reveals: at every contact the node sends the routing tags it receives on and its
predictability table. A neighbour therefore learns which tags this node is the recipient
of and can recognise the same node across encounters within one tag epoch. Use it only
where that is acceptable (e.g. relays); the default strategy is epidemic.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from crypto.errors import CryptoError
from crypto.wire import strict_unpack
from mesh.core.routing.base import NO, EnvView, Handoff, Strategy
from mesh.core.wirecodec import pack_routing, unpack_routing

MAX_TABLE = 256


@dataclass(frozen=True, slots=True)
class ProphetParams:
    p_encounter_max: float = 0.7
    p_encounter_first: float = 0.5
    delta: float = 0.01
    gamma: float = 0.999
    beta: float = 0.9
    i_typ: int = 1800  # typical inter-encounter interval, seconds
    time_unit: int = 30  # seconds per aging step


@dataclass
class Prophet(Strategy):
    params: ProphetParams = field(default_factory=ProphetParams)
    INITIAL_BUDGET: int = 16
    NAME = "prophet"
    NEEDS_DESTINATION = False
    REVEALS = (
        "the tags this node receives on and its predictability table, sent to every "
        "neighbour; lets neighbours recognise the node within a tag epoch"
    )
    table: dict[bytes, float] = field(default_factory=dict)  # tag -> P(self, tag)
    last_aged: int | None = None
    last_seen: dict[bytes, int] = field(default_factory=dict)  # tag -> last encounter time
    peer_tables: dict[bytes, dict[bytes, float]] = field(default_factory=dict)
    peer_own: dict[bytes, set[bytes]] = field(default_factory=dict)

    def _age(self, now: int) -> None:
        if self.last_aged is None:
            self.last_aged = now
            return
        k = (now - self.last_aged) // self.params.time_unit
        if k > 0:
            factor = self.params.gamma**k
            self.table = {t: p * factor for t, p in self.table.items() if p * factor > 1e-4}
            self.last_aged += k * self.params.time_unit

    def encounter(self, tag: bytes, now: int) -> None:
        prm = self.params
        old = self.table.get(tag, 0.0)
        if tag not in self.last_seen:
            p_enc = prm.p_encounter_first
        else:
            p_enc = prm.p_encounter_max * min(1.0, (now - self.last_seen[tag]) / prm.i_typ)
        self.table[tag] = old + (1 - prm.delta - old) * p_enc
        self.last_seen[tag] = now

    def routing_info(self, own_tags: list[bytes], now: int) -> bytes:
        self._age(now)
        best = sorted(self.table.items(), key=lambda kv: -kv[1])[:MAX_TABLE]
        return pack_routing(own_tags[:MAX_TABLE], best)

    def on_contact(self, peer: bytes, info: bytes, now: int) -> None:
        self._age(now)
        try:
            own, table = unpack_routing(
                strict_unpack(info, max_size=64 * 1024, max_array_len=MAX_TABLE)
            )
        except (ValueError, CryptoError):
            return
        for tag in own:
            self.encounter(tag, now)
        b = self.params.beta
        for tag in own:
            p_ab = self.table.get(tag, 0.0)
            for dest, p_bc in table.items():
                if dest not in own:
                    self.table[dest] = max(self.table.get(dest, 0.0), p_ab * p_bc * b)
        self.peer_tables[peer] = table
        self.peer_own[peer] = set(own)

    def on_contact_end(self, peer: bytes, now: int) -> None:
        self.peer_tables.pop(peer, None)
        self.peer_own.pop(peer, None)

    def decide(self, env: EnvView, peer: bytes, peer_is_destination: bool, now: int) -> Handoff:
        if env.budget <= 0:
            return NO
        if env.tag and env.tag in self.peer_own.get(peer, set()):
            return Handoff(True, env.budget - 1, env.budget)
        if not env.tag:  # first contact: no destination known, fall back to epidemic
            return Handoff(True, env.budget - 1, env.budget)
        theirs = self.peer_tables.get(peer, {}).get(env.tag, 0.0)
        if theirs > self.table.get(env.tag, 0.0):
            return Handoff(True, env.budget - 1, env.budget)
        return NO
