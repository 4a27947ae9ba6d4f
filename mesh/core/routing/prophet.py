"""PRoPHET (RFC 6693): delivery predictabilities with aging and transitivity, keyed by
per-session, per-day route keys.

Theory of operation
-------------------
PRoPHET hands a copy to a neighbour that is more likely to meet the destination. That
needs a *destination key*: a value that names the destination, stays the same over many
envelopes and encounters (or no predictability can build up), and that the destination
can announce. Steppe has no node identifiers, a session tag differs for every envelope
(:mod:`mesh.core.session`), and a first-contact hint is shared by 1 in 256 nodes (in
1,000 nodes, 979 share one with someone: keyed by hints, the tables merge nodes). The key
is a *route key*, one per direction of a session and per day::

    route key = BLAKE2b-64(key = the direction's tag key, "steppe-route", now // period)

(:func:`mesh.core.session.route_key`; ``period`` one UTC day). Only the two ends of the
session hold the tag key; the keys of different days are unlinkable without it.

- A sender running PRoPHET appends today's route key to the 8-byte per-message tag of
  each session envelope (16 bytes, the envelope's ``MAX_TAG``; :meth:`Prophet.route_for`).
  The recipient still recognises the envelope by its per-message tag.
- At each contact a node announces (:meth:`Prophet.routing_info`) today's route keys of
  the sessions it receives in (at most :data:`MAX_OWN`, the most recently used first) and
  its :data:`MAX_TABLE` highest predictabilities.
- The neighbour updates its table (RFC 6693 sec. 2.1.1): an encounter for each announced
  key, transitivity through the peer (``P(a,b)`` is the peer's highest announced key, or
  a first encounter if it announces none: a relay with fresh link keys cannot be
  recognised), aging by ``gamma`` per time unit.
- Forwarding (GRTR): a copy goes to a peer that announces the envelope's route key or
  marks the envelope as its own (exact: its per-message tag, see
  :mod:`mesh.core.routing.base`), with no budget; or to a peer whose predictability for
  the key is higher than ours, with one hop less. An envelope without a route key (a first
  contact, a bulletin, a prekey record, a session envelope from a node not running
  PRoPHET) goes on as by epidemic, within its hop budget: a hint is no destination key,
  and a hint match is never taken for the destination. So does one whose key neither
  side has a predictability for: the messages a sender writes right after a first
  contact carry a key the recipient announces only once the first contact has reached it,
  and they must be able to travel with it (with plain GRTR, in a sparse 50-node world, 0
  of 344 session messages arrived, against 14 under epidemic routing; with this, 14).

Why one day, and only today's keys. An envelope lives up to 7 days and may wait out a
multi-day blackout. Announcing every day's key it might still carry (8 per session)
would let a neighbour recognise the node for 8 days after one contact, and chain its
contacts from day to day for ever. So only today's keys are announced, and delivery does
not depend on the announcement: the destination marks its own envelopes exactly, by their
per-message tags, whatever day they were sealed (hence ``NEEDS_DESTINATION``). An older
day's key keeps steering its envelopes by the predictabilities it gathered: aging scales
every node's value by the same factor, so GRTR's comparison of two nodes does not change,
and the logarithmic wire encoding (:mod:`mesh.core.wirecodec`) keeps small values
comparable; a key met by nobody for ``entry_lifetime`` (8 days) is gone from every table.

Bounds, against hostile neighbours: routing info is read only up to :data:`MAX_INFO`
bytes, :data:`MAX_OWN` keys and :data:`MAX_TABLE` entries (anything larger or malformed is
ignored whole); a table holds at most ``max_entries`` keys (the lowest go first); the
tables of at most :data:`MAX_PEERS` open contacts are kept; entries age out as above.
A neighbour can still lie (announce keys it has seen, claim high predictabilities): it
then gets copies, as under epidemic routing, but never takes ours away.

Reveals: see :attr:`Prophet.REVEALS` (and the README's strategy table).
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

from crypto.errors import CryptoError
from crypto.wire import strict_unpack
from mesh.core.errors import MalformedInput
from mesh.core.routing.base import NO, EnvView, Handoff, Strategy
from mesh.core.session import ROUTE_KEY_LEN, TAG_LEN, route_key
from mesh.core.wirecodec import pack_routing, unpack_routing

MAX_OWN = 256  # route keys announced (sessions), and accepted from a peer
MAX_TABLE = 256  # predictabilities announced, and accepted from a peer
MAX_PEERS = 32  # open contacts whose tables are kept
MAX_INFO = 8 * 1024  # bytes of routing info read (a maximal one is about 6.6 KiB)


@dataclass(frozen=True, slots=True)
class ProphetParams:
    p_encounter_max: float = 0.7
    p_encounter_first: float = 0.5
    delta: float = 0.01
    gamma: float = 0.999
    beta: float = 0.9
    i_typ: int = 1800  # typical inter-encounter interval, seconds
    time_unit: int = 30  # seconds per aging step
    period: int = 86400  # route keys change every period (a UTC day)
    entry_lifetime: int = 8 * 86400  # an entry nobody refreshes is gone after this
    max_entries: int = 1024  # predictabilities kept

    @property
    def p_min(self) -> float:
        """The smallest predictability kept: a value of 1 ages below it in
        ``entry_lifetime``."""
        return float(self.gamma ** (self.entry_lifetime / self.time_unit))


def route_of(tag: bytes) -> bytes | None:
    """The route key a session envelope's tag carries after its per-message tag."""
    return tag[TAG_LEN:] if len(tag) == TAG_LEN + ROUTE_KEY_LEN else None


