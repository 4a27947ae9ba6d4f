"""Cross-validation against The ONE simulator (issue 15): the same worlds in both, side by
side, with delivery, latency, wall time and peak memory printed as Steppe against ONE.

Run: ``ONE_HOME=/path/to/the-one .venv/bin/python -m bench.one_compare [--worlds S1,S2,S3]
[--routers epidemic,spray,prophet] [--seeds 1-5] [--mode both|independent|replay]
[--cpu 0] [--keep DIR]``. ``ONE_HOME`` is a built ONE (``git clone
https://github.com/akeranen/the-one && cd the-one && bash compile.sh``; OpenJDK 17).

The worlds, in ONE's terms (the issue's): random waypoint, speed U[0.5, 1.5) m/s, pause
U[0, 120) s, 3,600 s movement warm-up, 50 m range, 250,000 B/s, a message every U{25..34}
s between uniform random pairs (ONE's MessageEventGenerator), TTL 300 minutes:

- S1: 50 nodes on 1 x 1 km for 12 h, ample buffers (50 MB);
- S2: 200 nodes on 2 x 2 km for 12 h, buffers of 5 messages;
- S3: 1,000 nodes on 4,472 x 4,472 m for 4 h, buffers of 5 messages;

each with epidemic, binary spray-and-wait L = 8 and PRoPHET (ONE's defaults, 30 s time
unit). Steppe runs in its ONE-compatible mode: ONE's interface (``transfers =
"one_per_node"``), ``offer_order = "random"``, ``delivered_copies = "keep"``, ``eviction
= "oldest_received"``, ``source_quota = false``, ``direct_first = true``, and for spray
``first_contact = "as_destination"`` (ONE's routers know every destination; Steppe's
guesses a first contact's from a 1-byte hint and by default hands such a message fewer
copies, keeping the last two for hint matches).

Message sizes: ONE's messages are 1,000 bytes; Steppe's are 200-byte texts, which seal
into its smallest bucket as a session message and as a first contact alike (512 bytes, a
555-byte frame; a 300-byte text takes the 2 KiB bucket as a first contact, and "a buffer
of 5 messages" would then hold one). At 250,000 B/s either takes a few milliseconds,
against contacts of tens of seconds, so transfer time decides nothing here; a buffer of 5
messages is 5,000 bytes in ONE and 5 * frame_bound(200) bytes in Steppe. What stays
different by design: Steppe also passes delivery receipts at contacts (air time, not
buffer room; ONE's messages here have no responses), a Noise handshake and a
reconciliation at the start of every contact, and an expiry rounded up to the hour
(README, "The blackout simulator").

Two comparisons, printed per world and router:

- ``independent``: each simulator draws its own mobility and traffic from ``--seeds``;
  Steppe's delivery probability and average latency are compared with ONE's mean over
  the same seeds. Targets: delivery within 0.03 of ONE's mean, latency within 15 %.
- ``replay``: Steppe replays ONE's own run - its ``ConnectivityONEReport`` as the contact
  trace and its ``CreatedMessagesReport`` as the traffic (the first seed only) - and the
  delivered sets are compared message by message: both, ONE only, Steppe only.

Speed: each simulator runs in its own process pinned to ``--cpu`` (one core, one at a
time), wall time and peak RSS (``wait4``) measured; the ratio is Steppe over ONE for the
same world, router and seed, measured in this invocation (the baseline). Target: at most
1.0 on S1 and S3 epidemic.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

from mesh.core.messages import frame_bound


@dataclass(frozen=True)
class World:
    nodes: int
    width: int
    height: int
    hours: float
    buffer_msgs: int  # 0: ample


WORLDS = {
    "S1": World(50, 1000, 1000, 12, 0),
    "S2": World(200, 2000, 2000, 12, 5),
    "S3": World(1000, 4472, 4472, 4, 5),
}
ROUTERS = {
    "epidemic": ("EpidemicRouter", ""),
    "spray": (
        "SprayAndWaitRouter",
        "SprayAndWaitRouter.nrofCopies = 8\nSprayAndWaitRouter.binaryMode = true\n",
    ),
    "prophet": ("ProphetRouter", "ProphetRouter.secondsInTimeUnit = 30\n"),
}
ONE_SIZE = 1000  # bytes, ONE's messages
STEPPE_SIZE = 200  # bytes of text: Steppe's smallest bucket, as a first contact too
FRAME = frame_bound(STEPPE_SIZE)  # the most such a message takes stored (576 bytes)
AMPLE = 50_000_000
TTL_MIN = 300
RANGE, BITRATE, WARMUP = 50, 250_000, 3600


@dataclass
class Run:
    delivery_prob: float
    latency_avg: float | None
    wall: float
    rss: int  # bytes
    created: int
    delivered: frozenset[tuple[float, int, int]] = frozenset()  # (created, src, dst)


def measured(cmd: list[str], cpu: int, cwd: str | None = None) -> tuple[float, int, str]:
    """Run ``cmd`` pinned to ``cpu``: wall seconds, peak RSS bytes, stdout."""
    pinned = ["taskset", "-c", str(cpu), *cmd] if cpu >= 0 else cmd
    start = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(pinned, stdout=out, stderr=err, cwd=cwd)
        _pid, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        if proc.returncode:
            tail = err.read().decode(errors="replace")[-2000:]
            raise RuntimeError(f"{cmd[0]} exited {proc.returncode}: {tail}")
        return wall, usage.ru_maxrss * 1024, out.read().decode()


# ---- The ONE -------------------------------------------------------------------------
def one_settings(name: str, w: World, router: str, seed: int, reports: Path) -> str:
    cls, extra = ROUTERS[router]
    buffer = w.buffer_msgs * ONE_SIZE if w.buffer_msgs else AMPLE
    return f"""Scenario.name = {name}
