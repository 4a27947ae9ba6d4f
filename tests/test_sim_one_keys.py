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


LINE = """
[scenario]
name = "line"
duration = 3600
seed = 5
warmup = 0
stamp_bits = 4

[world]
width = 100
height = 10

[[radios]]
name = "slow"
range = 40
bitrate = 3000
transfers = "{transfers}"

[[groups]]
name = "line"
count = 3
movement = "static"
positions = [[0, 5], [30, 5], [60, 5]]
radio = "slow"

[traffic]
interval = [20, 40]
size = [200, 1000]
ttl = 7200
stop = 3000
"""


def test_half_duplex_and_one_transfer_per_node_slow_the_middle_of_a_line() -> None:
    """Three nodes in a line: the middle one relays both ways. Full duplex, each link
    on its own, is fastest; one transfer per node at a time (The ONE's interface) makes
    the middle node take turns, so messages wait longer."""
    latency = {}
    for mode in ("full", "half", "one_per_node"):
        s = Simulation(parse(LINE.replace("{transfers}", mode))).run().summary
        assert s["delivery_prob"] >= 0.9, (mode, s)
        latency[mode] = s["latency_avg"]
    assert latency["full"] < latency["half"] < latency["one_per_node"], latency
    with pytest.raises(ScenarioError, match="transfers"):
        parse(LINE.replace("{transfers}", "simplex"))


def test_direct_first_reaches_the_nodes_config() -> None:
    from simulations.harness import node_config

    sc = parse(with_group_keys(small(), "buffer = 2000000\ndirect_first = true"))
    assert node_config(sc, sc.groups[0]).direct_first
    assert not node_config(parse(small()), parse(small()).groups[0]).direct_first
    s = Simulation(sc).run().summary
    assert s["delivery_prob"] >= 0.8


def test_first_contact_as_destination_sprays_like_the_one() -> None:
    """Cautious (the default): a first contact, whose destination is only a 1-byte hint,
    gives a relay (n-1)//2 and a hint match a copy at the cost of one; as_destination
    (The ONE, which knows destinations): n//2, and a hint match is the destination."""
    from mesh.core.routing import EnvView, SprayAndWait
    from simulations.harness import node_config

    first = EnvView(b"i", 8, 10**9, b"\x07")  # a 1-byte tag: a first contact's hint
    cautious, one = SprayAndWait(8), SprayAndWait(8, hint_is_destination=1)

    def split(strategy: SprayAndWait, env: EnvView) -> tuple[int, int]:
        h = strategy.decide(env, b"p", False, 0)
        assert h.give
        return h.peer_budget, h.keep_budget

    assert split(cautious, first) == (3, 4)
    assert split(one, first) == (4, 4)
    hinted = EnvView(b"i", 8, 10**9, b"\x07", candidate=True)
    assert split(cautious, hinted) == (0, 7)
    assert split(one, hinted) == (0, 8)
    last = EnvView(b"i", 1, 10**9, b"\x07")
    assert not one.decide(last, b"p", False, 0).give  # one copy left: wait
    text = small("spray")
    sc = parse(with_group_keys(text, 'buffer = 2000000\nfirst_contact = "as_destination"'))
    assert ("hint_is_destination", 1) in node_config(sc, sc.groups[0]).strategy_args
    plain = parse(text)
    assert node_config(plain, plain.groups[0]).strategy_args == (("copies", 8),)
    with pytest.raises(ScenarioError, match="first_contact"):
        parse(with_group_keys(text, 'buffer = 2000000\nfirst_contact = "sure"'))
