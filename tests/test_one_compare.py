"""bench/one_compare.py: the Steppe side of every world and router is a valid scenario in
ONE-compatible mode, ONE's settings say the same world, and a replay of ONE-format
reports delivers exactly what the contacts allow."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.one_compare import (
    ROUTERS,
    STEPPE_SIZE,
    WORLDS,
    one_settings,
    run_steppe,
    steppe_toml,
)
from mesh.core.store import Eviction
from simulations.scenario import Transfers, parse


@pytest.mark.parametrize("world", sorted(WORLDS))
@pytest.mark.parametrize("router", sorted(ROUTERS))
def test_each_world_is_one_compatible_in_steppe_and_the_same_in_one(
    world: str, router: str, tmp_path: Path
) -> None:
    w = WORLDS[world]
    sc = parse(steppe_toml(w, router, 3, None, "x"), str(tmp_path / "x.toml"))
    (g,) = sc.groups
    assert (g.count, g.strategy, g.speed, g.wait) == (w.nodes, router, (0.5, 1.5), (0, 120))
    assert (sc.width, sc.height, sc.duration) == (w.width, w.height, w.hours * 3600)
    assert g.eviction is Eviction.OLDEST_RECEIVED
    assert (g.source_quota, g.direct_first, g.offer_order) == (False, True, "random")
    assert sc.radios[g.radio].transfers is Transfers.ONE_PER_NODE
    assert sc.traffic.size == (STEPPE_SIZE, STEPPE_SIZE)
    one = one_settings("x", w, router, 3, tmp_path)
    assert f"Group.nrofHosts = {w.nodes}" in one
    assert f"MovementModel.worldSize = {w.width}, {w.height}" in one
    assert f"Group.router = {ROUTERS[router][0]}" in one
    assert ("Group.bufferSize = 5000\n" in one) == (w.buffer_msgs == 5)


def test_a_replay_of_ones_reports_follows_its_contacts(tmp_path: Path) -> None:
    """Three nodes, 0-1 then 1-2 in contact: 0's message to 2 goes through 1; 2's message
    to 0, written after the last contact, cannot arrive."""
    (tmp_path / "r_ConnectivityONEReport.txt").write_text(
        "10.00 CONN 0 1 up\n100.00 CONN 0 1 down\n200.00 CONN 1 2 up\n300.00 CONN 1 2 down\n"
    )
    (tmp_path / "r_CreatedMessagesReport.txt").write_text(
        "# time  ID  size  fromHost  toHost  TTL  isResponse\n"
        "5.0000 M1 1000 p0 p2 300 N \n"
        "400.0000 M2 1000 p2 p0 300 N \n"
    )
    w = WORLDS["S1"]
    short = type(w)(3, 100, 100, 600 / 3600, 0)
    run = run_steppe(steppe_toml(short, "epidemic", 1, tmp_path, "r"), 1, tmp_path, "r", -1)
    assert run.created == 2
    assert run.delivered == frozenset({(5.0, 0, 2)})
