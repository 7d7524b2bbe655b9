"""params.yaml is validated before any work: unknown keys, wrong types, impossible values."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from latentlab.data.splits import labeled_subset
from latentlab.errors import UserError
from latentlab.params import Params, load_params, parse_params, parse_value, with_settings

ROOT = Path(__file__).resolve().parents[1]


def test_project_params_file_is_valid_and_matches_the_defaults():
    params = load_params(ROOT / "params.yaml")
    assert params == Params(), "params.yaml and the schema's defaults drifted apart"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"data": {"sorce": "digits"}}, ["data.sorce: unknown key in block 'data'", "source"]),
        ({"gan": {"epochs": 3}}, ["gan: unknown key in params.yaml", "base, data, downsample"]),
        ({"downsample": {"image_size": "32"}}, ["downsample.image_size", "valid integer", "'32'"]),
        ({"downsample": {"image_size": -3}}, ["downsample.image_size", "greater than or equal to 8"]),
        ({"downsample": {"channels": 2}}, ["downsample.channels", "1 or 3"]),
        ({"downsample": {"val_fraction": 1.5}}, ["downsample.val_fraction", "less than 1"]),
        ({"downsample": {"workers": 0}}, ["downsample.workers", "greater than or equal to 1"]),
        ({"base": {"seed": -1}}, ["base.seed", "greater than or equal to 0"]),
        ({"base": {"seed": True}}, ["base.seed", "valid integer"]),
        ({"data": {"source": "kaggle"}}, ["data.source", "unknown source 'kaggle'", "tfds:<name>"]),
        ({"data": {"source": "tfds:"}}, ["data.source", "unknown source"]),
        ({"data": {"source": "folder:/pics"}}, ["data.source", "data.local_dir='/pics'"]),
        ({"data": {"on_bad_image": "ignore"}}, ["data.on_bad_image", "'skip' or 'fail'"]),
        ({"data": {"mirrors": ["ftp://x/"]}}, ["data.mirrors", "http(s) base URL"]),
        ({"data": {"tfds_splits": {"train": " "}}}, ["data.tfds_splits.train", "split expression"]),
        ({"data": {"tfds_splits": {"dev": "x"}}}, ["data.tfds_splits.dev: unknown key", "test"]),
        ({"train_vae": {"optimizer": "sgd"}}, ["train_vae.optimizer", "'adam' or 'nadam'"]),
        ({"pretrain": {"temperature": 0}}, ["pretrain.temperature", "greater than 0"]),
        ({"evaluate": {"metrics": ["fid"]}}, ["evaluate.metrics.0", "'frechet_distance'", "'kid'"]),
        ({"evaluate": {"metrics": ["kid", "kid"]}}, ["evaluate.metrics", "each generation metric once"]),
        ({"generators": ["gan", "flow"]}, ["generators", "'flow': not a generator family; the "
                                            "families are vae, gan, "]),
        ({"generators": ["gan", "gan"]}, ["generators", "list each generator family once"]),
        ({"evaluate": {"steps_curve": [5]}},
         ["evaluate.steps_curve: this setting is now train_diffusion.steps_curve; move it there"]),
        ({"train_diffusion": {"min_signal": 0.96}}, ["min_signal must be below max_signal"]),
        ({"train_diffusion": {"eta": 2}}, ["train_diffusion.eta", "less than or equal to 1"]),
        ([1, 2], ["expected a mapping of blocks"]),
    ],
)
def test_bad_params_name_the_key_and_what_is_allowed(raw, expected):
    with pytest.raises(UserError) as caught:
        parse_params(raw)
    for fragment in expected:
        assert fragment in str(caught.value)


def test_every_problem_is_reported_at_once():
    with pytest.raises(UserError) as caught:
        parse_params({"downsample": {"image_size": 3, "fit": "stretch"}, "data": {"x": 1}})
    message = str(caught.value)
    assert "downsample.image_size" in message and "downsample.fit" in message and "data.x" in message


def test_params_are_frozen_and_hash_by_block():
    a, b = Params(), parse_params({"downsample": {"image_size": 32}})
    assert a.block_hash("data") == b.block_hash("data")
    assert a.block_hash("downsample") != b.block_hash("downsample")
    with pytest.raises(Exception):
        a.base.seed = 1  # type: ignore[misc]


def test_invalid_yaml_and_missing_file(tmp_path):
    bad = tmp_path / "params.yaml"
    bad.write_text("base: {seed: [")
    with pytest.raises(UserError, match="not valid YAML"):
        load_params(bad)
    with pytest.raises(UserError, match="params file not found"):
        load_params(tmp_path / "nope.yaml")


def test_params_are_read_as_yaml_1_2_like_dvc_writes_them(tmp_path):
    path = tmp_path / "params.yaml"
    # What `dvc exp run -S train_vae.learning_rate=0.00001` writes, and exponents typed by hand.
    path.write_text("train_vae:\n  learning_rate: 1e-05\npretrain:\n  learning_rate: 1e-3\n")
    params = load_params(path)
    assert params.train_vae.learning_rate == 1e-05 and params.pretrain.learning_rate == 0.001
    path.write_text("train_gan:\n  replay: yes\n")  # YAML 1.1's boolean is a string in 1.2
    with pytest.raises(UserError, match="train_gan.replay: Input should be a valid boolean"):
        load_params(path)


def test_a_block_written_twice_is_an_error_not_a_merge(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("pretrain:\n  epochs: 3\ntrain_gan:\n  epochs: 2\npretrain:\n  codings: 8\n")
    with pytest.raises(UserError, match=r"params.yaml: key 'pretrain' is written twice \(lines 1 "
                                        r"and 5\); write each key once"):
        load_params(path)


def test_flow_overrides_are_parsed_and_written_as_dvc_does(tmp_path):
    from pipelines.flow import apply_overrides

    assert parse_value("1e-05", "train_vae.learning_rate") == 1e-05
    assert parse_value("true", "train_gan.replay") is True
    (tmp_path / "params.yaml").write_text("train_vae:\n  images_seen: 1350000  # Géron's notebook\n")
    apply_overrides(tmp_path, {"train_vae.learning_rate": 1e-05})
    text = (tmp_path / "params.yaml").read_text()
    assert "# Géron's notebook" in text  # comments kept, as `dvc exp run -S` keeps them
    assert load_params(tmp_path / "params.yaml").train_vae.learning_rate == 1e-05


def test_command_line_settings_are_set_as_dvc_sets_them_and_validated():
    params = load_params(ROOT / "params.yaml")
    changed = with_settings(params, ["train_fastgan.spectral_norm=true",
                                     "train_vae.learning_rate=1e-05"])
    assert changed.train_fastgan.spectral_norm is True
    assert changed.train_vae.learning_rate == 1e-05  # YAML 1.2: a float, not a string
    assert changed.train_gan == params.train_gan
    assert with_settings(params, ["augment=shift_flip"], block="finetune").finetune.augment == (
        "shift_flip")
    with pytest.raises(UserError, match=r"--set train_gan.replay: write KEY=VALUE"):
        with_settings(params, ["train_gan.replay"])
    with pytest.raises(UserError, match=r"-S .*train_fastgan.spectral_norm.*"):
        with_settings(params, ["train_fastgan.spectral_norm=[1]"], "-S")
    with pytest.raises(UserError, match=r"^--set train_fastgan.width=\[1: not valid YAML"):
        with_settings(params, ["train_fastgan.width=[1"])  # the flag it came with is named


def test_more_labels_per_class_than_exist_is_rejected():
    labels = np.array([0] * 50 + [1] * 7 + [2] * 30)
    with pytest.raises(UserError, match=r"labels_per_class=8: class 1 has only 7 .* at most 7"):
        labeled_subset(labels, 8, seed=0)
    with pytest.raises(UserError, match="positive"):
        labeled_subset(labels, -1, seed=0)
    with pytest.raises(UserError, match="unlabeled"):
        labeled_subset(np.full(10, -1), 1, seed=0)


@pytest.mark.parametrize("stage", ["download", "downsample"])
def test_a_stage_with_bad_params_exits_non_zero_before_any_work(tmp_path, stage):
    (tmp_path / "params.yaml").write_text(
        yaml.safe_dump({"downsample": {"image_size": 0}, "data": {"source": "digits"}})
    )
    proc = subprocess.run(
        [sys.executable, "-m", f"stages.{stage}"], cwd=tmp_path, capture_output=True, text=True,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 2
    assert "downsample.image_size" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml"], "stage wrote something"


def test_a_profile_prints_dvc_flags_that_parse_back_to_valid_params(tmp_path, monkeypatch):
    import shlex

    from latentlab import cli
    from pipelines.flow import with_overrides

    monkeypatch.chdir(ROOT)
    line = subprocess.run([str(Path(sys.executable).parent / "latentlab"), "profile", "flowers64"],
                          capture_output=True, text=True, check=True).stdout
    words = shlex.split(line)  # what the shell hands `dvc exp run`
    assert words[::2] == ["-S"] * (len(words) // 2)
    overrides = {k: parse_value(v, k) for k, v in (w.split("=", 1) for w in words[1::2])}
    assert overrides["data.tfds_splits.val"] == "validation[:50%]"
    assert overrides["finetune.labels_per_class"] == [1, 5, 10]
    params = with_overrides(ROOT, overrides)
    assert params["downsample"]["image_size"] == 64 and params["train_gan"]["spectral_norm"] is True
    assert params["generators"] == ["vae", "gan", "diffusion"]  # a top-level list, as DVC reads it

    sweeps = []
    for other in sorted((ROOT / "profiles").glob("*.yaml")):  # every profile is valid
        overrides, points = cli.read_profile(other.stem)
        if points is None:
            flags = cli.profile_flags(other.stem)
            pairs = (w.split("=", 1) for w in flags[1::2])
            assert {k: parse_value(v, k) for k, v in pairs} == overrides
        else:  # a sweep: the flow runs its points; `latentlab profile` says so
            sweeps.append(other.stem)
            with pytest.raises(UserError, match=f"profile '{other.stem}' is a sweep of "
                               f"{len(points)} runs, not one: run it with `python -m "
                               f"pipelines.flow --profile {other.stem}`"):
                cli.profile_flags(other.stem)
        for point in points or [{}]:
            with_overrides(ROOT, {**overrides, **point})
    assert sweeps == ["diffaugment", "gan_modes"]

    (tmp_path / "broken.yaml").write_text("train_gan:\n  upsample: bilinear\n")
    monkeypatch.setattr(cli, "PROFILES", tmp_path)
    with pytest.raises(UserError, match="train_gan.upsample: Input should be 'transpose' or 'resize'"):
        cli.profile_flags("broken")
    (tmp_path / "points.yaml").write_text("sweep:\n  - {}\n  - train_gan.upsample: bilinear\n")
    with pytest.raises(UserError, match=r"params.yaml with profile points, point 1 is invalid:\s+"
                                        "train_gan.upsample: Input should be"):
        cli.read_profile("points")
    (tmp_path / "points.yaml").write_text("sweep: {train_gan.replay: true}\n")
    with pytest.raises(UserError, match="sweep: write a list of points, each a mapping of params "
                                        "keys to values"):
        cli.read_profile("points")


def test_profiles_are_read_from_the_project_latentlab_runs_in(tmp_path, monkeypatch):
    """Not from beside the installed package: a venv shared by two checkouts lists each one's."""
    from latentlab import cli

    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "mine.yaml").write_text("train_gan:\n  latent: 7\n")
    (tmp_path / "params.yaml").write_text("{}\n")
    monkeypatch.chdir(tmp_path)
    assert cli.profile_flags("mine") == ["-S", "train_gan.latent=7"]
    with pytest.raises(UserError, match="no profile 'flowers64'; the profiles are: mine"):
        cli.profile_flags("flowers64")
    monkeypatch.chdir(tmp_path / "profiles")
    with pytest.raises(UserError, match="no profiles/ folder in .*; run `latentlab profile` in "
                                        "the project's folder"):
        cli.profile_flags("mine")