Scenario.simulateConnections = true
Scenario.updateInterval = 1.0
Scenario.endTime = {int(w.hours * 3600)}
Scenario.nrofHostGroups = 1
iface.type = SimpleBroadcastInterface
iface.transmitSpeed = {BITRATE}
iface.transmitRange = {RANGE}
Group.movementModel = RandomWaypoint
Group.router = {cls}
{extra}Group.bufferSize = {buffer}
Group.waitTime = 0, 120
Group.speed = 0.5, 1.5
Group.msgTtl = {TTL_MIN}
Group.nrofHosts = {w.nodes}
Group.nrofInterfaces = 1
Group.interface1 = iface
Group1.groupID = p
Events.nrof = 1
Events1.class = MessageEventGenerator
Events1.interval = 25,35
Events1.size = {ONE_SIZE},{ONE_SIZE}
Events1.hosts = 0,{w.nodes}
Events1.prefix = M{seed}x
MovementModel.rngSeed = {seed}
MovementModel.worldSize = {w.width}, {w.height}
MovementModel.warmup = {WARMUP}
Report.nrofReports = 4
Report.warmup = 0
Report.reportDir = {reports}/
Report.report1 = MessageStatsReport
Report.report2 = CreatedMessagesReport
Report.report3 = ConnectivityONEReport
Report.report4 = DeliveredMessagesReport
"""


def run_one(home: Path, name: str, w: World, router: str, seed: int, work: Path, cpu: int) -> Run:
    reports = work / name
    reports.mkdir(parents=True, exist_ok=True)
    settings = work / f"{name}.txt"
    settings.write_text(one_settings(name, w, router, seed, reports))
    cp = "target:lib/ECLA.jar:lib/DTNConsoleConnection.jar"
    cmd = ["java", "-Xmx4G", "-cp", cp, "core.DTNSim", "-b", "1", str(settings)]
    wall, rss, _ = measured(cmd, cpu, cwd=str(home))
    stats = {}
    for line in (reports / f"{name}_MessageStatsReport.txt").read_text().splitlines():
        key, _, value = line.partition(":")
        stats[key.strip()] = value.strip()
    latency = float(stats["latency_avg"])
    created = {}
    for line in (reports / f"{name}_CreatedMessagesReport.txt").read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        t, mid, _size, src, dst = line.split()[:5]
        created[mid] = (float(t), int(src.lstrip("p")), int(dst.lstrip("p")))
    delivered = set()
    for line in (reports / f"{name}_DeliveredMessagesReport.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            delivered.add(created[line.split()[1]])
    return Run(
        float(stats["delivery_prob"]),
        None if latency != latency else latency,  # NaN: nothing delivered
        wall,
        rss,
        int(stats["created"]),
        frozenset(delivered),
    )


# ---- Steppe --------------------------------------------------------------------------
def steppe_toml(w: World, router: str, seed: int, replay: Path | None, name: str) -> str:
    buffer = w.buffer_msgs * FRAME if w.buffer_msgs else AMPLE
    movement = 'movement = "random_waypoint"\nspeed = [0.5, 1.5]\nwait = [0, 120]\n'
    if replay is not None:  # the trace decides every contact; positions play no part
        trace = f'trace = "{replay}/{name}_ConnectivityONEReport.txt"\n'
        traffic = (
            f'file = "{replay}/{name}_CreatedMessagesReport.txt"\n'
            f"size_scale = {STEPPE_SIZE / ONE_SIZE}\n"
        )
    else:
        trace = ""
        traffic = f"interval = [25, 35]\nsize = [{STEPPE_SIZE}, {STEPPE_SIZE}]\n"
    return f"""[scenario]
