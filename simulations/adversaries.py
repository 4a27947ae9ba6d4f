"""Adversary models. They use the node's own interfaces (a strategy, publishing an
envelope, the observer hook); none of them changes protocol logic.

- **Flooder**: originates junk envelopes with *valid* stamps (it pays the work) and random
  content nobody can open, as fast as ``flood_interval`` allows; its node otherwise
  behaves normally, so the junk spreads like any traffic until quotas stop it.
- **Black hole**: a relay that takes everything offered and never hands anything on.
- **Passive observer**: a normal relay that records every envelope header it receives;
  :func:`linkability` then measures what it could link.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

from crypto.padding import BUCKETS
from mesh.core import envelope, messages
from mesh.core.events import Action
from mesh.core.node import Node
from mesh.core.routing.base import NO, EnvView, Handoff, Strategy
from mesh.core.routing.prophet import route_of

Rng = Callable[[int], bytes]


class BlackHole(Strategy):
    NAME = "blackhole"
    REVEALS = "n/a: an adversary model"

    def decide(self, env: EnvView, peer: bytes, peer_is_destination: bool, now: int) -> Handoff:
        return NO


def flood_once(node: Node, now: int, ttl: int, difficulty: int, rng: Rng) -> list[Action]:
    """Originate one junk SESSION envelope with a valid stamp: the flooder keeps it like
    its own mail and offers it to its neighbours."""
    body = rng(BUCKETS[1])  # the bucket most real messages fall in
    env = envelope.make(
        envelope.Kind.SESSION, envelope.coarse_expiry(now, ttl), rng(8), body, 16, receipt=rng(16)
    )
    return node.publish_envelope(messages.stamped(env, difficulty, rng), now)


@dataclass
class Observation:
    time: float
    envelope_id: bytes
    kind: int
    tag: bytes
    receipt: bytes
    size: int
    via: int  # the link it arrived on (one contact with one neighbour)


@dataclass
class Observer:
    """Records what one passive relay sees of every envelope it receives."""

    seen: list[Observation] = field(default_factory=list)
    ids: set[bytes] = field(default_factory=set)

    def record(self, frame: bytes, now: float, via: int = 0) -> None:
        try:
            env = envelope.decode(frame)
        except envelope.EnvelopeError:
            return
        eid = env.id()
        if eid in self.ids:
            return
        self.ids.add(eid)
        self.seen.append(
            Observation(now, eid, int(env.kind), env.tag, env.receipt, len(env.body), via)
        )


def linkability(
    observers: list[Observer], truth: dict[bytes, tuple[int, int]]
) -> dict[str, float | int]:
    """What the observers could link, by two attacks on what a relay really sees.

    ``truth`` maps envelope id -> (sender, recipient). Over pairs of observed envelopes:

    - **tags** (same conversation): among pairs that really belong to the same
      (sender, recipient), the fraction with equal routing tags, or equal PRoPHET route
      keys after the per-message tag (``linkable``); among pairs of different
      conversations, the fraction linked the same way (``false_links``);
    - **link and size** (same sender): guess that envelopes handed over on the same link
      (one contact with one neighbour) in the same size bucket come from the same sender;
      ``sender_linkable`` is the fraction of same-sender pairs the guess links,
      ``sender_false_links`` the fraction of different-sender pairs it links too.

    An attack only tells the observer something if its first number is well above its
    second; epidemic forwarding mixes everyone's envelopes on every link.
    """
    obs: dict[bytes, Observation] = {}
    for o in observers:
        for x in o.seen:
            obs.setdefault(x.envelope_id, x)
    known = [x for x in obs.values() if x.envelope_id in truth]
    same = same_linked = diff = diff_linked = 0
    s_same = s_same_linked = s_diff = s_diff_linked = 0
    for x, y in itertools.combinations(known[:2000], 2):
        tx, ty = truth[x.envelope_id], truth[y.envelope_id]
        route = route_of(x.tag)
        equal = (x.tag == y.tag and bool(x.tag)) or (route is not None and route == route_of(y.tag))
        if tx == ty:
            same += 1
            same_linked += equal
        else:
            diff += 1
            diff_linked += equal
        guess = x.via == y.via and x.size == y.size
        if tx[0] == ty[0]:
            s_same += 1
            s_same_linked += guess
        else:
            s_diff += 1
            s_diff_linked += guess

    def frac(a: int, b: int) -> float:
        return round(a / b, 4) if b else 0.0

    return {
        "observed_envelopes": len(obs),
        "same_pair_pairs": same,
        "linkable": frac(same_linked, same),
        "false_links": frac(diff_linked, diff),
        "sender_linkable": frac(s_same_linked, s_same),
        "sender_false_links": frac(s_diff_linked, s_diff),
    }
