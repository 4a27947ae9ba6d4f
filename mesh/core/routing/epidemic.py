from __future__ import annotations

from mesh.core.routing.base import NO, EnvView, Handoff, Strategy


class Epidemic(Strategy):
    """Give every envelope the peer lacks, decrementing the hop budget.

    Reveals: nothing beyond the set of envelope ids each side holds (which reconciliation
    exposes to any neighbour anyway). No destination information is asked for or sent.
    """

    NAME = "epidemic"
    REVEALS = "nothing beyond the envelope ids held (as for every strategy)"
    INITIAL_BUDGET = 16

    def __init__(self, initial_budget: int = 16) -> None:
        self.INITIAL_BUDGET = initial_budget

    def decide(self, env: EnvView, peer: bytes, peer_is_destination: bool, now: int) -> Handoff:
        if env.budget <= 0:
            return NO
        return Handoff(True, env.budget - 1, env.budget)
