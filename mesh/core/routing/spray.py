from __future__ import annotations

from mesh.core.errors import ConfigError
from mesh.core.routing.base import NO, EnvView, Handoff, Strategy, exact


class SprayAndWait(Strategy):
    """Binary spray-and-wait (Spyropoulos et al. 2005) with ``L`` copies: at most ``L``
    transfers of any envelope in the whole network.

    When the destination can be recognised exactly (a session envelope, see
    :mod:`mesh.core.routing.base`), the budget is the number of copies this node may
    still hand out, as in The ONE's ``SprayAndWaitRouter``: with ``n > 1`` copies give
    ``floor(n/2)`` to the peer and keep ``ceil(n/2)``; with one left, wait for the
    destination. The destination gets a copy with no budget and we keep ours. ``L``
    copies mean at most ``L - 1`` splits; the destination takes an envelope once.

    A first contact's destination can only be guessed: a peer whose 1-byte hint matches
    is a *candidate* (1 in 256 nodes share a hint). Handing it a free copy would let every
    hint collision cost a transfer beyond the budget. So for a first contact the budget
    counts the transfers this node may still make, each one uses one up, and none is
    free: a candidate gets a copy with no budget (an attempt: it opens it if it is the
    destination) and we keep ``n - 1``; any other peer, while ``n >= 3``, gets
    ``floor((n-1)/2)`` and we keep ``ceil((n-1)/2)``; the last two are kept for
    candidates. Budgets are never created, so a first contact, too, makes at most ``L``
    transfers, however many nodes share its hint.

    Envelopes for nobody in particular (bulletins, prekey records: no tag) are sprayed
    and then wait, as before.

    Reveals: the receiving neighbour marks which offered envelopes carry one of its tags
    (a session tag it expects, or its first-contact hint); in the spray phase, nothing.
    """

    NAME = "spray"
    NEEDS_DESTINATION = True
    REVEALS = (
        "the peer marks which offered envelopes carry its tags: a session tag it expects "
        "(it is the recipient) or its 1-byte first-contact hint (1 in 256 nodes share it)"
    )

    def __init__(self, copies: int = 8, hint_is_destination: int = 0) -> None:
        """``hint_is_destination`` (the simulator's ``first_contact = "as_destination"``,
        for comparison with The ONE, whose routers know every destination): a first
        contact is sprayed as if its destination were known, a hint match taken for it.
        Every hint collision then costs a transfer beyond the budget (1 node in 256)."""
        if copies < 1:
            raise ConfigError("spray-and-wait needs at least one copy")
        self.INITIAL_BUDGET = copies
        self.hint_is_destination = bool(hint_is_destination)

    def decide(self, env: EnvView, peer: bytes, peer_is_destination: bool, now: int) -> Handoff:
        if peer_is_destination or (self.hint_is_destination and env.candidate):
            return Handoff(True, 0, env.budget)
        if env.tag and not exact(env.tag) and not self.hint_is_destination:
            return self._guessed(env)
        if env.budget > 1:
            give = env.budget // 2
            return Handoff(True, give, env.budget - give)
        return NO

    @staticmethod
    def _guessed(env: EnvView) -> Handoff:
        """A first contact: every transfer uses one of the budget's transfers."""
        n = env.budget
        if n >= 1 and env.candidate:
            return Handoff(True, 0, n - 1)
        if n >= 3:
            give = (n - 1) // 2
            return Handoff(True, give, n - 1 - give)
        return NO
