from __future__ import annotations

from mesh.core.routing.base import NO, EnvView, Handoff, Strategy


class SprayAndWait(Strategy):
    """Binary spray-and-wait (Spyropoulos et al. 2005) with ``L`` copies.

    The budget is the number of copies this node may still hand out. With ``n > 1`` copies,
    give ``floor(n/2)`` to the peer and keep ``ceil(n/2)``. With one copy left, wait: give it
    only to the destination.

    Reveals: in the wait phase the receiving neighbour marks which envelopes are addressed
    to it (tag match), as with direct delivery; in the spray phase, nothing.
    """

    NAME = "spray"
    NEEDS_DESTINATION = True
    REVEALS = "in the wait phase, the peer tells which envelopes are addressed to it"

    def __init__(self, copies: int = 8) -> None:
        if copies < 1:
            raise ValueError("spray-and-wait needs at least one copy")
        self.INITIAL_BUDGET = copies

    def decide(self, env: EnvView, peer: bytes, peer_is_destination: bool, now: int) -> Handoff:
        if peer_is_destination:
            return Handoff(True, 0, env.budget)
        if env.budget > 1:
            give = env.budget // 2
            return Handoff(True, give, env.budget - give)
        return NO
