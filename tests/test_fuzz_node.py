"""Fuzzing ``Node.handle`` (issue 10, part 1: nothing a peer sends may stop a node).

The harness (:mod:`tests.fuzzing`) records an honest run of two contacts between two real
nodes, then feeds the victim mutated and crafted input at every stage of it, from single
wire frames up to protocol messages sealed under the link's real keys and envelopes with
valid stamps, signatures and sessions: on message links at every MTU of 20..64 and a
seeded spread up to 4096, on stream links at a spread of read sizes. The only acceptable
outcomes are actions (a closed link among them) and counters; anything that escapes is
reported with the seed, variant and case that reproduce it. ``python -m bench.fuzz`` runs
the same harness over 10^6 frames, every MTU and every link mode.
"""

from __future__ import annotations

import random
from typing import get_args

import pytest

from mesh.core import envelope as E
from mesh.core import protocol as P
from mesh.core.routing import Epidemic
from tests.fuzzing.cases import FAMILIES
from tests.fuzzing.decoders import fuzz_decoders
from tests.fuzzing.harness import LINK_MODES, Fuzzer, Report, Variant, sample_variants
from tests.fuzzing.honest import MESSAGE_STAGES
from tests.fuzzing.world import World

SEED = 20220105  # the day the nationwide cut began
SHARDS = 4
CASES = 32  # per variant
VARIANTS = sample_variants(random.Random(SEED))


def _fail(report: Report) -> str:
    shown = "\n\n".join(str(e) for e in report.escapes[:5])
    return f"{len(report.escapes)} exceptions escaped Node.handle:\n{shown}"


@pytest.mark.parametrize("shard", range(SHARDS))
def test_no_frame_stops_the_node(shard: int) -> None:
    fuzzer = Fuzzer(SEED)
    report = Report()
    for variant in VARIANTS[shard::SHARDS]:
        report.merge(fuzzer.run(variant, range(CASES)))
    assert not report.escapes, _fail(report)
    assert report.frames >= 10_000 // SHARDS
    assert set(report.families) == set(FAMILIES)
    # the fuzz reaches past the AEAD and the signatures into every parser behind them
    for counter in ("protocol_errors", "bad_envelopes", "rejected_bad_signature", "put_stored"):
        assert report.stats[counter] > 0, counter
    assert report.stats["links_closed_decrypt_failed"] > 0
    assert report.stats["links_closed_bad_frame"] > 0
    assert report.delivered > 0, "crafted first contacts and session messages were opened"


def test_mutated_bundles_are_refused_or_imported_never_raised() -> None:
    report = Fuzzer(SEED).run_bundles(range(1200))
    assert not report.escapes, _fail(report)
    refused = sum(n for name, n in report.mutations.items() if name.endswith("(refused)"))
    assert 0 < refused < report.cases
    assert report.stats["bad_envelopes"] > 0
    assert report.stats["put_stored"] > 0


def test_crypto_decoders_refuse_mutated_input_only_with_crypto_errors() -> None:
    tried, refused, escaped = fuzz_decoders(SEED, 6000)
    assert escaped == []
    assert 0 < refused < tried


@pytest.mark.parametrize("mode", LINK_MODES, ids=lambda m: ",".join(m) or "message")
def test_the_honest_run_covers_every_message_type_and_stage(mode: dict[str, object]) -> None:
    trace = Fuzzer(SEED).trace(Variant({"mtu": 20, **mode}, "epidemic"))
    carried = {label for label, _m in trace.messages}
    assert len(MESSAGE_STAGES) == len(get_args(P.Message))
    assert carried == set(MESSAGE_STAGES)
    assert {e.kind for e in map(E.decode, trace.envelopes())} == set(E.Kind)
    labels = {stage.split("-", 1)[1] for stage in trace.stages()}
    # HELLO rides inside the handshake: its record is a handshake-stage one
    assert labels == {"before", "handshake", "idle", "closed", *MESSAGE_STAGES} - {"hello"}
    assert {s.contact for s in trace.steps} == {0, 1, 2}
    assert any(s.hello_seen and not s.boundary for s in trace.steps), "multi-fragment records"


def test_the_honest_run_is_deterministic() -> None:
    variant = Variant({"mtu": 33}, "spray")
    one, two = Fuzzer(SEED).trace(variant), Fuzzer(SEED).trace(variant)
    assert one.frames == two.frames
    assert one.messages == two.messages
    assert [s.stage for s in one.steps] == [s.stage for s in two.steps]


class Fragile(Epidemic):
    """A strategy with the bug class the fuzz exists for: it parses a neighbour's routing
    info and lets the parser's ValueError out."""

    NAME = "fragile"

    def on_contact(self, peer: bytes, info: bytes, now: int) -> None:
        if info:
            raise ValueError("routing info I cannot read")


def _fragile(world: World) -> None:
    world.v.strategy = Fragile()


def test_an_escaping_exception_is_reported_with_what_reproduces_it() -> None:
    variant = Variant({"mtu": 244}, "epidemic")
    report = Fuzzer(SEED, prepare=_fragile).run(variant, range(300))
    assert report.escapes, "the harness must catch an exception escaping Node.handle"
    first = report.escapes[0]
    assert "ValueError: routing info I cannot read" in str(first)
    assert f"seed={SEED}" in str(first)
    assert f"case={first.case}" in str(first)
    again = Fuzzer(SEED, prepare=_fragile).run(variant, [first.case])
    assert [e.error for e in again.escapes] == [first.error]
    assert Fuzzer(SEED).run(variant, [first.case]).escapes == []
