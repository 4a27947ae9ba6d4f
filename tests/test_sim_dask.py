"""``steppe sim sweep`` on Dask: a local cluster of two worker processes, an existing
cluster reached with --scheduler (both on 127.0.0.1 only), the same rows as one process,
a failed run reported and the others kept."""

from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import Any

import pytest
from distributed import LocalCluster

from simulations.scenario import ScenarioError
from simulations.sweep import sweep
from tests.test_simulator import small

SETS = ["groups.0.strategy=epidemic,spray"]


@pytest.fixture
def scenario(tmp_path: Path) -> Path:
    path = tmp_path / "small.toml"
    path.write_text(small().replace("duration = 3600", "duration = 1200"))
    (tmp_path / "good.csv").write_text("time,source,destination,size\n100,0,1,300\n200,2,3,400\n")
    return path


def run(
    path: Path, jobs: int, scheduler: str = "", sets: list[str] = SETS
) -> tuple[list[dict[str, Any]], str]:
    progress = io.StringIO()
    rows = sweep(
        str(path),
        sets,
        "1-2",
        jobs,
        str(path.with_suffix(".csv")),
        io.StringIO(),
        progress,
        scheduler,
    )
    return rows, progress.getvalue()


def test_a_local_cluster_gives_the_rows_one_process_gives(scenario: Path) -> None:
    serial, _ = run(scenario, jobs=1)
    csv_serial = scenario.with_suffix(".csv").read_text()
    dask, said = run(scenario, jobs=2)
    assert dask == serial
    assert scenario.with_suffix(".csv").read_text() == csv_serial
    assert len(serial) == 4
    assert {r["groups.0.strategy"] for r in serial} == {"epidemic", "spray"}
    assert "sweep: 4 runs on 2 local processes" in said
    assert "[####################] 4/4" in said


def test_an_existing_cluster_by_its_scheduler_address(scenario: Path) -> None:
    serial, _ = run(scenario, jobs=1)
    with LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        host="127.0.0.1",
        dashboard_address=None,
        silence_logs=logging.ERROR,
        scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},  # not on 8787 (a sweep's)
    ) as cluster:
        address = cluster.scheduler_address
        assert address.startswith("tcp://127.0.0.1:")
        rows, said = run(scenario, jobs=2, scheduler=address)
    assert rows == serial
    assert f"4 runs on {address}" in said


def test_a_failed_run_is_reported_and_the_rest_kept(scenario: Path) -> None:
    sets = ["traffic.file=good.csv,missing.csv"]
    with pytest.raises(ScenarioError, match="2 of 4 runs failed"):
        run(scenario, jobs=2, sets=sets)
    kept = scenario.with_suffix(".csv").read_text().splitlines()
    assert kept[0].startswith("traffic.file,seed,delivery_prob")
    assert [line.split(",")[:2] for line in kept[1:]] == [["good.csv", "1"], ["good.csv", "2"]]
    progress = io.StringIO()
    with pytest.raises(ScenarioError, match="2 of 4 runs failed"):
        sweep(str(scenario), sets, "1-2", 1, None, io.StringIO(), progress)
    failures = [line for line in progress.getvalue().splitlines() if "FAILED" in line]
    assert len(failures) == 2
    assert all("traffic.file=missing.csv" in f and "cannot read" in f for f in failures)


def test_an_unreachable_scheduler_is_one_line(scenario: Path) -> None:
    with pytest.raises(ScenarioError, match="cannot connect"):
        run(scenario, jobs=2, scheduler="tcp://127.0.0.1:9")


def test_a_local_cluster_runs_while_port_8787_is_taken(scenario: Path) -> None:
    """Another sweep, or anything, on 127.0.0.1:8787 (Dask's default HTTP port) used to
    stop a sweep with "Cluster failed to start: Port 8787 is already in use"."""
    import contextlib
    import socket

    with socket.socket() as taken:
        with contextlib.suppress(OSError):  # already taken by something else: the same test
            taken.bind(("127.0.0.1", 8787))
            taken.listen()
        rows, said = run(scenario, jobs=2)
    assert len(rows) == 4
    assert "[####################] 4/4" in said
