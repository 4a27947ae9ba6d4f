from __future__ import annotations

from mesh.core.routing.base import NO, EnvView, Handoff, Strategy


class DirectDelivery(Strategy):
    """Hand an envelope only to its destination; relays never carry it on.

    Reveals: the receiving neighbour marks which offered envelopes carry one of its routing
    tags, so the sender learns "this link peer is the recipient of envelope X". With fresh
    link keys per connection that links one contact's traffic, not an identity.
    """

    NAME = "direct"
    NEEDS_DESTINATION = True
    REVEALS = "the peer tells the sender which envelopes are addressed to it (tag match)"
    INITIAL_BUDGET = 1

    def decide(self, env: EnvView, peer: bytes, peer_is_destination: bool, now: int) -> Handoff:
        if peer_is_destination:
            return Handoff(True, 0, env.budget)
        return NO
