"""Mobility models. Positions are piecewise linear; ``positions(t)`` is vectorised (numpy).

Random waypoint follows The ONE simulator's ``RandomWaypoint`` exactly, so results can be
compared with published ONE runs:

- the start position is uniform in ``[0, width] x [0, height]`` (shifted by ``origin``
  when a group moves in its own part of the world, e.g. another city);
- each node first *pauses* (ONE's ``nextPathAvailable`` = now + wait time), then travels
  in a straight line to a destination drawn uniformly in the area, at a speed drawn
  uniformly in ``[min_speed, max_speed]`` for that leg, then pauses for a time drawn
  uniformly in ``[min_wait, max_wait]``, and so on;
- an optional warm-up simulates movement for ``warmup`` seconds before time 0 (no radio,
  no traffic), so nodes do not all start paused at uniform positions.

Also: static nodes (relays), gatherings (people drift toward a few squares, stay, then
disperse), and contact traces read from a file.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


@dataclass
class Legs:
    """Per node, the current leg: from ``(x0, y0)`` at ``t0`` to ``(x1, y1)`` at ``t1``,
    then still until ``t_next`` when a new leg starts."""

    x0: FloatArray
    y0: FloatArray
    x1: FloatArray
    y1: FloatArray
    t0: FloatArray
    t1: FloatArray
    t_next: FloatArray

    def positions(self, t: float) -> tuple[FloatArray, FloatArray]:
        span = np.maximum(self.t1 - self.t0, 1e-9)
        f = np.clip((t - self.t0) / span, 0.0, 1.0)
        return self.x0 + (self.x1 - self.x0) * f, self.y0 + (self.y1 - self.y0) * f


class Mobility:
    """Base class: ``advance(t)`` makes every node's current leg cover time ``t``."""

    legs: Legs
    max_speed: float = 0.0  # an upper bound on any node's speed (m/s)

    def advance(self, t: float) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def positions(self, t: float) -> tuple[FloatArray, FloatArray]:
        self.advance(t)
        return self.legs.positions(t)


class RandomWaypoint(Mobility):
    def __init__(
        self,
        n: int,
        width: float,
        height: float,
        speed: tuple[float, float],
        wait: tuple[float, float],
        rng: random.Random,
        warmup: float = 0.0,
        origin: tuple[float, float] = (0.0, 0.0),
    ) -> None:
        self.n, self.width, self.height = n, width, height
        self.x0, self.y0 = origin
        self.speed, self.wait, self.rng = speed, wait, rng
        self.max_speed = max(speed)
        start = -warmup
        xs = np.array([rng.uniform(self.x0, self.x0 + width) for _ in range(n)])
        ys = np.array([rng.uniform(self.y0, self.y0 + height) for _ in range(n)])
        t = np.full(n, start)
        waits = np.array([start + rng.uniform(*wait) for _ in range(n)])
        self.legs = Legs(xs, ys, xs.copy(), ys.copy(), t, t.copy(), waits)
        self.advance(0.0)

    def _destination(self) -> tuple[float, float, tuple[float, float]]:
        """The next waypoint and the pause range after it (uniform in the area)."""
        x = self.rng.uniform(self.x0, self.x0 + self.width)
        return x, self.rng.uniform(self.y0, self.y0 + self.height), self.wait

    def _new_leg(self, i: int) -> None:
        lg, rng = self.legs, self.rng
        start = lg.t_next[i]
        lg.x0[i], lg.y0[i] = lg.x1[i], lg.y1[i]
        x, y, pause = self._destination()
        lg.x1[i], lg.y1[i] = x, y
        speed = rng.uniform(*self.speed)
        dist = float(np.hypot(x - lg.x0[i], y - lg.y0[i]))
        lg.t0[i] = start
        lg.t1[i] = start + dist / max(speed, 1e-9)
        lg.t_next[i] = lg.t1[i] + rng.uniform(*pause)

    def advance(self, t: float) -> None:
        lg = self.legs
        while True:
            due = np.nonzero(lg.t_next <= t)[0]
            if due.size == 0:
                return
            for i in due:  # ascending index order: deterministic
                self._new_leg(int(i))


class Static(Mobility):
    def __init__(self, xs: list[float], ys: list[float]) -> None:
        x, y = np.array(xs, dtype=float), np.array(ys, dtype=float)
        inf = np.full(len(xs), np.inf)
        self.legs = Legs(x, y, x.copy(), y.copy(), np.zeros(len(xs)), np.zeros(len(xs)), inf)

    def advance(self, t: float) -> None:
        return


class Gatherings(RandomWaypoint):
    """Like random waypoint, but a destination is, with probability ``p_square``, a point
    within ``radius`` of one of the ``squares``; pauses there are ``square_wait``."""

    def __init__(
        self,
        n: int,
        width: float,
        height: float,
        speed: tuple[float, float],
        wait: tuple[float, float],
        rng: random.Random,
        squares: list[tuple[float, float]],
        radius: float,
        p_square: float,
        square_wait: tuple[float, float],
        warmup: float = 0.0,
        origin: tuple[float, float] = (0.0, 0.0),
    ) -> None:
        self.squares, self.radius = squares, radius
        self.p_square, self.square_wait = p_square, square_wait
        super().__init__(n, width, height, speed, wait, rng, warmup, origin)

    def _destination(self) -> tuple[float, float, tuple[float, float]]:
        rng = self.rng
        if self.squares and rng.random() < self.p_square:
            cx, cy = self.squares[rng.randrange(len(self.squares))]
            x = cx + rng.uniform(-self.radius, self.radius)
            y = cy + rng.uniform(-self.radius, self.radius)
            x = min(max(x, self.x0), self.x0 + self.width)
            y = min(max(y, self.y0), self.y0 + self.height)
            return x, y, self.square_wait
        return super()._destination()


@dataclass(frozen=True, slots=True)
class TraceEvent:
    time: float
    a: int
    b: int
    up: bool


class TraceError(ValueError):
    pass


def read_trace(text: str) -> list[TraceEvent]:
    """``time a b up|down`` lines, or The ONE's ``time CONN a b up|down``; ``#`` comments."""
    out: list[TraceEvent] = []
    for no, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) == 5 and parts[1].upper() == "CONN":
            parts = [parts[0], *parts[2:]]
        if len(parts) != 4 or parts[3].lower() not in ("up", "down"):
            raise TraceError(f"line {no}: expected 'time a b up|down', got {raw!r}")
        try:
            t, a, b = float(parts[0]), int(parts[1]), int(parts[2])
        except ValueError:
            raise TraceError(f"line {no}: time must be a number, nodes integers") from None
        if a == b or a < 0 or b < 0 or t < 0:
            raise TraceError(f"line {no}: bad node ids or time")
        out.append(TraceEvent(t, min(a, b), max(a, b), parts[3].lower() == "up"))
    return sorted(out, key=lambda e: e.time)
