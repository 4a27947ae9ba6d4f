"""Running fuzz cases and collecting what came out.

A *variant* is one set of LinkUp parameters (the MTU, and the fields of a link mode from
:data:`LINK_MODES`) with the victim's routing strategy. For a variant, :meth:`Fuzzer.run`
records the honest run once to learn its stages, plans every case (stage, family,
position) from the case's own seeded generator, runs the honest script again taking
snapshots at exactly the planned positions, then runs each case from its snapshot.

A case is reproduced by its seed, variant and number alone:
``Fuzzer(seed).run(variant, [case])`` (or ``python -m bench.fuzz --seed S --mtus M
--cases N``).
"""

from __future__ import annotations

import random
import traceback
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mesh.core import bundle as B
from tests.fuzzing import craft
from tests.fuzzing.cases import Ctx, Statics, make_ctx, plan_case, run_case
from tests.fuzzing.honest import Trace, honest_run
from tests.fuzzing.mutate import mutate_encoded, near_value, pack_or, unpack
from tests.fuzzing.probe import Escaped, Probe
from tests.fuzzing.world import DIFFICULTY, STRATEGIES, T0, World, build_world, restore, snapshot

# Extra LinkUp fields of each link mode the fuzz covers; a new mode is one more entry.
LINK_MODES: tuple[Mapping[str, Any], ...] = ({}, {"stream": True})
MIN_MTU, MAX_MTU = 20, 4096


@dataclass(frozen=True, slots=True)
class Variant:
    params: Mapping[str, Any]  # LinkUp fields besides link and initiator
    strategy: str

    @property
    def key(self) -> str:
        fields = ",".join(f"{k}={v}" for k, v in sorted(self.params.items()))
        return f"{fields},strategy={self.strategy}"


def variants(mtus: Iterable[int], modes: Sequence[Mapping[str, Any]] = LINK_MODES) -> list[Variant]:
    """Every (mode, MTU) pair; the victim's strategy rotates with the MTU."""
    return [
        Variant({"mtu": mtu, **mode}, STRATEGIES[mtu % len(STRATEGIES)])
        for mode in modes
        for mtu in mtus
    ]


def spread_variants(mtus: Sequence[int], every: int) -> list[Variant]:
    """Message links (the first mode) at every MTU; every other mode, where the MTU is only
    the size of the driver's reads, at every ``every``-th of them."""
    out = variants(mtus, LINK_MODES[:1])
    for mode in LINK_MODES[1:]:
        out += variants(mtus[::every], [mode])
    return out


def sample_mtus(r: random.Random, spread: int = 12) -> list[int]:
    """All of 20..64 (fragment headers dominate there) plus a seeded spread up to 4096."""
    fixed = [65, 100, 128, 185, 244, 251, 512, 1024, 1400, 1500, 2048, MAX_MTU]
    return sorted({*range(MIN_MTU, 65), *fixed, *r.sample(range(65, MAX_MTU), spread)})


def sample_variants(r: random.Random, per_mode: int = 10) -> list[Variant]:
    """The test suite's share: message links (the first mode) at every MTU of
    :func:`sample_mtus`; every other mode, where the MTU is only the size of the driver's
    reads, at ``per_mode`` of them."""
    mtus = sample_mtus(r)
    out = variants(mtus, LINK_MODES[:1])
    for mode in LINK_MODES[1:]:
        out += variants(sorted(r.sample(mtus, per_mode)), [mode])
    return out


@dataclass(frozen=True, slots=True)
class Escape:
    seed: int
    variant: str
    case: int
    stage: str
    family: str
    error: str
    where: str

    def __str__(self) -> str:
        return (
            f"seed={self.seed} {self.variant} case={self.case} stage={self.stage} "
            f"family={self.family}: {self.error}\n{self.where}"
        )


@dataclass
class Report:
    cases: int = 0
    frames: int = 0  # attacker frames fed to the victim
    events: int = 0  # every event fed (honest continuations and aftermath too)
    delivered: int = 0  # messages the victim delivered from crafted input
    slowest: float = 0.0  # seconds of the slowest single call into the victim
    escapes: list[Escape] = field(default_factory=list)
    families: Counter[str] = field(default_factory=Counter)
    stages: Counter[str] = field(default_factory=Counter)
    mutations: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    stats: Counter[str] = field(default_factory=Counter)  # the victim's counters, summed

    def merge(self, other: Report) -> None:
        self.cases += other.cases
        self.frames += other.frames
        self.events += other.events
        self.delivered += other.delivered
        self.slowest = max(self.slowest, other.slowest)
        self.escapes += other.escapes
        for mine, theirs in (
            (self.families, other.families),
            (self.stages, other.stages),
            (self.mutations, other.mutations),
            (self.outcomes, other.outcomes),
            (self.stats, other.stats),
        ):
            mine.update(theirs)

    def add_probe(self, probe: Probe) -> None:
        self.frames += probe.frames
        self.events += probe.events
        self.delivered += probe.delivered
        self.slowest = max(self.slowest, probe.slowest)
        self.stats.update(probe.stats_delta())
        self.outcomes["closed: " + probe.closed.split(":")[0] if probe.closed else "open"] += 1


