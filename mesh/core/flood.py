"""Flood control pieces that are pure arithmetic: token buckets and load-based difficulty."""

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


def load_difficulty(base: int, fill: float) -> int:
    """Stamp bits required when the store is ``fill`` (0..1) full: +1 bit per 12.5% above
    half full, so a flood makes every further envelope twice as expensive per step."""
    if fill <= 0.5:
        return base
    return base + min(4, int((fill - 0.5) / 0.125) + 1)
