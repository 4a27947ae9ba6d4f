"""Simulator benchmark: one-random-waypoint at 100, 1,000 and 10,000 nodes, 12 hours.

Run: ``.venv/bin/python -m bench.sim [--nodes 100,1000,10000] [--hours 12] [--world both]``.
Prints wall time, events per second and peak memory (max RSS of the child process) per
size; each run is its own process, so peak memory is measured alone. Targets on 2 cores:
1,000 nodes in at most 60 s, 10,000 nodes in at most 10 minutes, peak memory at most 2 GiB.

Two ways to grow the scenario, both printed:

- ``scaled`` (the scenario as shipped, ``world.nodes = 100``): the world grows with N so
  that the density stays that of 100 nodes in The ONE's world; the work per node stays
  about the same and the total grows with N.
- ``fixed`` (``--set world.nodes=N``): The ONE's world (4,500 x 3,400 m) with N nodes, so
  density grows with N. At 1,000 nodes every message reaches most nodes (epidemic): about
  30 envelope hand-overs per second of simulated time, each real link crypto, decoding,
  stamp and store work; contacts (each a Noise handshake) grow with N squared.

The baseline of each figure is the 100-node run measured in the same invocation. A second
baseline, also measured in the same invocation, is the node core's own cost of one
hand-over in bulk (two nodes back to back, one big contact, no simulator): every run is
also printed as a multiple of (hand-overs x that floor), the least any driver of the real
core could take for it.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import time

TARGET_WALL = {1000: 60.0, 10000: 600.0}  # seconds, from the simulator issue
TARGET_RSS = 2 * 2**30


def child(nodes: int, hours: float, world: str) -> None:
    from simulations.harness import Simulation
    from simulations.overrides import load_with

    overrides: dict[str, object] = {"groups.0.count": nodes, "scenario.duration": hours * 3600}
    if world == "fixed":
        overrides["world.nodes"] = nodes
    sc = load_with("one-random-waypoint", overrides)
    start = time.perf_counter()
    sim = Simulation(sc)
    summary = sim.run().summary
    wall = time.perf_counter() - start
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(
        json.dumps(
            {
                "wall": wall,
                "events": sim.engine.events_run,
                "rss": rss,
                "delivery_prob": summary["delivery_prob"],
                "relayed": summary["relayed"],
                "contacts": summary["contacts"],
            }
        )
    )


def run(nodes: int, hours: float, world: str) -> dict[str, float]:
    cmd = [sys.executable, "-m", "bench.sim", "--child", "--nodes", str(nodes)]
    out = subprocess.run(
        [*cmd, "--hours", str(hours), "--world", world],
        capture_output=True,
        text=True,
        check=True,
    )
    r: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return r


def handover_floor(n: int = 2000) -> float:
    """Seconds of core work per envelope handed over in one long contact between two
    back-to-back nodes: trade, link encryption both ways, strict decoding, stamp, store."""
    from bench.node import _envelopes, _node, _pump

    rnd = random.Random(5)
    a, b = _node(rnd, _envelopes(n, rnd)), _node(rnd, [])
    start = time.perf_counter()
    _pump(a, b)
    elapsed = time.perf_counter() - start
    assert b.store.count() == n
    return elapsed / n


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", default="100,1000,10000")
    ap.add_argument("--hours", type=float, default=12.0)
    ap.add_argument("--world", choices=("fixed", "scaled", "both"), default="both")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(int(args.nodes), args.hours, args.world)
        return
    sizes = [int(x) for x in args.nodes.split(",")]
    worlds = ["scaled", "fixed"] if args.world == "both" else [args.world]
    print(f"one-random-waypoint, {args.hours:g} simulated hours, one process per run")
    floor = min(handover_floor() for _ in range(3))
    print(f"floor: the node core alone, {floor * 1e6:.0f} us per hand-over in bulk")
    for world in worlds:
        print(f"world {world}:")
        base: dict[str, float] | None = None
        for n in sizes:
            if world == "fixed" and n > 1000 and args.world == "both":
                print(f"  {n:6d} nodes: skipped (fixed world: run with --world fixed)")
                continue
            r = run(n, args.hours, world)
            base = base or r
            print(
                f"  {n:6d} nodes: {r['wall']:8.1f} s wall ({r['wall'] / base['wall']:6.1f}x), "
                f"{r['events'] / r['wall']:7.0f} events/s, peak RSS {r['rss'] / 2**20:6.0f} "
                f"MiB, {r['contacts']:7.0f} contacts, {r['relayed']:8.0f} hand-overs, "
                f"delivery_prob {r['delivery_prob']:.3f}; "
                f"{r['wall'] / (r['relayed'] * floor):.1f}x the floor of "
                f"{r['relayed'] * floor:.0f} s"
            )
            if n in TARGET_WALL:
                ok = r["wall"] <= TARGET_WALL[n] and r["rss"] <= TARGET_RSS
                print(
                    f"  {'':12} target {TARGET_WALL[n]:.0f} s and {TARGET_RSS / 2**30:.0f} GiB: "
                    f"{'met' if ok else 'NOT MET'}"
                )


if __name__ == "__main__":
    main()
