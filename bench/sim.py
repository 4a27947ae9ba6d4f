"""Simulator benchmark: one-random-waypoint at 100, 1,000 and 10,000 nodes.

Run: ``.venv/bin/python -m bench.sim [--nodes 100,1000,10000] [--hours 12]``. Prints wall
time, events per second and peak memory (max RSS of the child process) per size; each size
runs in its own process so peak memory is measured alone. Targets on 2 cores: 1,000 nodes
in at most 60 s, 10,000 nodes in at most 10 minutes, peak memory at most 2 GiB.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from dataclasses import replace


def child(nodes: int, hours: float) -> None:
    from simulations.harness import Simulation
    from simulations.scenario import load

    sc = load("one-random-waypoint")
    sc = replace(sc, duration=hours * 3600, groups=(replace(sc.groups[0], count=nodes),))
    start = time.perf_counter()
    sim = Simulation(sc)
    summary = sim.run().summary
    wall = time.perf_counter() - start
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(
        json.dumps(
            {
                "nodes": nodes,
                "hours": hours,
                "wall": wall,
                "events": sim.engine.events_run,
                "rss": rss,
                "delivery_prob": summary["delivery_prob"],
            }
        )
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", default="100,1000,10000")
    ap.add_argument("--hours", type=float, default=12.0)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(int(args.nodes), args.hours)
        return
    print(f"one-random-waypoint, {args.hours:g} simulated hours, one process per size")
    for n in (int(x) for x in args.nodes.split(",")):
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "bench.sim",
                "--child",
                "--nodes",
                str(n),
                "--hours",
                str(args.hours),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(
            f"  {n:6d} nodes: {r['wall']:8.1f} s wall, {r['events'] / r['wall']:9.0f} "
            f"events/s, peak RSS {r['rss'] / 2**20:7.0f} MiB, "
            f"delivery_prob {r['delivery_prob']:.3f}"
        )


if __name__ == "__main__":
    main()
