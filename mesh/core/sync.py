"""Reconciliation on one link: which envelopes does each side lack?

Theory of operation
-------------------
Rateless IBLT (:mod:`mesh.core.riblt`) over *ranges* of the id space, pulled by the
decoder. A :class:`Range` ``(depth, prefix)`` is the set of ids whose first ``depth`` bits
equal ``prefix``; ``(0, 0)`` is every id.

- The link initiator decodes, the link responder serves (a stray request the other way is
  served too: serving is stateless and costs the asker as much bandwidth as it costs us).
  The initiator has the responder's HELLO from the handshake's second message, so its
  first MORE leaves with the third: mail waiting on the responder (a relay holding
  someone's mail) is offered two one-way trips sooner than when the responder pulled; a
  relay, usually dialled, serves symbols and leaves the decoding to who dials it.
- The decoder asks ``MORE(range, start, upto)``; the server answers ``SYMBOLS(range, start,
  blob, counts)`` with coded symbols ``[start, upto)`` of the ids it held in the range when
  it was first asked for it (``start`` 0): the store marks that moment and keeps the
  changes since (:meth:`~mesh.core.store.PolicyStore.mark`), so every round of a range
  comes from one set while other links keep changing the store, and no side copies its ids
  per link. If those changes were forgotten (a long pause, a flood of changes) the server
  answers from ``start`` 0 with a fresh mark and the decoder starts the range over.
- The decoder subtracts its own symbols for the same range and peels. If the difference
  does not come out, it asks for twice as many symbols, or for 1.7 times the least the
  difference can be (the two sets' sizes, which symbol 0 counts, differ by that much) if
  that is more, up to ``cap`` per range. At the cap
  it splits the range into :data:`FANOUT` sub-ranges and reconciles them one after another,
  each starting at ``cap / FANOUT`` symbols (the parent's failure says its difference is at
  least about ``cap / 1.7``). So a difference of any size, up to both stores together,
  reconciles while the decoder holds at most ``cap`` remote symbols (``cap`` x 48 bytes) per
  link: the bound protects memory, not correctness. Only a range at :data:`MAX_DEPTH` that
  still does not peel (an attacker's symbols) is a peer error.
- Each range's difference is handed to the node as soon as it is known, so trading starts
  while the rest is still being reconciled.

The decoder's own symbols are computed afresh, from one set, at each round. An id that
arrived or left between the two sides' sets costs one offer the peer declines or one ask
that times out, never a wrong envelope (ids are hashes of what they name).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from mesh.core.errors import MalformedInput, PeerError
from mesh.core.riblt import Difference, Symbols, decode_symbols, subtract_and_peel

FANOUT_BITS = 4
FANOUT = 1 << FANOUT_BITS
MAX_DEPTH = 16  # 65,536 ranges: differences far beyond any store
MAX_SERVE = 1 << 16  # symbols per range a server computes for one request (CPU bound)
ID_BITS = 256


class SyncError(PeerError):
    """The peer's symbols break the reconciliation protocol."""


@dataclass(frozen=True, slots=True, order=True)
class Range:
    depth: int = 0
    prefix: int = 0

    def valid(self) -> bool:
        return 0 <= self.depth <= MAX_DEPTH and 0 <= self.prefix < (1 << self.depth)

    def bounds(self) -> tuple[bytes, bytes | None]:
        """``[lo, hi)`` as id bounds for the store (``hi`` None: no upper bound)."""
        if self.depth == 0:
            return b"", None
        shift = ID_BITS - self.depth
        lo = (self.prefix << shift).to_bytes(32, "big")
        top = (self.prefix + 1) << shift
        return lo, (None if top >= 1 << ID_BITS else top.to_bytes(32, "big"))

    def children(self) -> list[Range]:
        return [
            Range(self.depth + FANOUT_BITS, (self.prefix << FANOUT_BITS) | k) for k in range(FANOUT)
        ]


FULL = Range()
LocalSymbols = Callable[[Range, int], Symbols]


@dataclass(frozen=True, slots=True)
class Request:
    """Ask the server for symbols ``[start, upto)`` of ``range``."""

    range: Range
    start: int
    upto: int


@dataclass(slots=True)
class Decoder:
    """The decoding side of one reconciliation: which range is being pulled, the remote
    symbols received for it (at most ``cap``) and the ranges still to do."""

    cap: int
    initial: int
    current: Range | None = None
    remote: Symbols | None = None
    expect: int = 0
    pending: list[tuple[Range, int]] = field(default_factory=list)  # (range, first ask)
    rounds: int = 0

    @property
    def active(self) -> bool:
        return self.current is not None

    def start(self) -> Request:
        """Begin (or restart) a reconciliation of everything."""
        self.pending = []
        return self._begin(FULL, min(self.initial, self.cap))

    def _begin(self, rng: Range, count: int) -> Request:
        self.current, self.remote, self.expect = rng, Symbols.empty(), count
        return Request(rng, 0, count)

    def on_symbols(
        self, rng: Range, start: int, blob: bytes, counts: list[int], local: LocalSymbols
    ) -> tuple[Difference | None, Request | None]:
        """Take one SYMBOLS message. Returns the difference of a range once it peels (or
        None) and the next request (None: this batch is still arriving, or all is done)."""
        if self.current is None or self.remote is None:
            raise SyncError("SYMBOLS nobody asked for")
        if rng != self.current or start not in (0, len(self.remote)):
            raise SyncError("SYMBOLS out of order")
        if start == 0:
            self.remote = Symbols.empty()  # (re)started from the server's current set
        if start + len(counts) > self.expect:
            raise SyncError("more SYMBOLS than asked for")
        try:
            self.remote = self.remote.extend(decode_symbols(blob, counts))
        except MalformedInput as exc:
            raise SyncError(f"bad SYMBOLS: {exc}") from None
        m = len(self.remote)
        if m < self.expect:
            return None, None
        mine = local(rng, m)
        diff = subtract_and_peel(self.remote, mine)
        if diff is not None:
            return diff, self._next()
        self.rounds += 1
        # Symbol 0 counts every id of a set, so the two sets' sizes differ by at least
        # this much: the difference is at least that large.
        least = abs(int(self.remote.counts[0]) - int(mine.counts[0]))
        if m < self.cap:
            self.expect = min(self.cap, max(m * 2, (least * 17 + 9) // 10))
            return None, Request(rng, m, self.expect)
        if rng.depth + FANOUT_BITS > MAX_DEPTH:
            raise SyncError("reconciliation did not converge")
        each = max(self.cap // FANOUT, (least * 17 // 10) // FANOUT)
        first = min(self.cap, max(self.initial, each))
        self.pending = [(c, first) for c in rng.children()] + self.pending
        return None, self._next()

    def _next(self) -> Request | None:
        if not self.pending:
            self.current, self.remote, self.expect = None, None, 0
            return None
        rng, count = self.pending.pop(0)
        return self._begin(rng, count)


def check_request(rng: Range, start: int, upto: int) -> None:
    """Refuse a MORE that no decoder following this protocol would send."""
    if not rng.valid() or not 0 <= start < upto <= MAX_SERVE:
        raise SyncError("bad MORE request")
