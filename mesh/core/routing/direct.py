from __future__ import annotations

from mesh.core.routing.base import NO, EnvView, Handoff, Strategy


class DirectDelivery(Strategy):
    """Hand an envelope only to its destination; relays never carry it on.

    A session envelope goes to the one peer that marks it as its own (exact, see
    :mod:`mesh.core.routing.base`): one transfer. A first contact's destination can only be
    guessed by its 1-byte hint, so the originator offers it to every *candidate* (a peer
    whose hint matches) and keeps its own copy: the candidate's copy has no budget and is
    never handed on, so a hint collision costs one transfer to a node that cannot open it,
    never the message. A first contact makes at most one transfer per node that shares
    its hint.

    Reveals: the receiving neighbour marks which offered envelopes carry one of its tags
    (a session tag it expects: it is the recipient; or its first-contact hint). With fresh
    link keys per connection that links one contact's traffic, not an identity.
    """

    NAME = "direct"
    NEEDS_DESTINATION = True
    REVEALS = (
        "the peer marks which offered envelopes carry its tags: a session tag it expects "
        "(it is the recipient) or its 1-byte first-contact hint (1 in 256 nodes share it)"
    )
    INITIAL_BUDGET = 1

    def decide(self, env: EnvView, peer: bytes, peer_is_destination: bool, now: int) -> Handoff:
        if peer_is_destination or (env.candidate and env.budget > 0):
            return Handoff(True, 0, env.budget)
        return NO
