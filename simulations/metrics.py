"""Message statistics with The ONE simulator's ``MessageStatsReport`` definitions and keys.

- ``created``: messages created; ``started``: transfers started (an envelope handed to a
  link); ``relayed``: transfers completed; ``aborted``: transfers cut off on the air when a
  contact ended, as ONE counts them: a link sends one frame at a time each way, so at most
  one per direction, and only if that direction was still sending (envelopes queued behind
  it never began; they are not aborted, and not relayed); ``dropped``: copies
  removed from a buffer by eviction or TTL (``dropped_at_source``: of them, messages evicted
  by the node that wrote them, which only ``eviction = "oldest_received"`` does);
  ``removed``: copies removed otherwise (delivered, purged by a receipt); ``delivered``:
  messages that reached their destination.
- ``delivery_prob`` = delivered / created; ``response_prob`` = delivery receipts that
  reached the sender / created (our receipts play ONE's responses); ``overhead_ratio`` =
  (relayed - delivered) / delivered.
- ``latency``: creation to delivery; ``hopcount``: hops of the delivered copy;
  ``buffertime``: how long removed copies stayed in buffers; ``rtt``: creation to receipt.
  Averages and medians of nothing (no message delivered, no receipt back) are None, like
  ``overhead_ratio`` with nothing delivered: never a 0 that reads as "instant".

Attachments (``traffic.files`` above 0) are kept apart from the messages: every key above
is about text messages only (``relayed``, ``started``, ``aborted`` and the byte counts
still count every envelope, chunks included), so the same keys compare text delivery with
and without photos. ``files`` in the summary: ``sent`` (files queued by their sender),
``refused_at_source`` (the sender's node would not take the file, e.g. no room in its
store), ``offered`` (manifests that reached the recipient), ``refused`` (manifests the
recipient refused), ``received`` (``FileReceived`` at the recipient with every chunk's
bytes there and the whole file's digest equal to what was sent), ``corrupt`` (a
``FileReceived`` whose bytes differ: never expected), ``dropped`` (given up at the
recipient, expired), ``chunks_received``, ``delivery_prob`` = received / sent, ``latency``
(creation to ``FileReceived``), ``bytes_sent`` and ``bytes_received``.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any

from crypto.attachment import CHUNK_DATA, file_digest
from mesh.core.node import Node


@dataclass
class Message:
    src: int
    dst: int
    size: int
    created: float
    msg_id: bytes = b""
    envelope_id: bytes = b""
    delivered_at: float | None = None
    hops: int | None = None
    acked_at: float | None = None
    digest: bytes = b""  # a file's digest as sent; empty for a text message
    file_id: bytes = b""  # a file's id, once its manifest reached the recipient


@dataclass
class FileCounts:
    """What happened to files beyond their :class:`Message` records."""

    refused_at_source: int = 0
    offered: int = 0
    refused: int = 0
    corrupt: int = 0
    dropped: int = 0
    chunks: int = 0
    pieces: dict[tuple[int, bytes], dict[int, bytes]] = field(default_factory=dict)


def _avg(xs: list[float]) -> float | None:
    """None (JSON null) when there is nothing to average: no delivery has no latency."""
    return round(statistics.fmean(xs), 4) if xs else None


def _med(xs: list[float]) -> float | None:
    return round(statistics.median(xs), 4) if xs else None


@dataclass
class Metrics:
    node_count: int = 0
    contacts: int = 0
    started_n: int = 0
    relayed_n: int = 0
    aborted: int = 0
    dropped: int = 0
    dropped_at_source: int = 0  # evicted from the store of the node that wrote them
    removed_n: int = 0
    bytes_on_air: int = 0
    bytes_internet: int = 0  # between gateways, over their internet links
    messages: list[Message] = field(default_factory=list)
    by_id: dict[bytes, Message] = field(default_factory=dict)
    hops: dict[tuple[int, bytes], int] = field(default_factory=dict)
    stored_at: dict[tuple[int, bytes], float] = field(default_factory=dict)
    buffer_times: list[float] = field(default_factory=list)
    occupancy: list[tuple[float, int]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    junk: int = 0
    region_of: list[str] = field(default_factory=list)
    net_states: list[tuple[float, dict[str, str]]] = field(default_factory=list)
    files: list[Message] = field(default_factory=list)  # attachments, apart from texts
    file_counts: FileCounts = field(default_factory=FileCounts)
    files_on: bool = False  # the summary has a "files" table
    _pending: Message | None = None

    def creating(self, src: int, dst: int, size: int, now: float, digest: bytes = b"") -> None:
        self._pending = Message(src, dst, size, now, digest=digest)

    def queued(self, msg_id: bytes, envelope_id: bytes, src: int, now: float) -> None:
        msg = self._pending or Message(src, -1, 0, now)
        self._pending = None
        msg.msg_id, msg.envelope_id = msg_id, envelope_id
        (self.files if msg.digest else self.messages).append(msg)
        self.by_id[msg_id] = msg
        self.hops[(src, envelope_id)] = 0
        self.stored_at[(src, envelope_id)] = now

    def started(self, node: int, eid: bytes) -> None:
        self.started_n += 1

    def relayed(self, sender: int, receiver: int, eid: bytes, now: float) -> None:
        self.relayed_n += 1
        key = (receiver, eid)
        if key not in self.hops:
            self.hops[key] = self.hops.get((sender, eid), 0) + 1
            self.stored_at[key] = now

    def delivered(self, msg_id: bytes, node: int, now: float) -> None:
        msg = self.by_id.get(msg_id)
        if msg is None or msg.dst != node or msg.delivered_at is not None:
            return
        msg.delivered_at = now
        msg.hops = self.hops.get((node, msg.envelope_id))

    def acked(self, msg_id: bytes, node: int, now: float) -> None:
        msg = self.by_id.get(msg_id)
        if msg is not None and msg.src == node and msg.acked_at is None:
            msg.acked_at = now

    def send_failed(self) -> None:
        """The sender's node refused the send just made (counted for files only: a refused
        text never was a message, as before)."""
        if self._pending is not None and self._pending.digest:
            self.file_counts.refused_at_source += 1
        self._pending = None

    # ---- attachments at the recipient -------------------------------------------------
    def file_offered(self, msg_id: bytes, file_id: bytes, node: int, refused: str) -> None:
        msg = self.by_id.get(msg_id)
        if msg is None or msg.dst != node or msg.file_id:
            return
        msg.file_id = file_id
        if refused:
            self.file_counts.refused += 1
        else:
            self.file_counts.offered += 1
            self.file_counts.pieces[(node, file_id)] = {}

    def chunk(self, file_id: bytes, node: int, index: int, data: bytes) -> None:
        pieces = self.file_counts.pieces.get((node, file_id))
        if pieces is not None:
            pieces[index] = data
            self.file_counts.chunks += 1

    def file_received(self, msg_id: bytes, node: int, now: float) -> None:
        """Whole at the recipient: the bytes kept from its chunks must be what was sent."""
        msg = self.by_id.get(msg_id)
        if msg is None or msg.dst != node or msg.delivered_at is not None:
            return
        pieces = self.file_counts.pieces.pop((node, msg.file_id), {})
        data = b"".join(pieces[i] for i in sorted(pieces))
        whole = sorted(pieces) == list(range(-(-msg.size // CHUNK_DATA)))
        if whole and len(data) == msg.size and file_digest(data) == msg.digest:
            msg.delivered_at = now
            msg.hops = self.hops.get((node, msg.envelope_id))
        else:
            self.file_counts.corrupt += 1

    def file_dropped(self, file_id: bytes, node: int) -> None:
        if self.file_counts.pieces.pop((node, file_id), None) is not None:
            self.file_counts.dropped += 1

    def removed(self, node: int, eid: bytes, why: str, now: float) -> None:
        if why == "deleted":
            self.removed_n += 1
        else:
            self.dropped += 1
            if why == "evicted" and self.hops.get((node, eid)) == 0:
                self.dropped_at_source += 1
        since = self.stored_at.pop((node, eid), None)
        if since is not None:
            self.buffer_times.append(now - since)

    def sample(self, now: float, nodes: list[Node]) -> None:
        self.occupancy.append((now, sum(n.store.total_bytes() for n in nodes)))

    def finish(self, duration: float, nodes: list[Node]) -> None:
        self.sample(duration, nodes)
        created = len(self.messages)
        done = [m for m in self.messages if m.delivered_at is not None]
        latencies = [m.delivered_at - m.created for m in done if m.delivered_at is not None]
        hops = [float(m.hops) for m in done if m.hops is not None]
        rtts = [m.acked_at - m.created for m in self.messages if m.acked_at is not None]
        delivered = len(done)
        self.summary = {
            "created": created,
            "started": self.started_n,
            "relayed": self.relayed_n,
            "aborted": self.aborted,
            "dropped": self.dropped,
            "dropped_at_source": self.dropped_at_source,
            "removed": self.removed_n,
            "delivered": delivered,
            "delivery_prob": round(delivered / created, 4) if created else 0.0,
            "response_prob": round(len(rtts) / created, 4) if created else 0.0,
            "overhead_ratio": (
                round((self.relayed_n - delivered) / delivered, 4) if delivered else None
            ),
            "latency_avg": _avg(latencies),
            "latency_med": _med(latencies),
            "hopcount_avg": _avg(hops),
            "hopcount_med": _med(hops),
            "buffertime_avg": _avg(self.buffer_times),
            "buffertime_med": _med(self.buffer_times),
            "rtt_avg": _avg(rtts),
            "rtt_med": _med(rtts),
            "delivered_1h": sum(1 for x in latencies if x <= 3600),
            "delivered_6h": sum(1 for x in latencies if x <= 6 * 3600),
            "delivered_24h": sum(1 for x in latencies if x <= 24 * 3600),
            "bytes_on_air": self.bytes_on_air,
            "bytes_internet": self.bytes_internet,
            "contacts": self.contacts,
            "nodes": self.node_count,
            "junk_created": self.junk,
            "per_region": self._per_region(),
        }
        if self.files_on:
            self.summary["files"] = self._files()

    def _files(self) -> dict[str, float | int | None]:
        fc = self.file_counts
        done = [m for m in self.files if m.delivered_at is not None]
        latencies = [m.delivered_at - m.created for m in done if m.delivered_at is not None]
        sent = len(self.files)
        return {
            "sent": sent,
            "refused_at_source": fc.refused_at_source,
            "offered": fc.offered,
            "refused": fc.refused,
            "received": len(done),
            "corrupt": fc.corrupt,
            "dropped": fc.dropped,
            "chunks_received": fc.chunks,
            "delivery_prob": round(len(done) / sent, 4) if sent else 0.0,
            "latency_avg": _avg(latencies),
            "latency_med": _med(latencies),
            "bytes_sent": sum(m.size for m in self.files),
            "bytes_received": sum(m.size for m in done),
        }

    def _per_region(self) -> dict[str, dict[str, float | int]]:
        """Delivery by the destination's region (and "" for nodes outside any region)."""
        out: dict[str, dict[str, float | int]] = {}
        for region in sorted(set(self.region_of)):
            msgs = [
                m
                for m in self.messages
                if 0 <= m.dst < len(self.region_of) and self.region_of[m.dst] == region
            ]
            done = sum(1 for m in msgs if m.delivered_at is not None)
            out[region or "-"] = {
                "created": len(msgs),
                "delivered": done,
                "delivery_prob": round(done / len(msgs), 4) if msgs else 0.0,
            }
        return out
