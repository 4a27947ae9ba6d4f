"""The sans-I/O rule, enforced by reading the source (an AST check).

``mesh/core`` and ``crypto`` must not import event loops, sockets, threads, hardware or UI
libraries, must not read the wall clock, and must not keep module-level mutable state
(one process hosts thousands of simulated nodes).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PURE = [ROOT / "mesh" / "core", ROOT / "crypto"]
FORBIDDEN_MODULES = {
    "trio",
    "asyncio",
    "bleak",
    "bless",
    "textual",
    "socket",
    "threading",
    "sqlite3",
    "subprocess",
    "multiprocessing",
    "select",
    "selectors",
    "random",
    "secrets",
    "time",
    "datetime",
    "os",
}
MUTABLE_CALLS = {
    "list",
    "dict",
    "set",
    "bytearray",
    "defaultdict",
    "deque",
    "OrderedDict",
    "Counter",
    "SortedList",
    "SortedDict",
}


def _files() -> list[Path]:
    return sorted(f for d in PURE for f in d.rglob("*.py"))


@pytest.mark.parametrize("path", _files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_pure_modules_import_no_io(path: Path) -> None:
    tree = ast.parse(path.read_text())
    bad = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        bad += [n for n in names if n.split(".")[0] in FORBIDDEN_MODULES]
    assert bad == [], f"{path.name} imports {bad}"


@pytest.mark.parametrize("path", _files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_pure_modules_keep_no_module_level_mutable_state(path: Path) -> None:
    tree = ast.parse(path.read_text())
    bad = []
    for node in tree.body:
        if isinstance(node, ast.Global):
            bad.append("global statement")
        if not isinstance(node, ast.Assign | ast.AnnAssign):
            continue
        value = node.value
        if isinstance(
            value, ast.List | ast.Dict | ast.Set | ast.ListComp | ast.DictComp | ast.SetComp
        ) or (
            isinstance(value, ast.Call)
            and isinstance(value.func, ast.Name)
            and value.func.id in MUTABLE_CALLS
        ):
            bad.append(ast.unparse(node)[:60])
    for sub in ast.walk(tree):
        if isinstance(sub, ast.Global):
            bad.append("global statement")
    assert bad == [], f"{path.name}: module-level mutable state {bad}"


def test_the_check_catches_violations(tmp_path: Path) -> None:
    """The AST check itself can fail: feed it a bad module."""
    bad = tmp_path / "bad.py"
    bad.write_text("import trio\nCACHE = {}\n")
    with pytest.raises(AssertionError):
        test_pure_modules_import_no_io(bad)
    with pytest.raises(AssertionError):
        test_pure_modules_keep_no_module_level_mutable_state(bad)
