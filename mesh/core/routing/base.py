"""The strategy interface."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class EnvView:
    """What a strategy may look at: header fields only, never content."""

    id: bytes
    budget: int
    expiry: int
    tag: bytes
    own: bool = False  # originated on this node


@dataclass(frozen=True, slots=True)
class Handoff:
    give: bool
    peer_budget: int = 0  # budget written into the copy handed over
    keep_budget: int = 0  # our budget after the handoff (0: our copy may be dropped)


NO = Handoff(False)


class Strategy(ABC):
    NAME = "base"
    NEEDS_DESTINATION = False
    REVEALS = ""
    INITIAL_BUDGET = 8

    @abstractmethod
    def decide(self, env: EnvView, peer: bytes, peer_is_destination: bool, now: int) -> Handoff: ...

    def routing_info(self, own_tags: list[bytes], now: int) -> bytes:
        """Bytes sent to every neighbour at the start of a contact (default: nothing)."""
        return b""

    def on_contact(self, peer: bytes, info: bytes, now: int) -> None:  # noqa: B027
        """The neighbour's routing info arrived (default: ignored)."""

    def on_contact_end(self, peer: bytes, now: int) -> None:  # noqa: B027
        """The contact ended (default: nothing to forget)."""
