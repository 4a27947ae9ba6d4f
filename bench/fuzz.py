"""Fuzz figures for issue 10, part 1: 10^6 attacker frames through ``Node.handle``.

Run: ``.venv/bin/python -m bench.fuzz`` (``--frames N`` for another budget, ``--jobs N``
worker processes, one per core by default). It drives the harness of ``tests/fuzzing``
(the same one the test suite runs with 10^4 frames) over message links at every MTU from
20 to 4096 and every other link mode (stream links) at a spread of read sizes, then
mutated bundles through the bundle decoder and ``Node.import_frames``, and mutated
encodings through the crypto decoders. Prints frames per second, the exceptions that
escaped (there must be none) and the RSS of each worker at its start, at every tenth of
the run and at the end, after a garbage collection (a victim node holds reference cycles:
dozens of dead ones would otherwise wait for the collector). Every case restores its
victim from a snapshot, so the worker's RSS is the harness's and the allocator's high-water
mark, not node state left over from earlier cases: it must stay flat, and its peak is what
the largest single case (harness and node together) allocated. Figures, not pass/fail.

Reproduce a reported case: ``python -m bench.fuzz --seed S --mtus M --cases N`` (every
link mode at that MTU).
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import resource
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field

import psutil

from tests.fuzzing.decoders import fuzz_decoders
from tests.fuzzing.harness import (
    LINK_MODES,
    MAX_MTU,
    MIN_MTU,
    Fuzzer,
    Report,
    Variant,
    spread_variants,
    variants,
)

SHOW_ESCAPES = 5
READ_SIZES_EVERY = 16  # stream links: the MTU is only the driver's read size, so a spread
_FUZZERS: dict[int, Fuzzer] = {}  # per worker process: its worlds, built once per seed


def _rss() -> tuple[int, int]:
    """(current RSS, peak RSS) of this process, in bytes."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    return psutil.Process().memory_info().rss, peak


def _mib(n: float) -> str:
    return f"{n / 2**20:6.1f}"


@dataclass(frozen=True, slots=True)
class Done:
    report: Report
    pid: int
    rss_before: int
    rss_after: int
    peak: int


def _work(seed: int, variant: Variant, cases: list[int]) -> Done:
    before, _ = _rss()
    fuzzer = _FUZZERS.setdefault(seed, Fuzzer(seed))
    report = fuzzer.run(variant, cases)
    gc.collect()
    after, peak = _rss()
    return Done(report, os.getpid(), before, after, peak)


@dataclass
class Progress:
    total: Report = field(default_factory=Report)
    started: float = field(default_factory=time.perf_counter)
    cold_rss: dict[int, int] = field(default_factory=dict)  # worker -> RSS before its first
    warm_rss: dict[int, int] = field(default_factory=dict)  # ... and after its first variant
    last_rss: dict[int, int] = field(default_factory=dict)
    peak: int = 0
    shown: int = 0
    finished: int = 0  # variants done
    next_row: float = 0.1

    def add(self, done: Done) -> None:
        self.total.merge(done.report)
        self.cold_rss.setdefault(done.pid, done.rss_before)
        self.warm_rss.setdefault(done.pid, done.rss_after)
        self.last_rss[done.pid] = done.rss_after
        self.peak = max(self.peak, done.peak)
        for e in done.report.escapes[: max(0, SHOW_ESCAPES - self.shown)]:
            print(f"\n  ESCAPED: {e}\n")
        self.shown += len(done.report.escapes)

    def row(self, label: str) -> None:
        t = self.total
        rate = t.frames / max(1e-9, time.perf_counter() - self.started)
        rss = sorted(self.last_rss.values()) or [_rss()[0]]
        print(
            f"  {label:>8} {t.frames:>10,} {t.cases:>9,} {rate:>9,.0f} {len(t.escapes):>8}"
            f"  {_mib(rss[0])}..{_mib(rss[-1])} {_mib(self.peak)}"
        )


def _batches(
    todo: list[Variant], frames: int, progress: Progress, pending: dict[Future[Done], int]
) -> Iterator[tuple[Variant, list[int]]]:
    """Each variant once, with as many cases as spread the frames left over the variants
    left (at least 4), from the frames per case measured so far."""
    for i, variant in enumerate(todo):
        t = progress.total
        per_case = t.frames / t.cases if t.cases else 8.0
        left = frames - t.frames - per_case * sum(pending.values())
        n = max(4, min(4000, round(left / (len(todo) - i) / per_case)))
        yield variant, list(range(n))


def fuzz_frames(
    seed: int, mtus: list[int], frames: int, jobs: int, cases: list[int] | None
) -> Progress:
    todo = spread_variants(mtus, READ_SIZES_EVERY) if cases is None else variants(mtus)
    random.Random(seed).shuffle(todo)  # so every tenth of the run samples all MTUs
    progress = Progress()
    print("  progress     frames     cases  frames/s  escaped  worker RSS MiB  peak MiB")
    progress.row("start")
    pending: dict[Future[Done], int] = {}
    batches = _batches(todo, frames, progress, pending)
    if cases is not None:
        batches = iter([(v, cases) for v in todo])
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        for variant, batch in batches:
            while len(pending) >= 2 * jobs:
                _collect(pending, progress, len(todo))
            pending[pool.submit(_work, seed, variant, batch)] = len(batch)
        while pending:
            _collect(pending, progress, len(todo))
    progress.row("end")
    return progress


