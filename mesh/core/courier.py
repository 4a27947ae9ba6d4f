"""Bundles as a node sees them (``node.courier``): envelopes and receipts carried on a
USB stick or a file instead of a link (the file format is :mod:`mesh.core.bundle`).

What a bundle brings goes through the same checks and quotas as what a network peer
sends (strict decoding, stamp, expiry, signatures, per-source and global quotas); what a
node exports is what it would offer a neighbour.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from mesh.core._admission import Admission
from mesh.core._index import EnvelopeIndex
from mesh.core._receipts import Receipts
from mesh.core.events import Action, MessageAcked
from mesh.core.stats import ImportResult


class Courier:
    def __init__(
        self,
        admission: Admission,
        index: EnvelopeIndex,
        receipts: Receipts,
        take_receipts: Callable[[Iterable[bytes], int, int], list[Action]],
        flush: Callable[[list[Action]], list[Action]],
    ) -> None:
        self._admission = admission
        self._index = index
        self._receipts = receipts
        self._take_receipts = take_receipts  # purge, tell, pass on (link -1: no link)
        self._flush = flush  # what the step queued for the links

    def import_frames(self, frames: list[bytes], source: bytes, now: int) -> list[Action]:
        """Envelopes from a bundle (``source``: what quotas count them against), then
        delivered if ours and offered to open links."""
        return self._flush(self._admission.import_frames(frames, source, now, ImportResult()))

    def import_bundle(
        self, frames: list[bytes], receipts: list[bytes], source: bytes, now: int
    ) -> tuple[list[Action], ImportResult]:
        """A bundle: its receipts first (so what they answer is not stored again), then
        its envelopes as :meth:`import_frames`. Returns the actions and what the bundle
        did."""
        result = ImportResult()
        actions = self._take_receipts(receipts, -1, now)
        result.acked = sum(isinstance(a, MessageAcked) for a in actions)
        actions += self._flush(self._admission.import_frames(frames, source, now, result))
        result.stored = max(0, result.stored - result.delivered)  # stored first
        result.receipts = self._receipts.held(receipts)
        return actions, result

    def export_receipts(self, now: int) -> tuple[list[bytes], int]:
        """The released receipts this node passes on, and the latest expiry among them
        (a receipt is kept as long as what it answers can be alive)."""
        live = self._receipts.live(now)
        return [s for s, _e in live], max((e for _s, e in live), default=0)

    def export_frames(self, max_bytes: int, now: int) -> tuple[list[bytes], int]:
        """Stored, unexpired envelopes, highest priority and soonest expiry first, up to
        ``max_bytes`` of frames; and the latest expiry among them."""
        return self._index.export_frames(max_bytes, now)
