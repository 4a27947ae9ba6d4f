"""The world a fuzz case starts from: a victim node V, its peer A and an offline contact C,
built deterministically from a seed, with stores that differ (so two contacts reconcile
over several MORE rounds and trade every envelope kind).

Before any contact:

- A holds two messages for V (a first contact, then a session message), a bulletin, its
  own prekey, C's prekey and a first contact from C to V (carried from C in an honest
  bundle, imported with :meth:`Node.import_frames`), and relayed envelopes V lacks;
- V holds a first contact for A, a bulletin, its prekey and relayed envelopes A lacks;
- both hold a few relayed envelopes in common.

Snapshots are pickles: restoring one is exactly the honest prefix replayed (the nodes'
randomness is a seeded :class:`random.Random` inside them), and far cheaper.
"""

from __future__ import annotations

import dataclasses
import io
import pickle
import random
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, ClassVar

from crypto.bulletin import Bulletin
from crypto.identity import Identity
from crypto.padding import BUCKETS
from crypto.prekeys import PrekeyRing
from mesh.core import bundle as B
from mesh.core import envelope as E
from mesh.core import messages as M
from mesh.core.events import SendFile, SendMessage
from mesh.core.memory_store import MemoryStore
from mesh.core.node import Node, NodeConfig

T0 = 1_700_000_000
DIFFICULTY = 2  # stamp bits: cheap to mint for crafted envelopes, still checked
STRATEGIES = ("epidemic", "spray", "prophet")


def victim_config(strategy: str) -> NodeConfig:
    return NodeConfig(
        strategy=strategy,
        mint_difficulty=DIFFICULTY,
        base_difficulty=DIFFICULTY,
        initial_symbols=2,  # small, so reconciliation needs MORE rounds
        receipt_delay=(2, 4),
        resync_every=40,
    )


@dataclass
class World:
    v: Node
    a: Node
    c: Node
    persona_a: bytes  # A's bulletin persona seed (crafted bulletins are re-signed with it)
    bundle: bytes  # the honest bundle C handed to A
    now: int


def _node(r: random.Random, strategy: str) -> Node:
    ident = Identity.generate(r.randbytes)
    ring = PrekeyRing()
    ring.create(ident, T0 - 3600, r.randbytes)
    return Node(ident, ring, MemoryStore(), r.randbytes, victim_config(strategy))


def relayed(r: random.Random, n: int, now: int) -> list[bytes]:
    """Frames of ``n`` stamped SESSION envelopes of strangers (random tags and bodies)."""
    out = []
    for _ in range(n):
        env = E.make(
            E.Kind.SESSION,
            E.coarse_expiry(now, 86400),
            r.randbytes(8),
            r.randbytes(BUCKETS[0]),
            8,
            receipt=r.randbytes(16),
        )
        out.append(E.encode(M.stamped(env, DIFFICULTY, r.randbytes)))
    return out


def _bulletin(seed: bytes, key: str, now: int) -> Bulletin:
    return Bulletin.create(
        seed, type="note", key=key, sequence=1, created=now, expiry=now + 86400, body=b"news"
    )


def build_world(seed: int, strategy: str) -> World:
    """The world before the first contact; V runs ``strategy``, A and C epidemic."""
    r = random.Random(f"steppe-fuzz-world:{seed}")
    v, a, c = _node(r, strategy), _node(r, "epidemic"), _node(r, "epidemic")
    for x in (v, a, c):
        for y in (v, a, c):
            if x is not y:
                x.add_contact(y.identity.public(), y.ring.keys[-1].record)
    now = T0
    c.publish_prekey(now)
    c.handle(SendMessage(v.identity.sign_public, b"from C"), now)
    frames, latest = c.courier.export_frames(1 << 20, now)
    bundle = B.make(frames, [latest], now).encode()
    a.courier.import_frames(B.decode(bundle, 1 << 20, now).frames, b"bundle", now)
    persona_a = r.randbytes(32)
    a.publish_prekey(now)
    a.publish_bulletin(_bulletin(persona_a, "a", now), now)
    a.handle(SendMessage(v.identity.sign_public, b"first contact from A"), now)
    a.handle(SendMessage(v.identity.sign_public, b"session message from A"), now)
    a.handle(SendFile(v.identity.sign_public, "from-a.bin", b"an attachment"), now)
    v.handle(SendMessage(a.identity.sign_public, b"first contact from V"), now)
    v.publish_prekey(now)
    v.publish_bulletin(_bulletin(r.randbytes(32), "v", now), now)
    common = relayed(r, 3, now)
    a.courier.import_frames(common + relayed(r, 5, now), b"relay", now)
    v.courier.import_frames(common + relayed(r, 5, now), b"relay", now)
    return World(v, a, c, persona_a, bundle, now)


# ---- snapshots ----------------------------------------------------------------------------


def _proxy(items: Mapping[Any, Any]) -> MappingProxyType[Any, Any]:
    return MappingProxyType(dict(items))


class _Pickler(pickle.Pickler):
    """Rebuilds read-only mappings (a node's dispatch table), and frozen dataclasses through
    their constructor, which loads several times faster than the default ``__setstate__``
    (snapshots are restored once per fuzz case)."""

    _fields: ClassVar[dict[type, tuple[str, ...]]] = {}

    def reducer_override(self, obj: Any) -> Any:
        cls = type(obj)
        if cls is MappingProxyType:
            return _proxy, (dict(obj),)
        names = self._fields.get(cls)
        if names is None:
            names = self._fields[cls] = _init_fields(cls)
        if names:
            return cls, tuple(getattr(obj, n) for n in names)
        return NotImplemented


def _init_fields(cls: type) -> tuple[str, ...]:
    """The fields of a frozen dataclass whose constructor only stores them, else ()."""
    params = getattr(cls, "__dataclass_params__", None)
    if params is None or not params.frozen or hasattr(cls, "__post_init__"):
        return ()
    fields = dataclasses.fields(cls)
    return tuple(f.name for f in fields) if all(f.init for f in fields) else ()


def snapshot(obj: object) -> bytes:
    buf = io.BytesIO()
    _Pickler(buf, protocol=pickle.HIGHEST_PROTOCOL).dump(obj)
    return buf.getvalue()


def restore(blob: bytes) -> Any:
    """The object a :func:`snapshot` holds (our own pickles only: never peer input)."""
    return pickle.loads(blob)  # noqa: S301 - written by snapshot() in this process
