"""``steppe sim sweep``: a parameter grid times seeds, in parallel processes, one table."""

from __future__ import annotations

import csv
import itertools
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, TextIO

from simulations.harness import Simulation
from simulations.scenario import ScenarioError, load_with, parse_override_values

COLUMNS = ("delivery_prob", "latency_med", "overhead_ratio", "hopcount_avg", "relayed")


def parse_seeds(spec: str) -> list[int]:
    try:
        if "-" in spec:
            lo, hi = (int(x) for x in spec.split("-", 1))
            return list(range(lo, hi + 1))
        return [int(x) for x in spec.split(",")]
    except ValueError:
        raise ScenarioError(f"--seeds {spec!r}: expected N, N-M or N,M,...") from None


def _one(job: tuple[str, dict[str, Any], int]) -> dict[str, Any]:
    name, overrides, seed = job
    summary = Simulation(load_with(name, overrides), seed).run().summary
    return {**overrides, "seed": seed, **{c: summary[c] for c in COLUMNS}}


def sweep(
    name: str, sets: list[str], seeds: str, jobs: int, out_csv: str | None, out: TextIO = sys.stdout
) -> list[dict[str, Any]]:
    grid = [parse_override_values(s) for s in sets]
    keys = [k for k, _v in grid]
    combos = [
        dict(zip(keys, vals, strict=True)) for vals in itertools.product(*(v for _k, v in grid))
    ] or [{}]
    work = [(name, combo, seed) for combo in combos for seed in parse_seeds(seeds)]
    for combo in combos:
        load_with(name, combo)  # fail fast, in this process, with a readable error
    if jobs > 1:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            rows = list(pool.map(_one, work))
    else:
        rows = [_one(w) for w in work]
    header = [*keys, "seed", *COLUMNS]
    out.write("  ".join(f"{h:>14}" for h in header) + "\n")
    for row in rows:
        out.write("  ".join(f"{row[h]!s:>14}" for h in header) + "\n")
    if out_csv:
        with Path(out_csv).open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=header, lineterminator="\n")
            w.writeheader()
            w.writerows(rows)
    return rows
