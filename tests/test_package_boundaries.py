"""Packages import each other one way and only through public names; a trading process loads no server.

The direction (docs: ../shared/ARCHITECTURE.md, "Python surfaces"): ``c_engine`` <- ``hotpath`` <-
``strategies`` <- ``ml``; ``gateway`` on ``hotpath`` and ``strategies``. A module of one package may import
another package's public names only: never a module or name that starts with ``_``. Tests and benchmarks count
as the package they test (``tests/hotpath/`` is ``hotpath``, white-box inside it), ``bench/`` as a package of
its own that may use every other.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("c_engine", "hotpath", "strategies", "ml", "gateway")
#: what each package may import
ALLOWED = {
    "c_engine": set(),
    "hotpath": {"c_engine"},
    "strategies": {"c_engine", "hotpath"},
    "ml": {"c_engine", "hotpath", "strategies"},
    "gateway": {"c_engine", "hotpath", "strategies"},
    "bench": set(PACKAGES),
}


def _owner(parts: tuple[str, ...]) -> tuple[str | None, set[str]]:
    """The package a source file (its path's parts under the root) belongs to, and what it may import."""
    if parts[0] in ALLOWED:
        return parts[0], ALLOWED[parts[0]]
    if parts[0] == "tests" and len(parts) > 2 and parts[1] in PACKAGES:
        return parts[1], set(PACKAGES)  # a test may drive any package (the CLI lives in hotpath)
    return None, set()


def _imports(path: Path) -> Iterator[tuple[int, str, list[str]]]:
    """(line, absolute module, imported names) for every import of the file."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, []
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module, [alias.name for alias in node.names]


def _violations(root: Path = ROOT) -> list[str]:
    found = []
    for path in sorted(p for top in (*PACKAGES, "bench", "tests") for p in (root / top).rglob("*.py")):
        owner, allowed = _owner(path.relative_to(root).parts)
        if owner is None:
            continue
        for line, module, names in _imports(path):
            package = module.split(".")[0]
            if package not in PACKAGES or package == owner:
                continue
            where = f"{path.relative_to(root)}:{line}"
            if package not in allowed:
                found.append(f"{where}: {owner} may not import {package}")
            private = [part for part in module.split(".")[1:] if part.startswith("_")]
            private += [name for name in names if name.startswith("_")]
            if private:
                found.append(f"{where}: private {module} {private}")
    return found


def test_no_package_imports_another_packages_private_names_or_against_the_direction() -> None:
    assert _violations() == []


def test_the_walk_reports_a_private_import_and_one_against_the_direction(tmp_path: Path) -> None:
    # The check itself must be able to fail: a file that breaks both rules is reported twice.
    (tmp_path / "hotpath" / "agents").mkdir(parents=True)
    (tmp_path / "hotpath" / "agents" / "probe.py").write_text(
        "from c_engine._engine import Engine\nimport gateway\nfrom c_engine import _wire\n"
    )
    assert _violations(tmp_path) == [
        "hotpath/agents/probe.py:1: private c_engine._engine ['_engine']",
        "hotpath/agents/probe.py:2: hotpath may not import gateway",
        "hotpath/agents/probe.py:3: private c_engine ['_wire']",
    ]


def test_a_trading_process_loads_no_server_and_one_engine_library() -> None:
    # A strategy's process: the client names, and an in-process Engine beside them (a backtest in a notebook).
    code = (
        "import os, sys, hotpath, c_engine\n"
        "hotpath.Client, hotpath.AsyncClient, hotpath.BookView, hotpath.EngineGoneError, hotpath.L2Book\n"
        "hotpath.MarketDataSubscriber, c_engine.Engine()\n"
        "maps = open('/proc/self/maps').read().split()\n"
        "cores = {os.path.realpath(f) for f in maps if os.path.basename(f) == 'libptcore.so'}\n"
        "print(len(cores), ' '.join(sorted(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, cwd=ROOT)
    cores, *modules = out.stdout.split()
    loaded = set(modules)
    assert "hotpath.client" in loaded and "hotpath.async_client" in loaded  # the names really were resolved
    assert cores == "1"  # one copy of the engine library, the one c_engine.Engine runs
    server = {"hotpath._cloop", "hotpath.engine_process", "hotpath.control", "hotpath.bridge", "hotpath.launcher",
              "hotpath.engine_control", "hotpath.journal"}  # fmt: skip
    assert loaded & server == set()


def test_every_lazy_hotpath_name_is_declared_for_type_checkers() -> None:
    # hotpath/__init__.py imports its names on first use (__getattr__), which type checkers cannot follow; its
    # TYPE_CHECKING block declares each one. The two lists must not drift apart.
    import hotpath

    tree = ast.parse((ROOT / "hotpath" / "__init__.py").read_text())
    block = next(node for node in tree.body if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test))
    declared = {alias.name for node in block.body if isinstance(node, ast.ImportFrom) for alias in node.names}
    assert declared == set(hotpath._LAZY)
