"""Per-message routing tags of a group's envelopes, exactly as pairwise tags are.

Every member of an epoch holds its 32-byte tag key (derived from the epoch secret in
:mod:`crypto.sender_keys`). The routing tag of the ``seq``-th message of ``author`` in the
epoch is ``BLAKE2b-64(key=tag key, author || seq)``, personalised apart from every other
tag: like a pairwise session tag (:meth:`mesh.core.session.Session.tag`), keyed by a secret
only the members hold, and different for every envelope.

What a relay learns: nothing links two envelopes of a group. Every envelope carries a tag
no other envelope carries, and without the tag key the tags of one group, author or epoch
look like independent random strings; the time of sending is not in them either. What is
left is what every envelope shows: its size bucket, expiry and when and where it was seen.

A member recognises its envelopes by table lookup, without trial decryption
(:meth:`crypto.sender_keys.Group.expected_tags`): for each inbound sender chain it holds,
the :data:`WINDOW` counters from the chain's next counter (the lowest it has neither opened
nor skipped) and the skipped counters whose keys it keeps. The tag tells the member the
message's epoch, author and counter; so the group message needs no encrypted header. Its
own messages it never receives, so their tags are not in the table. The table holds at
most ``(MAX_MEMBERS - 1) * WINDOW`` window tags per epoch (63 * 32 = 2,016), for at most
``MAX_EPOCHS`` epochs, plus one tag per skipped key kept (``MAX_SKIPPED_PER_GROUP``).

What is not recognised yet: a message :data:`WINDOW` or more ahead of its chain, and a
message whose author's sender key has not arrived. The caller keeps such an envelope like
any relayed one and looks again when the table grows, i.e. after a message of that chain
opened (the window moved) or a sender key was accepted, as it does for pairwise sessions.
A message whose :data:`WINDOW` predecessors never arrive stays unrecognised: the window
moves only when a message within it is opened.
"""

from __future__ import annotations

from crypto import primitives as p

TAG_LEN = 8
WINDOW = 32  # counters recognised ahead of a chain's next counter
_PERSON = b"steppe-grp-mtag"
_MAX_SEQ = 2**32 - 1


def message_tag(tag_key: bytes, author: bytes, seq: int) -> bytes:
    """The routing tag of ``author``'s ``seq``-th message under the epoch's ``tag_key``."""
    if len(tag_key) != p.KEY_LEN or len(author) != 32 or not 0 <= seq <= _MAX_SEQ:
        raise ValueError("a group tag needs a 32-byte key and author and a 32-bit counter")
    return p.blake2b(
        author + seq.to_bytes(4, "big"), key=tag_key, digest_size=TAG_LEN, person=_PERSON
    )