def _collect(pending: dict[Future[Done], int], progress: Progress, variants: int) -> None:
    done, _ = wait(list(pending), return_when=FIRST_COMPLETED)
    for fut in done:
        del pending[fut]
        progress.add(fut.result())
        progress.finished += 1
        if progress.finished >= progress.next_row * variants:
            progress.row(f"{progress.next_row:.0%}")
            progress.next_row += 0.1


def _mtus(spec: str) -> list[int]:
    if "-" in spec:
        lo, hi = (int(x) for x in spec.split("-"))
        return list(range(lo, hi + 1))
    return [int(x) for x in spec.split(",")]


def _top(counter: Counter[str], n: int) -> str:
    return ", ".join(f"{k} {v:,}" for k, v in counter.most_common(n))


def _bundles(seed: int, n: int) -> None:
    started = time.perf_counter()
    b = Fuzzer(seed).run_bundles(range(n))
    rate = b.cases / (time.perf_counter() - started)
    refused = sum(k for name, k in b.mutations.items() if name.endswith("(refused)"))
    for e in b.escapes[:SHOW_ESCAPES]:
        print(f"\n  ESCAPED: {e}\n")
    line("mutated bundles / refused by the decoder", f"{b.cases:,} / {refused:,}")
    line("bundles/s; exceptions that escaped (must be 0)", f"{rate:,.0f}; {len(b.escapes)}")


def line(label: str, value: str) -> None:
    print(f"  {label:<50} {value}")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.fuzz", description=__doc__)
    ap.add_argument("--frames", type=int, default=1_000_000, help="attacker frames to feed")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--mtus", default=f"{MIN_MTU}-{MAX_MTU}", help="lo-hi or a,b,c")
    ap.add_argument("--cases", help="only these case numbers, a,b,c (to reproduce one)")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="worker processes")
    ap.add_argument("--bundles", type=int, default=20_000, help="mutated bundles")
    args = ap.parse_args(argv)
    mtus = _mtus(args.mtus)
    cases = [int(x) for x in args.cases.split(",")] if args.cases else None
    print(
        f"Fuzzing Node.handle (seed {args.seed}, {args.jobs} workers): {args.frames:,} "
        f"attacker frames; message links at every MTU {mtus[0]}..{mtus[-1]}, every other link "
        f"mode ({', '.join(','.join(m) for m in LINK_MODES[1:])}) at every "
        f"{READ_SIZES_EVERY}th as its read size"
    )
    p = fuzz_frames(args.seed, mtus, args.frames, args.jobs, cases)
    r, elapsed = p.total, time.perf_counter() - p.started
    cold, warm, ends = (sorted(x.values()) for x in (p.cold_rss, p.warm_rss, p.last_rss))
    print("\nResult (figures, not pass/fail)")
    line("attacker frames fed to Node.handle", f"{r.frames:,}")
    line("cases (each from a snapshot of the honest run)", f"{r.cases:,}")
    line("events fed (honest continuations, aftermath too)", f"{r.events:,}")
    line("frames/s", f"{r.frames / elapsed:,.0f} ({elapsed:.0f} s, {args.jobs} workers)")
    line("exceptions that escaped (must be 0)", f"{len(r.escapes)}")
    line("worker RSS before its first variant, MiB", f"{_mib(cold[0])}..{_mib(cold[-1])}")
    line("worker RSS after its first variant, MiB", f"{_mib(warm[0])}..{_mib(warm[-1])}")
    line("worker RSS at end, MiB (min..max)", f"{_mib(ends[0])}..{_mib(ends[-1])}")
    line("peak RSS of any worker, MiB", _mib(p.peak))
    line("slowest single call into the node", f"{r.slowest * 1000:,.0f} ms")
    line("messages delivered from crafted input", f"{r.delivered:,}")
    line("families", _top(r.families, 6))
    line("outcomes", _top(r.outcomes, 4))
    if args.bundles and cases is None:
        _bundles(args.seed, args.bundles)
        _decoders(args.seed, 10 * args.bundles)


def _decoders(seed: int, n: int) -> None:
    started = time.perf_counter()
    tried, refused, escaped = fuzz_decoders(seed, n)
    rate = tried / (time.perf_counter() - started)
    for e in escaped[:SHOW_ESCAPES]:
        print(f"\n  ESCAPED: {e}\n")
    line("crypto decoders: inputs / refused (CryptoError)", f"{tried:,} / {refused:,}")
    line("inputs/s; exceptions that escaped (must be 0)", f"{rate:,.0f}; {len(escaped)}")


if __name__ == "__main__":
    main()
