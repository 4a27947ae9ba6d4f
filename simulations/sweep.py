"""``steppe sim sweep``: a parameter grid times seeds, in parallel processes, one table."""

from __future__ import annotations

import csv
import itertools
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any, TextIO

from simulations.harness import Simulation
from simulations.scenario import ScenarioError, load_with, parse_override_values

COLUMNS = ("delivery_prob", "latency_med", "overhead_ratio", "hopcount_avg", "relayed")


def parse_seeds(spec: str) -> list[int]:
    """``N``, ``N-M`` (inclusive, N <= M) or ``N,M,...``; anything that names no seed is
    an error, never an empty table."""
    try:
        if "-" not in spec.strip().lstrip("-"):
            return [int(x) for x in spec.split(",")]
        lo, hi = (int(x) for x in spec.split("-", 1))
    except ValueError:
        raise ScenarioError(f"--seeds {spec!r}: expected N, N-M or N,M,...") from None
    if lo > hi:
        raise ScenarioError(f"--seeds {spec!r}: a range N-M needs N <= M (did you mean {hi}-{lo}?)")
    return list(range(lo, hi + 1))


def _one(job: tuple[str, dict[str, Any], int]) -> dict[str, Any]:
    name, overrides, seed = job
    summary = Simulation(load_with(name, overrides), seed).run().summary
    return {**overrides, "seed": seed, **{c: summary[c] for c in COLUMNS}}


def sweep(
    name: str,
    sets: list[str],
    seeds: str,
    jobs: int,
    out_csv: str | None,
    out: TextIO = sys.stdout,
    progress: TextIO | None = None,
) -> list[dict[str, Any]]:
    """Runs every combination of the ``--set`` values with every seed; ``progress`` gets
    a line when the runs start and one as each finishes (default: stderr, so the table on
    ``out`` stays clean for a pipe)."""
    if jobs < 1:
        raise ScenarioError(f"--jobs must be at least 1, not {jobs}")
    grid = [parse_override_values(s) for s in sets]
    keys = [k for k, _v in grid]
    combos = [
        dict(zip(keys, vals, strict=True)) for vals in itertools.product(*(v for _k, v in grid))
    ] or [{}]
    work = [(name, combo, seed) for combo in combos for seed in parse_seeds(seeds)]
    for combo in combos:
        load_with(name, combo)  # fail fast, in this process, with a readable error
    rows = _run_all(work, jobs, progress or sys.stderr)
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


def _run_all(
    work: list[tuple[str, dict[str, Any], int]], jobs: int, progress: TextIO
) -> list[dict[str, Any]]:
    """The rows in the order of ``work``, whatever order the runs finish in."""
    total = len(work)
    progress.write(f"sweep: {total} runs on {min(jobs, total)} processes\n")
    progress.flush()
    started = time.perf_counter()
    rows: list[dict[str, Any] | None] = [None] * total

    def done(i: int, row: dict[str, Any]) -> None:
        rows[i] = row
        finished = sum(r is not None for r in rows)
        what = ", ".join(f"{k}={v}" for k, v in work[i][1].items())
        progress.write(
            f"sweep: {finished}/{total} done ({what + ', ' if what else ''}seed {work[i][2]}:"
            f" delivery_prob {row['delivery_prob']}) {time.perf_counter() - started:.0f} s\n"
        )
        progress.flush()

    if jobs > 1:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            futures = {pool.submit(_one, w): i for i, w in enumerate(work)}
            for fut in as_completed(futures):
                done(futures[fut], fut.result())
    else:
        for i, w in enumerate(work):
            done(i, _one(w))
    return [r for r in rows if r is not None]
