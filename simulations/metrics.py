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
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any

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
    _pending: Message | None = None

    def creating(self, src: int, dst: int, size: int, now: float) -> None:
        self._pending = Message(src, dst, size, now)

    def queued(self, msg_id: bytes, envelope_id: bytes, src: int, now: float) -> None:
        msg = self._pending or Message(src, -1, 0, now)
        self._pending = None
        msg.msg_id, msg.envelope_id = msg_id, envelope_id
        self.messages.append(msg)
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
