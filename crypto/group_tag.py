"""Rotating routing tags of a group's envelopes.

Every member of an epoch holds its 32-byte tag key (derived from the epoch secret in
:mod:`crypto.sender_keys`). The routing tag of a group envelope sent at time ``t`` is
``BLAKE2b-64(key=tag key, window)`` with ``window = t // WINDOW``: like a pairwise route
key (:func:`mesh.core.session.route_key`), keyed by a secret only the ends hold and
personalised apart from every other tag, so tags of different windows, epochs and groups
look unrelated to anyone without the key.

What a relay learns: envelopes with the same tag were sent to the same group in the same
:data:`WINDOW` seconds (one hour). It cannot tell which group, who sent them or to whom,
nor link that hour's envelopes to any other hour's or epoch's. (Pairwise session tags
differ for every envelope; a group tag cannot without the recipient knowing every
author's counter, which it does not before it holds the author's sender key.)

A member recognises envelopes by table lookup (:func:`tags_between`): every window from
the oldest an envelope may still be alive in (:data:`MAX_AGE`, longer than any envelope
lives) to one window ahead (a sender's clock may run fast).
"""

from __future__ import annotations

from crypto import primitives as p

TAG_LEN = 8
WINDOW = 3600
MAX_AGE = 8 * 86400  # longer than any envelope lives (7 days, rounded up)
SKEW = WINDOW  # how far a sender's clock may run ahead of ours
_PERSON = b"steppe-grp-tag"


def window_of(now: int) -> int:
    return now // WINDOW


def group_tag(tag_key: bytes, window: int) -> bytes:
    """The routing tag of the group's envelopes sent in ``window``."""
    if len(tag_key) != p.KEY_LEN or window < 0:
        raise ValueError("a group tag needs a 32-byte key and a window >= 0")
    return p.blake2b(window.to_bytes(8, "big"), key=tag_key, digest_size=TAG_LEN, person=_PERSON)


def tags_between(tag_key: bytes, start: int, end: int) -> dict[bytes, int]:
    """tag -> window for every window that overlaps ``[start, end]`` (times)."""
    first, last = window_of(max(start, 0)), window_of(max(end, 0))
    return {group_tag(tag_key, w): w for w in range(first, last + 1)}


def tags_to_recognise(tag_key: bytes, now: int, since: int = 0) -> dict[bytes, int]:
    """The tags an envelope of this key's group may carry if it reaches us at ``now``:
    sent no earlier than ``max(since, now - MAX_AGE)`` and no later than ``now + SKEW``."""
    return tags_between(tag_key, max(since, now - MAX_AGE), now + SKEW)
