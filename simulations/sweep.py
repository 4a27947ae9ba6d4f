"""``steppe sim sweep``: a parameter grid times seeds, one task per run, one table.

Runs go to Dask (``dask.distributed``): by default a local cluster of ``--jobs`` worker
processes (one thread each; scheduler and workers on 127.0.0.1, no dashboard), or, with
``--scheduler tcp://HOST:PORT``, an existing cluster whose workers have Steppe installed
(the README says how to start one on several machines). ``--jobs 1`` without a scheduler
runs in this process. A run is a pure function of (scenario, overrides, seed), so the rows
are the same whichever executor ran them, and they are printed in grid order whatever
order the runs finish in. A run that fails (an exception, a worker lost three times) is
reported with its reason and the others are kept; the sweep then ends with an error
naming how many failed, after the table and the CSV of the rest are written.
"""

from __future__ import annotations

import csv
import itertools
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TextIO

from simulations.harness import Simulation
from simulations.overrides import load_with, parse_override_values
from simulations.scenario import ScenarioError

COLUMNS = ("delivery_prob", "latency_med", "overhead_ratio", "hopcount_avg", "relayed")
# With photos on in any run of the grid (traffic.files > 0): the columns above are text
# messages only, and these say what the files did ("-" in a run without files).
FILE_COLUMNS = ("files_sent", "files_received", "file_delivery_prob", "file_latency_med")


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
    row = {**overrides, "seed": seed, **{c: summary[c] for c in COLUMNS}}
    files = summary.get("files")
    for c in FILE_COLUMNS:
        key = c.removeprefix("files_").removeprefix("file_")
        row[c] = files[key] if isinstance(files, dict) else "-"
    return row


def sweep(
    name: str,
    sets: list[str],
    seeds: str,
    jobs: int,
    out_csv: str | None,
    out: TextIO = sys.stdout,
    progress: TextIO | None = None,
    scheduler: str = "",
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
    # Fail fast, in this process, with a readable error.
    photos = any(load_with(name, combo).traffic.files > 0 for combo in combos)
    rows, failed = _run_all(work, jobs, scheduler, progress or sys.stderr)
    if not photos:  # text only: the table and the rows of before attachments
        rows = [{k: v for k, v in row.items() if k not in FILE_COLUMNS} for row in rows]
    header = [*keys, "seed", *COLUMNS, *(FILE_COLUMNS if photos else ())]
    out.write("  ".join(f"{h:>14}" for h in header) + "\n")
    for row in rows:
        out.write("  ".join(f"{row[h]!s:>14}" for h in header) + "\n")
    if out_csv:
        with Path(out_csv).open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=header, lineterminator="\n")
            w.writeheader()
            w.writerows(rows)
    if failed:
        raise ScenarioError(f"{failed} of {len(work)} runs failed (see above); the rest are kept")
    return rows


Job = tuple[str, dict[str, Any], int]
Outcome = tuple[int, dict[str, Any] | None, str]  # (index in the grid, row, why it failed)


def _run_all(
    work: list[Job], jobs: int, scheduler: str, progress: TextIO
) -> tuple[list[dict[str, Any]], int]:
    """The rows in the order of ``work``, whatever order the runs finish in, and how many
    runs failed."""
    total = len(work)
    where = scheduler or (f"{min(jobs, total)} local processes" if jobs > 1 else "this process")
    progress.write(f"sweep: {total} runs on {where}\n")
    progress.flush()
    started = time.perf_counter()
    rows: list[dict[str, Any] | None] = [None] * total
    failed = 0
    outcomes = _serial(work) if jobs == 1 and not scheduler else run_on_dask(work, jobs, scheduler)
    for finished, (i, row, why) in enumerate(outcomes, 1):
        what = ", ".join(f"{k}={v}" for k, v in work[i][1].items())
        run = f"{what + ', ' if what else ''}seed {work[i][2]}"
        if row is None:
            failed += 1
            said = f"FAILED: {why}"
        else:
            rows[i] = row
            said = f"delivery_prob {row['delivery_prob']}"
        bar = _bar(finished, total)
        elapsed = time.perf_counter() - started
        progress.write(f"sweep: {bar} {finished}/{total} ({run}: {said}) {elapsed:.0f} s\n")
        progress.flush()
    return [r for r in rows if r is not None], failed


def _bar(done: int, total: int, width: int = 20) -> str:
    filled = round(width * done / total)
    return "[" + "#" * filled + "." * (width - filled) + "]"


def _serial(work: list[Job]) -> Iterator[Outcome]:
    for i, job in enumerate(work):
        try:
            yield i, _one(job), ""
        except Exception as exc:  # noqa: BLE001 - one run's failure is reported, not fatal
            yield i, None, f"{type(exc).__name__}: {exc}"


def run_on_dask(
    work: list[Any], jobs: int, scheduler: str, run: Callable[[Any], dict[str, Any]] | None = None
) -> Iterator[Outcome]:
    """One Dask task per item of ``work`` (``run(item)``, default one sweep run), on a local
    cluster (loopback only) or ``scheduler``; outcomes as they finish."""
    import logging

    from distributed import Client, LocalCluster, as_completed

    if scheduler:
        try:
            client = Client(scheduler, timeout="10s")
        except (OSError, TimeoutError) as exc:
            raise ScenarioError(f"--scheduler {scheduler}: cannot connect ({exc})") from None
        cluster = None
    else:
        cluster = LocalCluster(
            n_workers=jobs,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            # The scheduler's HTTP routes (health, metrics) still listen even without a
            # dashboard, by default on :8787: on a random loopback port instead, so two
            # sweeps (or a sweep and anything else on 8787) can run on one machine.
            scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
            silence_logs=logging.ERROR,
        )
        client = Client(cluster)
    try:
        task = run or _one
        futures = {client.submit(task, job, pure=False): i for i, job in enumerate(work)}
        for fut in as_completed(futures):
            i = futures[fut]
            if fut.status == "error":
                err = fut.exception()
                yield i, None, f"{type(err).__name__}: {err}"
            else:
                yield i, fut.result(), ""
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
