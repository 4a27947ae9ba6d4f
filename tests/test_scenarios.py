"""Small versions of every shipped scenario as regression tests with asserted bounds."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from simulations.harness import Simulation
from simulations.overrides import load_with
from simulations.scenario import Group, Scenario, load


def shrink(sc: Scenario, duration: float, scale: float = 1.0) -> Scenario:
    groups = []
    for g in sc.groups:
        if g.movement == "static" or g.role != "user":
            groups.append(g)
        else:
            groups.append(replace(g, count=max(2, round(g.count * scale))))
    return replace(sc, duration=duration, groups=tuple(groups))


def run(sc: Scenario) -> dict[str, Any]:
    return Simulation(sc).run().summary


def test_dpi_block_mesh_alone_still_delivers() -> None:
    s = run(shrink(load("dpi-block"), 5400, 0.5))
    assert s["created"] >= 60
    assert s["delivery_prob"] >= 0.4, s


def test_almaty_gateways_bridge_only_while_astana_is_up() -> None:
    sc = load("almaty-jan-2022")
    sim = Simulation(shrink(sc, 110_000, 0.1))
    s = sim.run().summary
    states = dict(sim.metrics.net_states)
    assert states[0.0]["astana"] == "down"
    assert any(st["astana"] == "up" for st in states.values())
    assert s["created"] > 100
    assert isinstance(s["per_region"], dict)
    assert "almaty" in s["per_region"]


def test_almaty_cross_city_mail_crosses_only_while_both_cities_are_up() -> None:
    # Time compressed: Astana up alone for 5,000-25,000 s (no bridge: Almaty is down),
    # both up from 30,000 s; a tenth of the people.
    sc = load_with(
        "almaty-jan-2022",
        {
            "scenario.duration": 50_000,
            "regions.0.timeline": [{"start": 30_000, "state": "up"}],
            "regions.1.timeline": [
                {"start": 5_000, "end": 25_000, "state": "up"},
                {"start": 30_000, "state": "up"},
            ],
        },
    )
    alone = Simulation(shrink(sc, 29_000, 0.1))
    assert alone.run().summary["bytes_internet"] == 0, "the gateways stay apart"
    sim = Simulation(shrink(sc, 50_000, 0.1))
    s = sim.run().summary
    assert s["bytes_internet"] > 0
    region = [g.region for g in sim.group_of]
    cross = [m for m in sim.metrics.messages if region[m.src] != region[m.dst]]
    assert len(cross) > 50
    delivered = [m.delivered_at for m in cross if m.delivered_at is not None]
    assert delivered, "the gateways carried mail between the cities once both were up"
    assert min(delivered) >= 30_000, "nothing crosses while Almaty is cut"
    assert set(s["per_region"]) == {"almaty", "astana"}


def test_evening_throttle_windows() -> None:
    sc = load("evening-throttle-2018")
    north = sc.regions["north"]
    # start_hour 6: simulated hour 14 is 20:00 local.
    assert north.state(14 * 3600 + 60, sc.start_hour)[0] == "throttled"
    assert north.state(13 * 3600, sc.start_hour)[0] == "up"
    assert north.state((14 + 24) * 3600 + 60, sc.start_hour) == ("throttled", 0.1)
    s = run(shrink(sc, 3600, 0.3))
    assert s["created"] > 20


def test_flooders_raise_others_latency_within_bound() -> None:
    base = shrink(load("protest-square"), 1800, 0.5)
    calm = replace(base, groups=tuple(g for g in base.groups if g.role != "flooder"))
    with_flood = run(base)
    without = run(calm)
    assert with_flood["junk_created"] > 8 * with_flood["created"]  # junk at ~9x real traffic
    assert with_flood["delivered"] >= 40
    assert without["delivered"] >= 40
    # Stated bounds: flooders sending ~9x the real traffic raise everyone else's median
    # latency by at most 25 % + 60 s, and cost at most 15 points of delivery probability
    # within the run (quotas, stamps, token buckets, priorities).
    assert with_flood["latency_med"] <= 1.25 * without["latency_med"] + 60, (with_flood, without)
    assert with_flood["delivery_prob"] >= without["delivery_prob"] - 0.15, (with_flood, without)


def test_observers_cannot_link_session_envelopes() -> None:
    s = run(shrink(load("protest-square"), 900, 0.3))
    obs = s["observer"]
    assert isinstance(obs, dict)
    assert obs["observed_envelopes"] > 0
    assert obs["linkable"] <= 0.05
    # Guessing senders by link and size does tell an observer something (a node hands
    # over its own envelopes itself): the report measures that leak rather than hide it.
    assert isinstance(obs["sender_linkable"], float)
    assert isinstance(obs["sender_false_links"], float)
    assert obs["sender_linkable"] > obs["sender_false_links"] > 0


def test_shipped_groups_are_valid() -> None:
    for name in (
        "almaty-jan-2022",
        "evening-throttle-2018",
        "dpi-block",
        "protest-square",
        "one-random-waypoint",
    ):
        sc = load(name)
        assert all(isinstance(g, Group) for g in sc.groups)
        assert sc.duration >= 3600


def test_a_day_of_junk_at_ten_times_the_honest_rate_costs_honest_mail_under_ten_percent() -> None:
    """flood-day at CI size: a quarter of the people, honest traffic and the flood both
    thinned fourfold (the flood stays at 10x the honest rate) and the stores with them.
    The junk fills people's and relays' stores all day; honest delivery stays within 10 %
    of the same day without flooders. Before this issue's fixes it fell 23 % (0.71 against
    0.93: full stores demanded 12 stamp bits of mail stamped with 10)."""
    f = 4
    over: dict[str, Any] = {
        "traffic.interval": [60 * f, 120 * f],
        "groups.2.flood_interval": 18.0 * f,
        "groups.0.buffer": 1_200_000 // f,
        "groups.1.buffer": 2_000_000 // f,
    }
    sc = shrink(load_with("flood-day", over), 86400, 0.25)
    calm = replace(sc, groups=tuple(g for g in sc.groups if g.role != "flooder"))
    sim = Simulation(sc)
    people = [i for i, g in enumerate(sim.group_of) if g.role == "user"]
    peak = [0.0]

    def fill(_t: float, _events: int) -> None:
        stores = [sim.nodes[i].store for i in people]
        mean = sum(s.total_bytes() / s.quotas.max_total_bytes for s in stores) / len(stores)
        peak[0] = max(peak[0], mean)

    sim.progress = fill
    flood = sim.run().summary
    without = run(calm)
    assert flood["junk_created"] >= 9 * flood["created"]
    assert peak[0] >= 0.5, peak  # the junk reached everyone's store
    assert flood["delivery_prob"] >= 0.9 * without["delivery_prob"], (flood, without)
