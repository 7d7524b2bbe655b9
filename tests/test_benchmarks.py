"""The benchmarks are one registry: every script is in it, `make benchmark` runs its default set,
and the scripts use the project's public API only."""

from __future__ import annotations

import ast
import subprocess
import sys

from benchmarks.__main__ import REGISTRY, default_set
from tests.support.project import ROOT


def test_every_benchmark_script_is_registered_and_has_a_main():
    scripts = {p.stem for p in (ROOT / "benchmarks").glob("*.py") if not p.stem.startswith("_")}
    assert scripts == set(REGISTRY)
    for name in scripts:
        tree = ast.parse((ROOT / "benchmarks" / f"{name}.py").read_text())
        assert any(isinstance(n, ast.FunctionDef) and n.name == "main" for n in tree.body), name
        assert REGISTRY[name].description, name


def test_make_benchmark_runs_the_default_set_and_the_docs_say_so():
    makefile = (ROOT / "Makefile").read_text()
    target = makefile[makefile.index("benchmark: setup"):].split("\n\n")[0]
    assert target.splitlines()[1:] == ["\t$(UV) run python -m benchmarks default"]
    assert "python -m benchmarks default" in (ROOT / "docs/development.md").read_text()
    listed = subprocess.run([sys.executable, "-m", "benchmarks"], cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout
    shown = {line.split()[0] for line in listed.splitlines() if "[default" in line}
    assert shown == {b.name for b in default_set()} and len(shown) >= 10
    unknown = subprocess.run([sys.executable, "-m", "benchmarks", "run", "nothing"], cwd=ROOT,
                             capture_output=True, text=True)
    assert unknown.returncode == 2 and "the benchmarks are" in unknown.stderr


def test_benchmarks_use_no_private_name_of_the_project():
    for path in (ROOT / "benchmarks").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and not (
                    isinstance(node.value, ast.Name) and node.value.id == "self"):
                assert not (node.attr.startswith("_") and not node.attr.startswith("__")), (
                    f"{path.name}:{node.lineno}: .{node.attr}")
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("latentlab"):
                private = [a.name for a in node.names if a.name.startswith("_")]
                assert not private, f"{path.name}:{node.lineno}: {private}"
