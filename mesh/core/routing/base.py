"""The strategy interface.

Destinations
------------
Relays and neighbours are strangers, and an envelope names no recipient. A strategy that
needs to know whether the peer is an envelope's destination (``NEEDS_DESTINATION``) learns
it from the peer: the receiving node marks, in its want list, the offered envelopes whose
routing tag it recognises as its own. How much such a mark says depends on the tag:

- a session envelope's tag starts with 8 bytes that differ for every message and come
  from a key only the two ends hold (:mod:`mesh.core.session`): one node expects it, so
  a mark on it is *exact* and the node passes ``peer_is_destination=True``;
- a first contact carries a 1-byte hint of the recipient's prekey, which 1 in 256 nodes
  share: a mark on it means only "this hint is one of mine". The node passes it as
  :attr:`EnvView.candidate`, never as ``peer_is_destination``, so a node whose hint
  collides with the destination's is never treated as the destination (for copy
  accounting, or anything else); each strategy says what it does with a candidate.

:func:`destination` is that rule, applied to every mark the node hands a strategy.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from mesh.core.session import TAG_LEN

EXACT_TAG = TAG_LEN  # tags at least this long start with a per-message session tag


@dataclass(frozen=True, slots=True)
class EnvView:
    """What a strategy may look at: header fields only, never content; and whether the
    peer marked the envelope by a first-contact hint (a guess, see :func:`destination`)."""

    id: bytes
    budget: int
    expiry: int
    tag: bytes
    own: bool = False  # originated on this node
    candidate: bool = False  # the peer's first-contact hint matches: maybe the destination


@dataclass(frozen=True, slots=True)
class Handoff:
    give: bool
    peer_budget: int = 0  # budget written into the copy handed over
    keep_budget: int = 0  # our budget after the handoff (0: our copy is spent)


NO = Handoff(False)


def exact(tag: bytes) -> bool:
    """Does a mark on an envelope with this tag name exactly one node?"""
    return len(tag) >= EXACT_TAG


def destination(tag: bytes, marked: bool) -> tuple[bool, bool]:
    """``(is the destination, is a candidate)`` for a peer that did or did not mark, as its
    own, an envelope with this routing tag."""
    return marked and exact(tag), marked and bool(tag) and not exact(tag)


class Strategy(ABC):
    NAME = "base"
    NEEDS_DESTINATION = False
    REVEALS = ""
    INITIAL_BUDGET = 8

    @abstractmethod
    def decide(self, env: EnvView, peer: bytes, peer_is_destination: bool, now: int) -> Handoff:
        """Whether to hand ``env`` to ``peer`` (a link key, fresh per connection for most
        nodes). ``peer_is_destination`` is exact: the peer marked the envelope and its
        tag names one node (:func:`destination`)."""

    def routing_info(self, receive_keys: list[bytes], now: int) -> bytes:
        """Bytes sent to every neighbour at the start of a contact (default: nothing).
        ``receive_keys`` are the tag keys of the sessions this node receives in, most
        recently used first: secrets, from which a strategy may derive what it announces
        (never the keys themselves)."""
        return b""

    def route_for(self, send_tag_key: bytes, now: int) -> bytes:
        """What a session envelope sealed now under ``send_tag_key`` carries after its
        per-message tag, for this strategy's relays (default: nothing)."""
        return b""

    def on_contact(self, peer: bytes, info: bytes, now: int) -> None:  # noqa: B027
        """The neighbour's routing info arrived (default: ignored)."""

    def on_contact_end(self, peer: bytes, now: int) -> None:  # noqa: B027
        """The contact ended (default: nothing to forget)."""
