"""Every stage's dvc.yaml deps cover the project code it runs, so changing that code reruns it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

from latentlab.families import FAMILIES
from tests.support.project import ROOT

# Run plumbing: code that cannot change a stage's outputs, only how the run is reported.
EXEMPT = {
    "latentlab/__init__.py": "the package docstring and version",
    "latentlab/errors.py": "the exception type for user errors",
    "latentlab/native_logs.py": "drops native libraries' routine log lines from stderr",
    "latentlab/stage_runner.py": "logging set-up and exit codes around a stage",
    "latentlab/tracking.py": "MLflow logging, after the outputs are written",
    "stages/__init__.py": "a stage process's stderr filter (native_logs)",
}
PACKAGES = ("latentlab", "stages", "pipelines")


def _module_file(module: str) -> Path | None:
    if module.split(".")[0] not in PACKAGES:
        return None
    base = ROOT.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imported_modules(path: Path) -> set[str]:
    """Modules an import anywhere in ``path`` (functions included) may load."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    modules = set()
    for name in found:  # importing a.b.c runs a/__init__ and a/b/__init__ too
        parts = name.split(".")
        modules.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
    return modules


def import_closure(entry: Path) -> set[str]:
    """Project files (relative paths) that running ``entry`` imports, following non-exempt files."""
    seen: set[str] = set()
    todo = [entry, *(p / "__init__.py" for p in entry.parents if (p / "__init__.py").is_file()
                     and ROOT in p.parents)]
    while todo:
        path = todo.pop()
        rel = path.relative_to(ROOT).as_posix()
        if rel in seen:
            continue
        seen.add(rel)
        if rel in EXEMPT:
            continue
        for module in _imported_modules(path):
            if (found := _module_file(module)) is not None:
                todo.append(found)
    return seen


def inert(rel: str) -> bool:
    """A package ``__init__.py`` with nothing but a docstring cannot change any output."""
    path = ROOT / rel
    if path.name != "__init__.py":
        return False
    body = ast.parse(path.read_text()).body
    return all(isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
               or isinstance(node, ast.ImportFrom) and node.module == "__future__"
               for node in body)


def _covered(rel: str, deps: list[str]) -> bool:
    return any(rel == dep or rel.startswith(dep.rstrip("/") + "/") for dep in deps)


def _stages() -> dict[str, dict]:
    """dvc.yaml's stages, a ``foreach`` over the generators expanded for every registered
    family (not only the default ones): ``train@diffusion`` too."""
    stages = {}
    for name, stage in yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"].items():
        if "foreach" not in stage:
            stages[name] = stage
            continue
        assert stage["foreach"] == "${generators}", name
        for family in FAMILIES:
            text = yaml.safe_dump(stage["do"]).replace("${item}", family)
            stages[f"{name}@{family}"] = yaml.safe_load(text)
    return stages


STAGES = _stages()


def _entry(stage: str) -> str:
    """The stage's script: ``python -m stages.score gan`` → stages/score.py."""
    return STAGES[stage]["cmd"].split()[2].replace(".", "/") + ".py"


# The family modules each stage runs: the registry imports them by name (`Family.module`).
RUNS = {"train": ("train",), "score": ("sampling",), "render": ("galleries", "report")}


def family_closure(stage: str) -> set[str]:
    """What a stage runs of the family packages, and what that imports: ``train@gan`` runs
    families/gan/train.py, ``score@gan`` its sampling.py, ``render`` every family's galleries."""
    kind, _, name = stage.partition("@")
    closure = set()
    for family in [FAMILIES[name]] if name else FAMILIES.values():
        for module in RUNS.get(kind, ()):
            if (family.folder / f"{module}.py").is_file():
                closure |= import_closure(family.folder / f"{module}.py")
    return closure


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_stage_deps_cover_the_code_it_imports(stage):
    deps = [d for d in STAGES[stage]["deps"] if isinstance(d, str)]
    entry = ROOT / _entry(stage)
    assert _entry(stage) in deps
    closure = import_closure(entry)
    closure |= family_closure(stage)
    missing = sorted(f for f in closure
                     if f not in EXEMPT and not inert(f) and not _covered(f, deps))
    assert missing == [], f"{stage}: add to its dvc.yaml deps (or move the code): {missing}"


def test_the_closure_follows_imports_inside_functions(tmp_path):
    # render imports sklearn lazily; evaluate's closure must reach the sampling helpers it calls
    closure = import_closure(ROOT / "stages" / "evaluate.py")
    assert "latentlab/models/sampling.py" in closure and "latentlab/params.py" in closure
    assert "latentlab/tracking.py" in closure  # reached, but exempt: not followed further
    assert not any(f.startswith("pipelines/") for f in closure)


def test_exemptions_exist():
    for rel in EXEMPT:
        assert (ROOT / rel).is_file(), f"{rel} is exempt but does not exist"


def test_one_model_familys_code_does_not_retrain_another():
    """The conv blocks the families share live in models/blocks.py: a change to the autoencoders
    reruns `pretrain` (and what reads its encoder), never a generator family; a family's folder
    reruns its own stages only, never another family's nor the stages before them."""
    for stage in ("pretrain", *(f"train@{name}" for name in FAMILIES)):
        closure = import_closure(ROOT / _entry(stage)) | family_closure(stage)
        assert "latentlab/models/blocks.py" in closure or stage == "train@fastgan"
        autoencoders = "latentlab/models/autoencoders.py"
        assert (autoencoders in closure) == (autoencoders in STAGES[stage]["deps"]) == (
            stage == "pretrain"), stage
        for name in FAMILIES:
            own = stage == f"train@{name}"
            folder = f"latentlab/families/{name}"
            assert any(f.startswith(folder + "/") for f in closure) == own, (stage, name)
            assert (folder in STAGES[stage]["deps"]) == own, (stage, name)
    for stage in ("index", "download", "downsample", "pretrain", "finetune", "evaluator",
                  "evaluate"):
        assert not any(d.startswith("latentlab/families/") and d.count("/") > 2
                       or d == "latentlab/families" for d in STAGES[stage]["deps"]), stage
