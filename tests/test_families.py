"""A generator family is one package: a new folder under latentlab/families/ (and its block in
params.yaml) is trained, scored, rendered, plotted and sampled, with no other edit."""

from __future__ import annotations

import shutil
import subprocess
import sys

import yaml

from latentlab.families import FAMILIES
from tests.support.project import ROOT, commit_all, dvc, dvc_env, ran

TOY = ROOT / "tests" / "support" / "toy_family"


def test_a_new_family_folder_is_trained_scored_rendered_and_sampled(built_copy, tmp_path):
    project = built_copy
    subprocess.run(["git", "add", "-A"], cwd=project, check=True)
    commit_all(project, "the built outputs")
    shutil.copytree(TOY, project / "latentlab/families/toy")
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["generators"] = [*params["generators"], "toy"]
    params["train_toy"] = {"latent": 4, "images_seen": 512, "batch_size": 64}
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    # Code outside the new folder is untouched: git sees params.yaml and the folder only.
    changed = subprocess.run(["git", "status", "--porcelain"], cwd=project, check=True,
                             capture_output=True, text=True).stdout.split("\n")
    assert sorted(line[3:] for line in changed if line) == [
        "latentlab/families/toy/", "params.yaml"]
    subprocess.run(["git", "add", "-A"], cwd=project, check=True)
    commit_all(project, "a toy family")

    proc = dvc(project, "repro")
    # Adding a family reruns nothing of the others': its stages and the report only (and
    # `index`, which always runs: it lists the data folder).
    assert ran(proc) == {"index", "train@toy", "score@toy", "render"}, proc.stdout

    assert (project / "models/toy/generator.keras").is_file()
    assert "loss" in (project / "metrics/toy.json").read_text()
    scores = yaml.safe_load((project / "metrics/evaluate/toy.json").read_text())
    assert {"frechet_distance", "ladder_position", "verdict"} <= set(scores)
    assert "train_toy.images_seen" in scores["verdict"] or "pictures" in scores["verdict"]
    page = (project / "reports/index.html").read_text()
    assert "Toy training" in page and "galleries/toy_samples.png" in page
    assert "galleries/loss_toy.png" in page  # its loss curve, from the history it declared
    assert f"<td>Toy</td><td>{scores['verdict'][:40]}" in page.replace("&#x27;", "'")
    plots = dvc(project, "plots", "show", "--json").stdout
    assert "toy_history" in plots

    out = tmp_path / "drawn"
    drawn = subprocess.run([sys.executable, "-m", "latentlab.cli", "sample",
                            "models/toy/generator.keras", "-n", "3", "-o", str(out)],
                           cwd=project, env=dvc_env(), capture_output=True, text=True)
    assert drawn.returncode == 0, drawn.stderr
    assert sorted(p.name for p in out.iterdir()) == [f"sample_0_000{i}.png" for i in range(3)]
    refused = subprocess.run([sys.executable, "-m", "latentlab.cli", "sample",
                              "models/toy/generator.keras", "--eta", "1", "-o", str(out)],
                             cwd=project, env=dvc_env(), capture_output=True, text=True)
    assert refused.returncode == 2 and "this is a toy" in refused.stderr


def test_the_registry_finds_every_family_folder_in_order():
    folders = sorted(p.parent.name for p in (ROOT / "latentlab/families").glob("*/__init__.py"))
    assert sorted(FAMILIES) == folders
    assert list(FAMILIES)[:4] == ["vae", "gan", "fastgan", "diffusion"]
    for family in FAMILIES.values():
        assert family.folder == ROOT / "latentlab/families" / family.name
        assert family.module("train") is not None and family.module("sampling") is not None
        assert family.module("nothing") is None
        plots = yaml.safe_load((family.folder / "dvc.yaml").read_text())["plots"]
        (definition,) = plots[0].values()
        assert definition["y"] == {f"../../../plots/{family.name}_history.csv":
                                   list(family.history)}
