"""The oracle for changes that must not change behaviour: every listed scenario, run with
the same seed on this tree and on a base revision, gives a byte-identical ``report.json``
and ``messages.csv``.

Run: ``.venv/bin/python -m simulations.identical`` (base ``main``; ``--base REV``;
``--full`` for the scenarios' own durations instead of the small size; ``--keep DIR`` to
keep both sides' outputs in DIR/base and DIR/here; scenario names to check only those).
The base is checked out into a temporary git worktree and run with the same interpreter
(its own code first on the path); both sides run in parallel processes.
Exit status 0 if every pair matches, 1 with the differing files named otherwise.

Small size: the scenario's duration capped at :data:`SMALL_SECONDS` and each group a
quarter of its size (at most :data:`SMALL_GROUP`, at least 2; static groups placed node by
node keep theirs): the same mobility, radios,
traffic, regions and adversaries, so every code path still runs, in a minute or two.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from simulations.scenario import SCENARIO_DIR

SMALL_SECONDS = 6 * 3600
SMALL_GROUP = 20  # nodes per group at most (a quarter of the scenario's, at least 2)
FILES = ("report.json", "messages.csv")
REPO = Path(__file__).resolve().parent.parent
_SHIPPED = SCENARIO_DIR.relative_to(REPO)


def scenarios() -> list[str]:
    return sorted(p.stem for p in SCENARIO_DIR.glob("*.toml"))


def _run(tree: Path, name: str, out: Path, full: bool) -> str:
    """Run one scenario in ``tree``; returns "" or the error output."""
    cmd = [sys.executable, "-m", "mesh.cli", "sim", "run", name, "--quiet", "--no-plots"]
    cmd += ["--out", str(out)]
    if not full:
        for spec in _small(name):
            cmd += ["--set", spec]
    done = subprocess.run(cmd, cwd=tree, capture_output=True, text=True, check=False)
    return "" if done.returncode == 0 else done.stdout + done.stderr


def _small(name: str) -> list[str]:
    """Overrides for the small size: a shorter run, fewer nodes per group."""
    from simulations.overrides import load_with

    sc = load_with(name, {})
    sets = [f"scenario.duration={min(int(sc.duration), SMALL_SECONDS)}"]
    for i, g in enumerate(sc.groups):
        if g.positions:  # static nodes placed one by one keep their count
            continue
        sets.append(f"groups.{i}.count={max(2, min(SMALL_GROUP, round(g.count * 0.25)))}")
    return sets


def check(
    base: str, names: list[str], full: bool, jobs: int, keep: Path | None = None
) -> list[str]:
    """The problems found (empty: every file is byte-identical)."""
    problems: list[str] = []
    with tempfile.TemporaryDirectory(prefix="steppe-identical-") as tmp:
        root = Path(tmp)
        worktree = root / "base"
        subprocess.run(
            ["git", "-C", str(REPO), "worktree", "add", "--detach", "-q", str(worktree), base],
            check=True,
        )
        try:
            new = [n for n in names if not (worktree / _SHIPPED / f"{n}.toml").exists()]
            if new:  # a scenario added here has nothing to be identical to
                print(f"new here, not compared with {base}: {', '.join(new)}")
                names = [n for n in names if n not in new]
            jobs_list = [
                (tree, name, root / side / name)
                for name in names
                for side, tree in (("base", worktree), ("here", REPO))
            ]
            with ThreadPoolExecutor(max_workers=jobs) as pool:
                errors = list(pool.map(lambda j: _run(j[0], j[1], j[2], full), jobs_list))
            for (tree, name, _out), err in zip(jobs_list, errors, strict=True):
                if err:
                    problems.append(
                        f"{name} failed on {'base' if tree == worktree else 'here'}:\n{err}"
                    )
            for name in names:
                for f in FILES:
                    a, b = root / "base" / name / f, root / "here" / name / f
                    if a.exists() and b.exists() and a.read_bytes() != b.read_bytes():
                        problems.append(f"{name}/{f} differs from {base}")
            if keep is not None:
                for side in ("base", "here"):
                    for name in names:
                        if (root / side / name).exists():
                            shutil.copytree(
                                root / side / name, keep / side / name, dirs_exist_ok=True
                            )
        finally:
            subprocess.run(
                ["git", "-C", str(REPO), "worktree", "remove", "--force", str(worktree)],
                check=False,
            )
    return problems


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="*", help="scenarios (default: every shipped one)")
    ap.add_argument("--base", default="main", help="the revision to compare with")
    ap.add_argument("--full", action="store_true", help="the scenarios' own durations")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--keep", type=Path, help="copy both sides' outputs into this directory")
    args = ap.parse_args()
    names = args.names or scenarios()
    problems = check(args.base, names, args.full, args.jobs, args.keep)
    size = "full size" if args.full else f"at most {SMALL_SECONDS} s each"
    if problems:
        print("\n".join(problems))
        sys.exit(1)
    print(f"identical to {args.base}: {', '.join(names)} ({size}; {', '.join(FILES)})")


if __name__ == "__main__":
    main()
