"""The headline: ``almaty-jan-2022`` at full size, the share of messages within a city
delivered within 6 hours, at 2 %, 5 % and 10 % adoption (issue 15, part 4).

Run: ``.venv/bin/python -m bench.headline [--adoption 0.02,0.05,0.1] [--seed 1]
[--jobs 2] [--scheduler tcp://HOST:PORT] [--plot docs/almaty-adoption.png]``. Each
adoption level is one run (one Dask task, :func:`simulations.sweep.run_on_dask`) with both
cities' residents at that share of their population (Almaty's 4,000, Astana's 1,000);
relays and gateways stay as the scenario has them. "Within a city": sender and recipient
in the same region; "within 6 hours": delivered at most 21,600 s after it was created.
The goal the issue sets: at least 95 % at 5 % adoption. The baseline of every figure is
the 5 % run of the same invocation.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

from simulations.harness import Simulation
from simulations.overrides import load_with
from simulations.sweep import run_on_dask

SCENARIO = "almaty-jan-2022"
SIX_HOURS = 6 * 3600
RESIDENTS = ("groups.0.adoption", "groups.3.adoption")  # Almaty's and Astana's residents


def one(job: tuple[float, int]) -> dict[str, Any]:
    """One full-size run at ``adoption``: within-city delivery within 6 h, and more."""
    adoption, seed = job
    sc = load_with(SCENARIO, dict.fromkeys(RESIDENTS, adoption))
    started = time.perf_counter()
    m = Simulation(sc, seed).run()
    wall = time.perf_counter() - started
    region = m.region_of
    within = [mm for mm in m.messages if region[mm.src] == region[mm.dst]]
    fast = [
        mm
        for mm in within
        if mm.delivered_at is not None and mm.delivered_at - mm.created <= SIX_HOURS
    ]
    users = sum(1 for r in m.region_of if r)  # every node is in a region here
    return {
        "adoption": adoption,
        "nodes": users,
        "within_city": len(within),
        "within_6h": len(fast),
        "share_6h": round(len(fast) / len(within), 4) if within else 0.0,
        "delivery_prob": m.summary["delivery_prob"],
        "wall_s": round(wall, 1),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--adoption", default="0.02,0.05,0.1")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--scheduler", default="")
    ap.add_argument("--plot", default="", help="write the figure here (PNG)")
    ap.add_argument(
        "--rows",
        default="",
        help="JSON-lines file: each finished run is appended at once, and levels already "
        "in it (same seed) are not run again, so an interrupted run resumes",
    )
    args = ap.parse_args(argv)
    levels = [float(x) for x in args.adoption.split(",")]
    rows = _saved(args.rows, args.seed)
    work = [(a, args.seed) for a in levels if a not in rows]
    for i, row, why in run_on_dask(work, args.jobs, args.scheduler, one):
        if row is None:
            print(f"adoption {work[i][0]}: FAILED {why}", file=sys.stderr)
            return 1
        rows[work[i][0]] = row
        _save(args.rows, {**row, "seed": args.seed})
        print(f"done: {json.dumps(row)}", file=sys.stderr)
    base = rows.get(0.05)
    print(f"{SCENARIO} at full size, seed {args.seed}: within-city messages delivered in 6 h")
    print("  adoption  nodes  within-city  in 6 h   share   vs 5 %   delivery_prob  wall")
    for a in levels:
        r = rows[a]
        ratio = f"{r['share_6h'] / base['share_6h']:.3f}x" if base and base["share_6h"] else "-"
        print(
            f"  {a:>7.0%}  {r['nodes']:>5}  {r['within_city']:>11}  {r['within_6h']:>6}"
            f"  {r['share_6h']:>6.1%}  {ratio:>7}  {r['delivery_prob']:>13}  {r['wall_s']} s"
        )
    if args.plot:
        plot(levels, rows, args.plot, args.seed)
    return 0


def _saved(path: str, seed: int) -> dict[float, dict[str, Any]]:
    """The rows an earlier invocation appended to ``path`` for ``seed``."""
    if not path or not os.path.exists(path):
        return {}
    rows: dict[float, dict[str, Any]] = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                row = json.loads(line)
                if row.get("seed") == seed:
                    rows[float(row["adoption"])] = row
    return rows


def _save(path: str, row: dict[str, Any]) -> None:
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")


def plot(levels: list[float], rows: dict[float, dict[str, Any]], path: str, seed: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.6), dpi=120)
    xs = [a * 100 for a in levels]
    ax.plot(xs, [rows[a]["share_6h"] * 100 for a in levels], marker="o", label="within 6 h")
    ax.plot(xs, [rows[a]["delivery_prob"] * 100 for a in levels], marker="s", ls="--",
            label="all messages, ever (delivery_prob)")  # fmt: skip
    ax.axhline(95, color="grey", lw=0.8, ls=":")
    ax.set_xlabel("adoption (% of residents running Steppe)")
    ax.set_ylabel("delivered (%)")
    ax.set_title(f"{SCENARIO}: within-city messages (seed {seed})")
    ax.set_ylim(0, 100)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path)


if __name__ == "__main__":
    raise SystemExit(main())
