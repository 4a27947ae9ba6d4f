"""``steppe sim run``: load, run with a progress bar, write the report, print a summary."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TextIO

from simulations import report
from simulations.harness import Simulation
from simulations.metrics import Metrics
from simulations.overrides import load_with, parse_override


def run_scenario(
    name: str,
    *,
    seed: int | None = None,
    out_dir: str | None = None,
    quiet: bool = False,
    out: TextIO = sys.stdout,
    plots: bool = True,
    sets: list[str] | None = None,
) -> Metrics:
    """``sets``: ``key=value`` overrides, as ``steppe sim run --set groups.0.count=1000``."""
    overrides = dict(parse_override(spec) for spec in sets or [])
    sc = load_with(name, overrides)
    actual_seed = sc.seed if seed is None else seed
    target = Path(out_dir) if out_dir else Path("out") / f"{sc.name}-seed{actual_seed}"
    started = time.perf_counter()
    metrics = Simulation(sc, actual_seed).run() if quiet else _run_with_progress(sc, actual_seed)
    wall = time.perf_counter() - started
    files = report.write(target, sc, actual_seed, metrics, plots=plots, overrides=overrides)
    out.write(report.summary_text(sc, actual_seed, metrics, wall) + "\n")
    out.write(f"  wrote {', '.join(str(f) for f in files)}\n")
    return metrics


def _run_with_progress(sc: object, seed: int) -> Metrics:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from simulations.scenario import Scenario

    assert isinstance(sc, Scenario)
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[simtime]}"),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        transient=False,
    ) as bar:
        task = bar.add_task(sc.name, total=sc.duration, simtime="", rate="")
        start = time.perf_counter()

        def progress(t: float, events: int) -> None:
            elapsed = max(time.perf_counter() - start, 1e-6)
            bar.update(
                task,
                completed=t,
                simtime=f"{t / 3600:6.2f} h simulated",
                rate=f"{events / elapsed:9.0f} events/s",
            )

        return Simulation(sc, seed, progress=progress).run()
