"""The product package carries no benchmark harness: no simulator, policies, tracks or runners.

They live in the source checkout's ``benchmarks/bundlewise_bench``; ``bundlewise`` never
imports it except lazily in ``bundlewise simulate``.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import pytest

import bundlewise

SRC = Path(bundlewise.__file__).parent
MOVED = ("simulator", "pricing_track", "tracks", "runner", "milp")


def _modules() -> list[str]:
    return [
        m.name
        for m in pkgutil.walk_packages([str(SRC)], prefix="bundlewise.")
        if not m.name.endswith("__main__")
    ]


@pytest.mark.parametrize("name", MOVED)
def test_benchmark_modules_are_gone(name: str) -> None:
    assert not (SRC / "evaluation" / f"{name}.py").exists()
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module(f"bundlewise.evaluation.{name}")
    assert not (SRC / "templates" / "simulation.html.j2").exists()


#: The product's own learning policies (issue 10: prices that learn from feedback, served by
#: the server) live here; the simulator's pricing policies must not.
LEARNING_POLICIES = ("learning/policy.py", "learning/logged.py", "serving/learning.py")


def test_no_module_defines_a_simulator_or_a_pricing_policy() -> None:
    classes = re.compile(r"polic|simulat|scenario|market|milp|bundling", re.IGNORECASE)
    harness = re.compile(r"simulat|scenario|market|milp|bundling", re.IGNORECASE)
    functions = re.compile(r"simulat|milp|scenario|market", re.IGNORECASE)
    for path in SRC.rglob("*.py"):
        where = path.relative_to(SRC).as_posix()
        pattern = harness if where in LEARNING_POLICIES else classes
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                assert not pattern.search(node.name), (where, node.name)
                methods = {n.name for n in node.body if isinstance(n, ast.FunctionDef)}
                assert "prices" not in methods, (where, node.name)  # the policy interface
            elif isinstance(node, ast.FunctionDef) and functions.search(node.name):
                # the CLI command that runs the (separately installed) harness
                assert (where, node.name) == ("cli/main.py", "simulate"), (where, node.name)


def test_only_the_simulate_command_mentions_the_bench_package() -> None:
    users = [
        p.relative_to(SRC).as_posix()
        for p in SRC.rglob("*.py")
        if "bundlewise_bench" in p.read_text(encoding="utf-8")
    ]
    assert users == ["cli/main.py"]
    from bundlewise.cli import main

    for name, fn in inspect.getmembers(main, inspect.isfunction):
        if name != "simulate" and fn.__module__ == main.__name__:
            assert "bundlewise_bench" not in inspect.getsource(fn), name


def test_the_cli_and_evaluation_modules_import_no_benchmark_code() -> None:
    evaluation = [m for m in _modules() if m.startswith("bundlewise.evaluation.")]
    code = (
        "import importlib, sys\n"
        f"for m in {[*evaluation, 'bundlewise.cli.main', 'bundlewise.pipeline']!r}:\n"
        "    importlib.import_module(m)\n"
        "print(sorted(m for m in sys.modules if m.startswith('bundlewise_bench')))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
