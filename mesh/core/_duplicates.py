"""Duplicate links between the same two nodes, found without naming either (private to
:mod:`mesh.core.node`).

Over Bluetooth LE both devices advertise and both dial, and a node's link keys are fresh
per connection, so two nodes can hold two links at once and neither can tell from keys
or addresses that the other end is the same. Each side proves which of its other links
it holds, to the peer alone: on a link ``L`` it sends, for every other open link ``K``,
``tag(K, L) = BLAKE2b(h(L), key=h(K))[:8]`` where ``h`` is a link's Noise handshake
hash, which only the two ends of that link know. The receiver computes the same tag for
each of its own links; a match means the peer holds ``K`` too, so ``K`` and ``L`` join
the same two nodes. Both ends then keep the link with the smaller handshake hash (the
same answer at both) and close the other. A third party on ``L`` sees random bytes: no
identifier crosses links, so this costs nothing against tracking. A link whose handshake
hash equals another of ours has ourselves at the other end (we dialled our own
advertisement): both ends close.

When a link opens, the new link carries tags for every other open link, and each other
open link carries a tag for the new one, so whichever end sees both links open first
finds the pair.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from crypto.primitives import blake2b

TAG_LEN = 8
MAX_TAGS = 64  # tags in one LINKS message (more open links than that: only the newest)


def tag(other: bytes, this: bytes) -> bytes:
    """The proof, sent on the link with handshake hash ``this``, of holding ``other``."""
    return blake2b(this, key=other, digest_size=TAG_LEN, person=b"steppe-dup-link")


def tags_for(this: bytes, others: Iterable[bytes]) -> list[bytes]:
    return [tag(h, this) for h in others][-MAX_TAGS:]


def twin_of(this: bytes, tags: Iterable[bytes], others: Mapping[int, bytes]) -> int | None:
    """The id of our other link the peer's ``tags`` on ``this`` prove it holds."""
    wanted = set(tags)
    for link, h in others.items():
        if tag(h, this) in wanted:
            return link
    return None