def _where(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)[-12:]
    return "".join(traceback.format_list(frames)).rstrip()


class Fuzzer:
    """``prepare`` may change the world before the first contact (a test plants a bug)."""

    def __init__(self, seed: int, prepare: Callable[[World], None] | None = None) -> None:
        self.seed = seed
        self.prepare = prepare
        self._worlds: dict[str, tuple[bytes, Statics]] = {}

    def world(self, strategy: str) -> tuple[bytes, Statics]:
        if strategy not in self._worlds:
            w = build_world(self.seed, strategy)
            if self.prepare is not None:
                self.prepare(w)
            self._worlds[strategy] = (snapshot(w), Statics(w.persona_a, w.a.identity, w.c.identity))
        return self._worlds[strategy]

    def _rng(self, variant: Variant, case: int) -> random.Random:
        return random.Random(f"steppe-fuzz:{self.seed}:{variant.key}:{case}")

    def run(self, variant: Variant, cases: Iterable[int]) -> Report:
        blob, statics = self.world(variant.strategy)
        labels = honest_run(blob, variant.params)
        plans = []
        for case in cases:
            r = self._rng(variant, case)
            plans.append((plan_case(labels, case, r), r))
        want = frozenset(p.index for p, _r in plans)
        peer = frozenset(p.index for p, _r in plans if p.needs_peer)
        trace = honest_run(blob, variant.params, want, peer)
        if [s.stage for s in trace.steps] != [s.stage for s in labels.steps]:
            raise RuntimeError(f"the honest run is not deterministic ({variant.key})")
        report = Report()
        for plan, r in plans:
            ctx = make_ctx(trace, plan, r, statics)
            report.cases += 1
            report.families[plan.family] += 1
            report.stages[plan.stage] += 1
            done: list[str] = []
            try:
                run_case(ctx, done)
            except Escaped as exc:
                after = ", ".join(done) or "nothing"
                report.escapes.append(
                    Escape(
                        self.seed,
                        variant.key,
                        plan.case,
                        plan.stage,
                        f"{plan.family} (after {after})",
                        exc.what,
                        _where(exc.exc or exc),
                    )
                )
            report.mutations.update(done)
            report.add_probe(ctx.probe)
        return report

    def trace(self, variant: Variant) -> Trace:
        return honest_run(self.world(variant.strategy)[0], variant.params)

    # ---- bundles ----------------------------------------------------------------------------
    def run_bundles(self, cases: Iterable[int]) -> Report:
        """Mutated bundles through :func:`mesh.core.bundle.decode` (which may refuse them
        only with a BundleError) and whatever decodes through :meth:`Node.import_frames`;
        mutated frame lists straight into ``import_frames`` too."""
        blob, _statics = self.world(STRATEGIES[0])
        world: World = restore(blob)
        victim = snapshot(world.v)
        report = Report()
        for case in cases:
            r = random.Random(f"steppe-fuzz-bundle:{self.seed}:{case}")
            probe = Probe(restore(victim), 0, T0 + 5)
            report.cases += 1
            try:
                report.mutations[_bundle_case(world.bundle, probe, r)] += 1
            except Escaped as exc:
                cause = exc.exc or exc
                report.escapes.append(
                    Escape(self.seed, "bundle", case, "bundle", "bundle", exc.what, _where(cause))
                )
            report.add_probe(probe)
        return report


def _bundle_variant(bundle: bytes, r: random.Random) -> tuple[str, bytes]:
    roll = r.random()
    if roll < 0.4:
        name, data = mutate_encoded(bundle, r, ())
        return "bundle-" + name, data
    fields = unpack(bundle)
    if roll < 0.6:
        i = r.randrange(5)
        fields[i] = near_value(fields[i], r)
        return f"bundle-field{i}", pack_or(fields, bundle)
    frames = list(fields[4])
    for _ in range(r.choice((1, 2, 4))):
        i = r.randrange(len(frames))
        frames[i] = craft.envelope_variant(frames[i], r, DIFFICULTY)[1]
    fields[4] = frames
    return "bundle-frames", pack_or(fields, bundle)


def _bundle_case(bundle: bytes, probe: Probe, r: random.Random) -> str:
    name, data = _bundle_variant(bundle, r)
    node, now = probe.node, probe.now
    if r.random() < 0.3:  # straight into import_frames, as a driver with its own reader would
        frames = list(unpack(bundle)[4])
        frames = [craft.envelope_variant(f, r, DIFFICULTY)[1] for f in frames]
        probe.check(
            probe.call("import_frames", lambda: node.courier.import_frames(frames, b"f", now))
        )
        return "frames-" + name
    limit = r.choice((len(data), len(data) - 1, 1 << 20, 64))
    try:
        decoded = probe.call("bundle.decode", lambda: B.decode(data, limit, now))
    except Escaped as exc:
        if isinstance(exc.exc, B.BundleError):
            return name + " (refused)"
        raise
    assert isinstance(decoded, B.Bundle)
    fs = decoded.frames
    probe.check(probe.call("import_frames", lambda: node.courier.import_frames(fs, b"bundle", now)))
    return name


__all__ = ["Ctx", "Escape", "Fuzzer", "Report", "Variant", "variants"]