name = "{name}"
duration = {int(w.hours * 3600)}
seed = {seed}
warmup = {WARMUP}
update_interval = 1.0
stamp_bits = 6
{trace}
[world]
width = {w.width}
height = {w.height}

[[radios]]
name = "one"
range = {RANGE}
bitrate = {BITRATE}
transfers = "one_per_node"

[[groups]]
name = "p"
count = {w.nodes}
{movement}radio = "one"
buffer = {buffer}
strategy = "{router}"
copies = 8
offer_order = "random"
delivered_copies = "keep"
eviction = "oldest_received"
source_quota = false
direct_first = true
first_contact = "as_destination"

[traffic]
{traffic}ttl = {TTL_MIN * 60}
"""


def steppe_child(path: str, seed: int) -> None:
    """In the pinned child: one run, its figures as JSON on stdout."""
    from simulations.harness import Simulation
    from simulations.scenario import parse

    sc = parse(Path(path).read_text(), path)
    m = Simulation(sc, seed).run()
    delivered = [[x.created, x.src, x.dst] for x in m.messages if x.delivered_at is not None]
    s = m.summary
    out = {"p": s["delivery_prob"], "lat": s["latency_avg"], "n": s["created"], "got": delivered}
    print(json.dumps(out))


def run_steppe(toml: str, seed: int, work: Path, name: str, cpu: int) -> Run:
    path = work / f"{name}.toml"
    path.write_text(toml)
    cmd = [sys.executable, "-m", "bench.one_compare", "--child", str(path), str(seed)]
    wall, rss, out = measured(cmd, cpu, cwd=str(Path(__file__).resolve().parent.parent))
    data = json.loads(out)
    got = frozenset((float(c), int(a), int(b)) for c, a, b in data["got"])
    return Run(float(data["p"]), data["lat"], wall, rss, int(data["n"]), got)


# ---- the comparison ------------------------------------------------------------------
def seeds_of(spec: str) -> list[int]:
    if "-" in spec:
        lo, hi = spec.split("-")
        return list(range(int(lo), int(hi) + 1))
    return [int(x) for x in spec.split(",")]


def compare(
    home: Path, wname: str, router: str, seeds: list[int], args: Any, work: Path
) -> dict[str, Any]:
    w = WORLDS[wname]
    if args.hours:
        w = World(w.nodes, w.width, w.height, args.hours, w.buffer_msgs)
    one: list[Run] = []
    steppe: list[Run] = []
    replay: tuple[Run, Run] | None = None
    cache = Cache(work / "runs.jsonl" if args.keep else None)
    for seed in seeds:
        name, h = f"{wname}_{router}_{seed}", f"{w.hours}h"
        o = cache.get(
            f"one {name} {h}", partial(run_one, home, name, w, router, seed, work, args.cpu)
        )
        one.append(o)
        if args.mode in ("both", "independent"):
            toml = steppe_toml(w, router, seed, None, name)
            run = partial(run_steppe, toml, seed, work, name, args.cpu)
            steppe.append(cache.get(f"steppe {name} {h}", run))
        if args.mode in ("both", "replay") and replay is None:
            toml = steppe_toml(w, router, seed, work / name, name)
            run = partial(run_steppe, toml, seed, work, f"{name}_replay", args.cpu)
            replay = (o, cache.get(f"replay {name} {h}", run))
    return {"world": wname, "router": router, "one": one, "steppe": steppe, "replay": replay}


class Cache:
    """Finished runs, appended to a JSON-lines file as each ends (``--keep``): a rerun
    with the same directory takes them from there, so an interrupted comparison resumes
    and a long one can be printed in parts."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.runs: dict[str, Run] = {}
        if path is not None and path.exists():
            for line in path.read_text().splitlines():
                d = json.loads(line)
                got = frozenset((float(c), int(a), int(b)) for c, a, b in d.pop("delivered"))
                key = d.pop("key")
                self.runs[key] = Run(**d, delivered=got)

    def get(self, key: str, run: Callable[[], Run]) -> Run:
        if key not in self.runs:
            r = self.runs[key] = run()
            print(f"  {key}: p={r.delivery_prob:.4f} latency={r.latency_avg} {r.wall:.1f} s",
                  file=sys.stderr, flush=True)  # fmt: skip
            if self.path is not None:
                d = {**asdict(r), "key": key, "delivered": sorted(r.delivered)}
                with self.path.open("a") as f:
                    f.write(json.dumps(d) + "\n")
        return self.runs[key]


