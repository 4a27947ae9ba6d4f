"""A discrete-event engine with virtual time (the SimPy way, STYLE.md 14).

Events sit in a heap of ``(time, seq, callback)``; ``seq`` increases with every schedule, so
events at the same time run in the order they were scheduled and a run is reproducible to
the byte. Time is a float of simulated seconds; nothing here reads a clock.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass, field

Callback = Callable[[], None]


@dataclass
class Engine:
    now: float = 0.0
    events_run: int = 0
    _heap: list[tuple[float, int, Callback]] = field(default_factory=list)
    _seq: int = 0

    def at(self, time: float, callback: Callback) -> None:
        """Run ``callback`` at ``time`` (not before now)."""
        self._seq += 1
        heapq.heappush(self._heap, (max(time, self.now), self._seq, callback))

    def after(self, delay: float, callback: Callback) -> None:
        self.at(self.now + delay, callback)

    def peek(self) -> float | None:
        return self._heap[0][0] if self._heap else None

    def step(self) -> None:
        time, _seq, callback = heapq.heappop(self._heap)
        self.now = time
        self.events_run += 1
        callback()

    def run(self, until: float) -> None:
        """Run every event scheduled before ``until``; then the clock reads ``until``."""
        while self._heap and self._heap[0][0] < until:
            self.step()
        self.now = max(self.now, until)
