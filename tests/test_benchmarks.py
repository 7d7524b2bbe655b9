"""The benchmarks are one registry: every script is in it, `make benchmark` runs its default set,
and the scripts use the project's public API only."""

from __future__ import annotations

import ast
import json
import os
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
    # and each imports (in a process of its own: some choose their Keras backend on import)
    imports = "; ".join(f"import benchmarks.{name}" for name in sorted(scripts))
    done = subprocess.run([sys.executable, "-c", imports], cwd=ROOT, capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr[-2000:]


def test_every_benchmark_parses_and_saves_through_the_shared_harness():
    for name in REGISTRY:
        source = (ROOT / "benchmarks" / f"{name}.py").read_text()
        assert "command_line(__doc__)" in source and "Results(args, " in source, name
        assert "ArgumentParser(" not in source and "json.dump(" not in source, name


def test_results_name_their_file_record_their_run_and_resume(tmp_path, monkeypatch):
    from benchmarks import Results, command_line

    monkeypatch.setattr(sys, "argv", ["x.py", "--name", "again", "--results", str(tmp_path)])
    args = command_line("Times a thing.\n\nMore.").parse_args()
    results = Results(args, "thing", "cpu")
    assert results.path == tmp_path / "thing_cpu_again.json" and results == {}
    results["first"] = 1
    results.save(second=[2])
    written = json.loads(results.path.read_text())
    assert written["first"] == 1 and written["second"] == [2]
    assert written["run"]["command"].startswith("python ")  # how pytest was started varies
    assert written["run"]["command"].endswith(" --name again --results " + str(tmp_path))
    assert written["run"]["host"]["cpus"] == os.cpu_count()
    assert written["run"]["revision"]
    assert Results(args, "thing", "cpu", resume=True) == {"first": 1, "second": [2]}
    assert Results(args, "thing", "cpu") == {}  # without resume: a fresh start


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


def test_a_device_run_needs_only_the_gpu_machines_packages_and_the_packed_wheels(
        digits_prepared, tmp_path):
    """A run on the GPU machine that stops at an import spends its few minutes for nothing. Here,
    with only the machine's packages and the packed wheels importable, on jax: the device
    scripts import, read params.yaml, and train FastGAN two steps through the stage's code, as
    `fastgan_device run` does, saving what comes back."""
    import re
    from importlib.metadata import packages_distributions

    from benchmarks import MISSING_ON_DEVICE, ON_DEVICE

    def norm(name: str) -> str:
        return re.sub(r"[-_.]+", "-", name).lower()

    there = {norm(d) for d in [*ON_DEVICE, *MISSING_ON_DEVICE]}
    importable = {module for module, dists in packages_distributions().items()
                  if any(norm(d) in there for d in dists)}
    assert {"jax", "keras", "pydantic", "ruamel", "numpy", "PIL"} <= importable
    assert "tensorflow" not in importable and "mlflow" not in importable
    script = """
import sys
from tests.support.uninstalled import only_packages
only_packages({*sys.argv[1].split(","), "latentlab", "stages", "benchmarks", "tests"})
import json
from pathlib import Path
from benchmarks import diffusion_device, gan_device, label_device  # noqa: F401
from benchmarks import fastgan_device  # noqa: F401
from benchmarks.fastgan import train, with_images
from latentlab.params import load_params, with_settings
import latentlab.training.label_efficiency, stages.pretrain  # noqa: E401, F401
params = with_settings(load_params("params.yaml"), [
    "train_fastgan.width=4", "train_fastgan.d_width=8", "train_fastgan.batch_size=8",
    "train_fastgan.max_train_images=16"])
train(with_images(params, "fastgan", 8, 1), "fastgan", Path(sys.argv[2]), Path(sys.argv[3]))
print(json.loads((Path(sys.argv[3]) / "models/fastgan/training.json").read_text())["images_seen"])
"""
    done = subprocess.run([sys.executable, "-c", script, ",".join(sorted(importable)),
                           str(digits_prepared), str(tmp_path)], cwd=ROOT, capture_output=True,
                          text=True, env={**os.environ, "KERAS_BACKEND": "jax"})
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split()[-1] == "16"  # an epoch of one pass over its 16 images
    assert (tmp_path / "models/fastgan/generator.keras").is_file()
