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


# ---- the node's parts are private ------------------------------------------------------
# Drivers use the node through its facade (mesh.core.node.Node) and the public modules of
# mesh/core: the parts (mesh/core/_*.py) and the node's private attributes may change.
DRIVERS = [ROOT / "mesh", ROOT / "simulations", ROOT / "bench", ROOT / "tui"]
NODE = ROOT / "mesh" / "core" / "node.py"


def _driver_files() -> list[Path]:
    core = ROOT / "mesh" / "core"
    return sorted(
        f for d in DRIVERS for f in d.rglob("*.py") if core not in f.parents and f.exists()
    )


def _node_private_names() -> set[str]:
    """Every ``_name`` the Node class defines: its private methods and attributes."""
    tree = ast.parse(NODE.read_text())
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Node")
    names = set()
    for sub in ast.walk(cls):
        if isinstance(sub, ast.FunctionDef) and sub.name.startswith("_"):
            names.add(sub.name)
        if (
            isinstance(sub, ast.Attribute)
            and isinstance(sub.value, ast.Name)
            and sub.value.id == "self"
            and sub.attr.startswith("_")
        ):
            names.add(sub.attr)
    return {n for n in names if not n.startswith("__")}


@pytest.mark.parametrize("path", _driver_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_drivers_import_no_private_core_module(path: Path) -> None:
    tree = ast.parse(path.read_text())
    bad = []
    for sub in ast.walk(tree):
        names: list[str] = []
        if isinstance(sub, ast.Import):
            names = [a.name for a in sub.names]
        elif isinstance(sub, ast.ImportFrom) and sub.module and sub.level == 0:
            names = [sub.module] + [f"{sub.module}.{a.name}" for a in sub.names]
        bad += [n for n in names if n.startswith("mesh.core._")]
    assert bad == [], f"{path.name} imports the node's private parts {bad}"


@pytest.mark.parametrize("path", _driver_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_drivers_touch_no_private_node_state(path: Path) -> None:
    private = _node_private_names()
    tree = ast.parse(path.read_text())
    bad = []
    for sub in ast.walk(tree):
        if (
            isinstance(sub, ast.Attribute)
            and sub.attr in private
            and not (isinstance(sub.value, ast.Name) and sub.value.id in ("self", "cls"))
        ):
            bad.append(f"line {sub.lineno}: {ast.unparse(sub)}")
    assert bad == [], f"{path.name} reaches into the node {bad}"


def test_the_driver_checks_catch_violations(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("from mesh.core._peer import Peer\nnode._peers.links.clear()\n")
    with pytest.raises(AssertionError):
        test_drivers_import_no_private_core_module(bad)
    with pytest.raises(AssertionError):
        test_drivers_touch_no_private_node_state(bad)
    assert "_peers" in _node_private_names()