def _best(table: dict[bytes, float], n: int) -> list[tuple[bytes, float]]:
    return heapq.nlargest(n, table.items(), key=lambda kv: (kv[1], kv[0]))


class Prophet(Strategy):
    NAME = "prophet"
    NEEDS_DESTINATION = True
    REVEALS = (
        "to every neighbour at each contact: an 8-byte route key for each session it "
        "receives in (at most 256), valid for the current UTC day, so a neighbour can "
        "recognise it in every contact that day (not across days) and count its "
        "sessions; its table of up to 256 other pairs' route keys with predictabilities "
        "(whom it met, directly or through others, in the last 8 days). Its session "
        "envelopes carry their pair's route key for the day: relays can link one "
        "sender's envelopes to one recipient within a day. As with direct delivery it "
        "marks offered envelopes carrying its tags, so a relay handing it one sealed on "
        "an earlier day learns it received on that day's key"
    )

    def __init__(self, params: ProphetParams | None = None, initial_budget: int = 16) -> None:
        self.params = params or ProphetParams()
        self.INITIAL_BUDGET = initial_budget
        self.table: dict[bytes, float] = {}  # route key -> P(self, key)
        self.last_seen: dict[bytes, int] = {}  # route key -> last encounter (keys in table)
        self.last_aged: int | None = None
        self.own: frozenset[bytes] = frozenset()  # the route keys we announced last
        self.peer_tables: dict[bytes, dict[bytes, float]] = {}  # open contacts only
        self.peer_own: dict[bytes, frozenset[bytes]] = {}

    # ---- the table ---------------------------------------------------------------------
    def _age(self, now: int) -> None:
        if self.last_aged is None or now < self.last_aged:
            self.last_aged = now
            return
        k = (now - self.last_aged) // self.params.time_unit
        if k <= 0:
            return
        factor = self.params.gamma**k
        floor = self.params.p_min
        self.table = {t: p * factor for t, p in self.table.items() if p * factor > floor}
        self.last_seen = {t: s for t, s in self.last_seen.items() if t in self.table}
        self.last_aged += k * self.params.time_unit

    def _bound(self) -> None:
        if len(self.table) > self.params.max_entries:
            self.table = dict(_best(self.table, self.params.max_entries))
            self.last_seen = {t: s for t, s in self.last_seen.items() if t in self.table}

    def encounter(self, key: bytes, now: int) -> None:
        prm = self.params
        old = self.table.get(key, 0.0)
        seen = self.last_seen.get(key)
        if seen is None:
            p_enc = prm.p_encounter_first
        else:
            p_enc = prm.p_encounter_max * min(1.0, max(0, now - seen) / prm.i_typ)
        self.table[key] = old + (1 - prm.delta - old) * p_enc
        self.last_seen[key] = now

    # ---- contacts ----------------------------------------------------------------------
    def routing_info(self, receive_keys: list[bytes], now: int) -> bytes:
        self._age(now)
        day = now // self.params.period
        own = list(dict.fromkeys(route_key(k, day) for k in receive_keys[:MAX_OWN]))
        self.own = frozenset(own)
        for key in own:  # we are no destination of our own
            self.table.pop(key, None)
            self.last_seen.pop(key, None)
        return pack_routing(own, _best(self.table, MAX_TABLE))

    def route_for(self, send_tag_key: bytes, now: int) -> bytes:
        return route_key(send_tag_key, now // self.params.period)

    def on_contact(self, peer: bytes, info: bytes, now: int) -> None:
        self._age(now)
        try:
            raw = strict_unpack(info, max_size=MAX_INFO, max_array_len=max(MAX_OWN, MAX_TABLE))
            announced, table = unpack_routing(raw, MAX_OWN, MAX_TABLE)
        except (MalformedInput, CryptoError):
            return
        own = [k for k in dict.fromkeys(announced) if k not in self.own]
        for key in own:
            self.encounter(key, now)
        prm = self.params
        first = (1 - prm.delta) * prm.p_encounter_first
        p_ab = max((self.table[k] for k in own), default=first)
        theirs = frozenset(own)
        for dest, p_bc in table.items():
            if dest in theirs or dest in self.own:
                continue
            p = p_ab * p_bc * prm.beta
            if p > self.table.get(dest, 0.0):
                self.table[dest] = p
        self._bound()
        self.peer_tables.pop(peer, None)
        self.peer_tables[peer] = table
        self.peer_own[peer] = theirs
        while len(self.peer_tables) > MAX_PEERS:
            oldest = next(iter(self.peer_tables))
            del self.peer_tables[oldest]
            self.peer_own.pop(oldest, None)

    def on_contact_end(self, peer: bytes, now: int) -> None:
        self.peer_tables.pop(peer, None)
        self.peer_own.pop(peer, None)

    # ---- forwarding --------------------------------------------------------------------
    def decide(self, env: EnvView, peer: bytes, peer_is_destination: bool, now: int) -> Handoff:
        key = route_of(env.tag)
        if peer_is_destination or (key is not None and key in self.peer_own.get(peer, ())):
            return Handoff(True, 0, env.budget)
        if env.budget <= 0:
            return NO
        theirs = self.peer_tables.get(peer, {}).get(key, 0.0) if key is not None else 0.0
        ours = self.table.get(key, 0.0) if key is not None else 0.0
        if theirs > ours or ours == theirs == 0.0:  # GRTR; knowing nothing: as epidemic
            return Handoff(True, env.budget - 1, env.budget)
        return NO
