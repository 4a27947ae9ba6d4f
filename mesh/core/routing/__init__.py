"""Pluggable routing strategies: pure objects the node consults during a contact.

Each strategy decides, per envelope the peer lacks, whether to hand over a copy and with
which budget (:class:`Handoff`), and says in :attr:`Strategy.REVEALS` exactly what it makes
the node reveal to neighbours. A strategy that needs to know whether the peer is the
destination sets :attr:`Strategy.NEEDS_DESTINATION`; only then does the receiving node
mark, in its want-list, the envelopes whose routing tag it recognises as its own. Such a
mark is exact only for a session tag; on a first contact's 1-byte hint it is a guess, and
no strategy takes it for the destination (:mod:`mesh.core.routing.base`).
"""

from __future__ import annotations

from types import MappingProxyType

from mesh.core.errors import ConfigError
from mesh.core.routing.base import EnvView, Handoff, Strategy, destination, exact
from mesh.core.routing.direct import DirectDelivery
from mesh.core.routing.epidemic import Epidemic
from mesh.core.routing.prophet import Prophet, ProphetParams
from mesh.core.routing.spray import SprayAndWait

__all__ = (
    "STRATEGIES",
    "DirectDelivery",
    "EnvView",
    "Epidemic",
    "Handoff",
    "Prophet",
    "ProphetParams",
    "SprayAndWait",
    "Strategy",
    "by_name",
    "destination",
    "exact",
)


STRATEGIES: MappingProxyType[str, type[Strategy]] = MappingProxyType(
    {
        "direct": DirectDelivery,
        "epidemic": Epidemic,
        "spray": SprayAndWait,
        "prophet": Prophet,
    }
)


def by_name(name: str, **kwargs: int) -> Strategy:
    """A fresh strategy instance: ``direct``, ``epidemic``, ``spray`` or ``prophet``."""
    if name not in STRATEGIES:
        raise ConfigError(f"unknown routing strategy {name!r}: choose {', '.join(STRATEGIES)}")
    return STRATEGIES[name](**kwargs)
