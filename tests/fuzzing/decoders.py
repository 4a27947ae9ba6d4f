"""The crypto decoders straight, with mutated honest encodings: each may refuse its input
only with a :class:`~crypto.errors.CryptoError` (the node's parse boundaries rely on it).

Most of them are also reached through ``Node.handle`` by the other families; contact cards
are not (they come from a QR code or a file, through ``steppe contacts add``), and here
each decoder meets ten times the inputs at no cost of a node.
"""

from __future__ import annotations

import base64
import random
from collections.abc import Callable

from crypto.bulletin import Bulletin
from crypto.errors import CryptoError
from crypto.identity import CARD_PREFIX, ContactCard, Identity, PublicIdentity
from crypto.prekeys import PrekeyRing
from crypto.ratchet import Header, Ratchet
from crypto.sender_keys import EpochRecord, Group, SenderKey
from crypto.wire import pack, strict_unpack
from mesh.core.groups import Control, MemberCard, inner_message, read_inner
from mesh.core.session import Inner
from tests.fuzzing.mutate import mutate_encoded
from tests.fuzzing.world import T0

Decoder = Callable[[bytes], object]


def _card(raw: bytes) -> object:
    text = CARD_PREFIX + base64.b32encode(raw).decode().rstrip("=")
    return ContactCard.decode(text)


def _identity(raw: bytes) -> object:
    return PublicIdentity.from_list(strict_unpack(raw, max_size=len(raw)))


def corpus(seed: int) -> dict[str, tuple[bytes, Decoder]]:
    """name -> (an honest encoding, its decoder)."""
    r = random.Random(f"steppe-fuzz-decoders:{seed}")
    ident = Identity.generate(r.randbytes)
    ring = PrekeyRing()
    record = ring.create(ident, T0, r.randbytes).record
    card = ContactCard.create(ident, "Aigerim", T0)
    body = card.encode()[len(CARD_PREFIX) :]
    card_raw = base64.b32decode(body + "=" * (-len(body) % 8))
    bulletin = Bulletin.create(
        r.randbytes(32), type="note", key="k", sequence=3, created=T0, expiry=T0 + 60, body=b"b"
    )
    ratchet = Ratchet.init_alice(r.randbytes(32), record.public, r.randbytes)
    header = ratchet.encrypt(b"x", b"ad")
    inner = Inner(r.randbytes(16), T0, 1, b"hello", r.randbytes(16))
    group = Group.create(ident.sign_public, r.randbytes)
    epoch = group.invite(r.randbytes(32))
    member = MemberCard(ident.public(), record)
    control = Control(
        group.group_id, "organisers", epoch.encode(), group.sender_key().encode(), (member,)
    )
    return {
        "group control": (control.encode(), Control.decode),
        "epoch record": (epoch.encode(), EpochRecord.decode),
        "sender key": (group.sender_key().encode(), SenderKey.decode),
        "group message": (inner_message(r.randbytes(16), T0, 1, b"hi"), read_inner),
        "contact card": (card_raw, _card),
        "public identity": (pack(ident.public().to_list()), _identity),
        "prekey record": (record.encode(), type(record).decode),
        "bulletin": (bulletin.encode(), Bulletin.decode),
        "ratchet header": (header[1 : 1 + header[0]], Header.decode),
        "session payload": (inner.encode(), Inner.decode),
    }


def fuzz_decoders(seed: int, cases: int) -> tuple[int, int, list[str]]:
    """(inputs tried, refused with a CryptoError, what escaped otherwise)."""
    r = random.Random(f"steppe-fuzz-decoders:{seed}:run")
    items = sorted(corpus(seed).items())
    escaped: list[str] = []
    refused = 0
    for i in range(cases):
        name, (honest, decode) = items[i % len(items)]
        kind, data = mutate_encoded(honest, r, [h for _n, (h, _d) in items])
        try:
            decode(data)
        except CryptoError:
            refused += 1
        except Exception as exc:  # noqa: BLE001 - anything else out of a decoder is the finding
            escaped.append(f"{name} ({kind}, case {i}): {type(exc).__name__}: {exc}")
    return cases, refused, escaped
