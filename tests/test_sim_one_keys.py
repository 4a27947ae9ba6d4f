"""Scenario keys that state what The ONE's defaults do (issue 15, part 1): buffer eviction
by arrival, no per-source quota, and transfers counted aborted only when cut on the air."""

from __future__ import annotations

import pytest

from simulations.harness import Simulation
from simulations.report import report_dict
from simulations.scenario import ScenarioError, parse
from tests.test_simulator import small


def with_group_keys(text: str, keys: str) -> str:
    return text.replace("buffer = 2000000", keys)


def test_a_contact_ending_aborts_at_most_one_transfer_each_way() -> None:
    slow = small().replace("bitrate = 200000", "bitrate = 4000")  # long queues on every link
    sim = Simulation(parse(slow))
    s = sim.run().summary
    assert s["started"] > s["relayed"] + s["aborted"]  # queued hand-overs that never began
    assert 0 < s["aborted"] <= 2 * s["contacts"]


def test_oldest_received_evicts_own_messages_too_and_priority_never_does() -> None:
    runs = {}
    for mode in ("priority", "oldest_received"):
        text = with_group_keys(small(), f'buffer = 20000\neviction = "{mode}"')
        s = Simulation(parse(text)).run().summary
        runs[mode] = (s["dropped_at_source"], s["dropped"])
    assert runs["priority"][0] == 0  # the daemon's rule: own mail is protected
    assert runs["oldest_received"][0] > 0  # ONE's: the oldest copy goes, whoever wrote it
    assert runs["oldest_received"][1] > 0


def test_the_keys_are_recorded_and_checked() -> None:
    text = with_group_keys(
        small(), 'buffer = 20000\neviction = "oldest_received"\nsource_quota = false'
    )
    sc = parse(text)
    sim = Simulation(sc)
    store = report_dict(sc, sc.seed, sim.run())["node_config"][0]["store"]
    assert (store["eviction"], store["source_quota"]) == ("oldest_received", False)
    with pytest.raises(ScenarioError, match="eviction"):
        parse(with_group_keys(small(), 'eviction = "newest"'))
    with pytest.raises(ScenarioError, match="source_quota"):
        parse(with_group_keys(small(), 'source_quota = "no"'))