def mean(xs: list[float | None]) -> float | None:
    vals = [x for x in xs if x is not None]
    return statistics.fmean(vals) if vals else None


def report(rows: list[dict[str, Any]], seeds: list[int]) -> int:
    """Print the tables; the number of comparisons that missed a target."""
    missed = 0
    print(f"Steppe (ONE-compatible mode) against The ONE, seeds {seeds[0]}-{seeds[-1]}")
    print("world router    ONE p   Steppe p  diff    ONE lat  Steppe lat  ratio  "
          "wall ONE  Steppe  ratio   RSS ONE  Steppe")  # fmt: skip
    for r in rows:
        if not r["steppe"]:
            continue
        op, sp = (
            mean([x.delivery_prob for x in r["one"]]),
            mean([x.delivery_prob for x in r["steppe"]]),
        )
        ol, sl = mean([x.latency_avg for x in r["one"]]), mean([x.latency_avg for x in r["steppe"]])
        ow, sw = mean([x.wall for x in r["one"]]), mean([x.wall for x in r["steppe"]])
        orss, srss = max(x.rss for x in r["one"]), max(x.rss for x in r["steppe"])
        assert op is not None
        assert sp is not None
        assert ow is not None
        assert sw is not None
        lat_ratio = sl / ol if ol and sl is not None else None
        ok_p = abs(sp - op) <= 0.03
        ok_l = lat_ratio is not None and abs(lat_ratio - 1) <= 0.15
        missed += (not ok_p) + (not ok_l)
        mark_p, mark_l = ("" if ok_p else "!"), ("" if ok_l else "!")
        lr = f"{lat_ratio:.2f}" if lat_ratio else "-"
        print(
            f"{r['world']:<5} {r['router']:<9} {op:.4f}  {sp:.4f}  {sp - op:+.4f}{mark_p}"
            f"  {ol or 0:>7.0f}  {sl or 0:>10.0f}  {lr:>5}{mark_l}"
            f"  {ow:>7.1f}s {sw:>6.1f}s {sw / ow:>5.2f}x"
            f"  {orss / 2**20:>6.0f}M {srss / 2**20:>6.0f}M"
        )
    print("(! : outside the target: delivery within 0.03 of ONE's mean, latency within 15 %;"
          " wall and RSS pinned to one core, ratio = Steppe / ONE)")  # fmt: skip
    print("replay of ONE's own contacts and messages (first seed): delivered by")
    print("world router    created  both  ONE only  Steppe only  ONE p   Steppe p")
    for r in rows:
        if r["replay"] is None:
            continue
        o, s = r["replay"]
        both = len(o.delivered & s.delivered)
        only_one, only_steppe = len(o.delivered - s.delivered), len(s.delivered - o.delivered)
        print(
            f"{r['world']:<5} {r['router']:<9} {o.created:>7}  {both:>4}  {only_one:>8}"
            f"  {only_steppe:>11}  {o.delivery_prob:.4f}  {s.delivery_prob:.4f}"
        )
    return missed


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--worlds", default="S1,S2,S3")
    ap.add_argument("--routers", default="epidemic,spray,prophet")
    ap.add_argument("--seeds", default="1-5")
    ap.add_argument("--mode", choices=("both", "independent", "replay"), default="both")
    ap.add_argument("--cpu", type=int, default=0, help="the core both run on (-1: unpinned)")
    ap.add_argument("--hours", type=float, default=0, help="shorter runs (a quick look)")
    ap.add_argument("--keep", default="", help="keep settings, reports and scenarios here")
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        steppe_child(args.child[0], int(args.child[1]))
        return 0
    home = os.environ.get("ONE_HOME", "")
    if not home or not (Path(home) / "target" / "core" / "DTNSim.class").exists():
        print("one_compare: set ONE_HOME to a built ONE (its compile.sh makes target/)",
              file=sys.stderr)  # fmt: skip
        return 2
    seeds = seeds_of(args.seeds)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.keep or tmp)
        work.mkdir(parents=True, exist_ok=True)
        for wname in args.worlds.split(","):
            for router in args.routers.split(","):
                print(f"{wname} {router}:", file=sys.stderr, flush=True)
                rows.append(compare(Path(home), wname, router, seeds, args, work))
        missed = report(rows, seeds)
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
