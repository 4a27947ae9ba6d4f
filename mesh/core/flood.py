"""Flood control pieces that are pure arithmetic: token buckets."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class TokenBucket:
    """``rate`` tokens per second up to ``burst``; time comes in as ``now``."""

    rate: float
    burst: float
    tokens: float = -1.0
    last: float = 0.0

    def available(self, now: float) -> float:
        """Tokens that could be taken now."""
        if self.tokens < 0:
            self.tokens, self.last = self.burst, now
        self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
        self.last = now
        return self.tokens

    def take(self, now: float, cost: float = 1.0) -> bool:
        if self.available(now) >= cost:
            self.tokens -= cost
            return True
        return False
