"""Every source fetches into data/raw and streams back: digits, folders of images, TFDS."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil

import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image

from latentlab.data import sources, tfds_source
from latentlab.data.local_dir import index, write_index
from latentlab.data.raw import UNLABELED
from latentlab.errors import UserError
from tests.support.data import make_image_folder, make_params


def fetch(tmp_path, **data):
    out = tmp_path / "raw"
    out.mkdir(exist_ok=True)
    meta = sources.fetch(make_params(data=data).data, out)
    return out, meta


def test_digits_are_the_real_sklearn_digits(tmp_path):
    from sklearn.datasets import load_digits

    out, meta = fetch(tmp_path, source="digits")
    raw = sources.open_raw(out)
    assert raw.class_names == [str(d) for d in range(10)]
    assert list(raw.splits) == ["train"]
    assert np.array_equal(raw.splits["train"].labels, load_digits().target)
    images = [img for _, img in raw.splits["train"].stream()]
    assert len(images) == 1797 and images[0].shape == (8, 8)
    assert max(img.max() for img in images) == 255  # 0..16 stretched to 0..255


def test_labeled_folder_writes_a_manifest_and_streams_files_in_place(tmp_path):
    root = tmp_path / "animals"
    make_image_folder(root, ["cat", "dog", "fox"], per_class=4,
                      formats=("JPEG", "PNG", "GIF", "BMP", "WEBP"))
    (root / "notes.txt").write_text("not an image")
    (root / ".DS_Store").write_bytes(b"\0")
    out, meta = fetch(tmp_path, source="folder", local_dir=str(root))
    assert meta["class_names"] == ["cat", "dog", "fox"]
    assert meta["skipped"] == {"not_an_image": 1, "not_a_regular_file": 0}
    with (out / "manifest.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 12
    assert {r["path"].split("/")[0] for r in rows} == {"cat", "dog", "fox"}
    assert {r["path"].rsplit(".", 1)[1] for r in rows} == {"jpg", "png", "gif", "bmp", "webp"}
    first = root / rows[0]["path"]
    assert int(rows[0]["size"]) == first.stat().st_size
    assert len(rows[0]["sha256"]) == 64
    raw = sources.open_raw(out)
    assert np.bincount(raw.splits["train"].labels).tolist() == [4, 4, 4]
    assert not list(out.glob("**/*.jpg")), "the images must not be copied"
    streamed = list(raw.splits["train"].stream())
    assert streamed[0][1] == str(first)


def test_manifest_changes_when_an_image_changes(tmp_path):
    root = tmp_path / "pics"
    make_image_folder(root, None, per_class=3)
    out, _ = fetch(tmp_path, source="folder", local_dir=str(root))
    before = (out / "manifest.csv").read_text()
    target = sorted(root.iterdir())[0]
    Image.new("RGB", (50, 60), (1, 2, 3)).save(target, format="JPEG")
    out, _ = fetch(tmp_path, source="folder", local_dir=str(root))
    assert (out / "manifest.csv").read_text() != before


def test_flat_folder_is_unlabeled(tmp_path):
    root = tmp_path / "pokemon"
    make_image_folder(root, None, per_class=5, formats=("PNG",))
    out, meta = fetch(tmp_path, source="folder", local_dir=str(root))
    raw = sources.open_raw(out)
    assert raw.class_names is None and meta["class_names"] is None
    assert (raw.splits["train"].labels == UNLABELED).all() and len(raw.splits["train"]) == 5


def test_loose_files_beside_class_folders_are_left_out_and_counted(tmp_path):
    root = tmp_path / "dogs"
    make_image_folder(root, ["husky", "pug"], per_class=2)
    make_image_folder(root, None, per_class=1, seed=5)
    _, meta = fetch(tmp_path, source="folder", local_dir=str(root))
    assert meta["skipped"] == {"not_an_image": 1, "not_a_regular_file": 0}


def test_entries_that_are_not_regular_files_are_listed_without_being_opened(tmp_path):
    root = tmp_path / "imgs"
    make_image_folder(root, ["a"], per_class=2)
    os.mkfifo(root / "a" / "pipe.png")  # opening it would block forever
    (root / "a" / "broken.png").symlink_to(tmp_path / "nowhere.png")
    (root / "a" / "link.png").symlink_to(next((root / "a").glob("*.jpg")))
    (root / ".cache").mkdir()
    (root / ".cache" / "x.png").write_bytes(b"hidden")
    listing = index(root, "skip")
    assert sorted(listing["files"]) == sorted(
        p.relative_to(root).as_posix() for p in (root / "a").glob("*")
        if p.name not in ("pipe.png", "broken.png"))
    assert listing["left_out"] == {
        "a/broken.png": f"a broken symlink (to {tmp_path / 'nowhere.png'})",
        "a/pipe.png": "a FIFO (named pipe)",
    }
    _, meta = fetch(tmp_path, source="folder", local_dir=str(root))
    assert meta["skipped"] == {"not_an_image": 0, "not_a_regular_file": 2}
    with pytest.raises(UserError, match=r"broken.png is a broken symlink .* not an image file, "
                                        r"and 1 more .*data.on_bad_image=skip"):
        index(root, "fail")
    assert index(tmp_path / "missing", "fail")["exists"] is False


def test_class_folders_that_are_symlinks_are_followed_and_a_loop_is_left_out(tmp_path):
    root, elsewhere = tmp_path / "animals", tmp_path / "elsewhere"
    make_image_folder(root, ["cat"], per_class=15)
    make_image_folder(elsewhere, ["dog", "fox"], per_class=15, seed=1)
    for name in ("dog", "fox"):
        (root / name).symlink_to(elsewhere / name, target_is_directory=True)
    (root / "cat" / "again").symlink_to(root, target_is_directory=True)  # a loop
    listing = index(root, "skip")
    assert len(listing["files"]) == 45
    assert listing["left_out"] == {"cat/again": f"a symlink loop (to {root})"}
    out, meta = fetch(tmp_path, source="folder", local_dir=str(root))
    assert meta["class_names"] == ["cat", "dog", "fox"]
    assert meta["skipped"] == {"not_an_image": 0, "not_a_regular_file": 1}
    assert np.bincount(sources.open_raw(out).splits["train"].labels).tolist() == [15, 15, 15]


def test_the_folder_listing_names_contents_so_a_copy_lists_the_same(tmp_path):
    # A fresh clone or a `dvc exp run --temp` workspace holds new copies of the same files: their
    # listing must match, or `download` reruns for nothing. A changed image must change it.
    root = tmp_path / "imgs"
    make_image_folder(root, ["a", "b"], per_class=3)
    out = tmp_path / "listing" / "local_dir.json"
    first = write_index(root, out, "skip")
    copy = tmp_path / "copy"
    shutil.copytree(root, copy)  # new inodes and mtimes
    os.utime(next(copy.rglob("*.jpg")), ns=(1, 1))
    assert index(copy, "skip")["files"] == first["files"]

    # An unchanged file is not read again: its hash comes from the stat cache beside the listing.
    state_path = out.with_name(".local_dir.state.json")
    state = json.loads(state_path.read_text())
    image = sorted(root.rglob("*.jpg"))[0]
    state[str(image.absolute())][3] = "from-the-cache"
    state_path.write_text(json.dumps(state))
    relative = image.relative_to(root).as_posix()
    assert write_index(root, out, "skip")["files"][relative][1] == "from-the-cache"

    # A rewritten file (new mtime) is hashed again, and a changed content changes the listing.
    Image.new("RGB", (20, 20), (1, 2, 3)).save(image, format="JPEG")
    changed = write_index(root, out, "skip")["files"]
    assert changed[relative][1] not in ("from-the-cache", first["files"][relative][1])
    assert json.loads(out.read_text())["files"] == changed


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        ("empty", r"no images found \(JPEG, PNG, GIF, BMP or WebP\); the folder is empty"),
        ("missing", "is not a directory"),
        ("only_text", r"no images found .*; it holds 1 .md file: check data.local_dir"),
        ("only_svg", r"no images found .*; it holds 3 .svg files: vector images are not "
                     r"supported, rasterise them to PNG first \(e.g. `rsvg-convert"),
    ],
)
def test_folder_errors(tmp_path, setup, expected):
    root = tmp_path / "imgs"
    if setup != "missing":
        root.mkdir()
    if setup == "only_text":
        (root / "readme.md").write_text("x")
    if setup == "only_svg":
        for name in "abc":
            (root / f"{name}.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg"/>')
    with pytest.raises(UserError, match=expected):
        fetch(tmp_path, source="folder", local_dir=str(root))


def test_non_image_files_fail_when_asked(tmp_path):
    root = tmp_path / "imgs"
    make_image_folder(root, ["a", "b"], per_class=2)
    (root / "a" / "labels.csv").write_text("x")
    with pytest.raises(UserError, match=r"labels.csv: not an image file .*data.on_bad_image=skip"):
        fetch(tmp_path, source="folder", local_dir=str(root), on_bad_image="fail")


def _png_bytes(example_image: bytes) -> tuple[int, ...]:
    return np.asarray(Image.open(io.BytesIO(example_image))).shape


@pytest.fixture
def no_reachability_probe(monkeypatch):
    """mock_data replaces the builder's download; the probe that precedes it has nothing to do."""
    monkeypatch.setattr(tfds_source, "_check_reachable", lambda *args, **kwargs: None)


# The real builder path is tests/test_tfds.py; mock_data adds other datasets' feature layouts.
@pytest.mark.usefixtures("no_reachability_probe")
@pytest.mark.parametrize(("name", "classes", "channels"), [("mnist", 10, 1)])
def test_tfds_labeled_dataset_from_tfds_mock_data(tmp_path, name, classes, channels):
    with tfds.testing.mock_data(num_examples=6):
        out, meta = fetch(tmp_path, source=f"tfds:{name}",
                          tfds_splits={"train": "train", "test": "test"})
        raw = sources.open_raw(out)
        assert meta["image_key"] == "image" and meta["label_key"] == "label"
        assert len(raw.class_names) == classes
        assert set(raw.splits) == {"train", "test"}
        assert len(raw.splits["train"]) == 6
        assert ((raw.splits["train"].labels >= 0) & (raw.splits["train"].labels < classes)).all()
        names, payloads = zip(*raw.splits["test"].stream())
    assert names[0] == f"tfds:{name}/test[0]"
    shape = _png_bytes(payloads[0])
    assert (len(shape) == 2 and channels == 1) or shape[-1] == channels


@pytest.mark.usefixtures("no_reachability_probe")
def test_tfds_dataset_without_labels_is_unlabeled(tmp_path):
    with tfds.testing.mock_data(num_examples=4):
        out, meta = fetch(tmp_path, source="tfds:celeb_a")
        raw = sources.open_raw(out)
        assert meta["label_key"] is None and raw.class_names is None
        assert (raw.splits["train"].labels == UNLABELED).all()
        assert len(list(raw.splits["train"].stream())) == 4


def test_tfds_errors_name_the_dataset(tmp_path):
    with pytest.raises(UserError, match="no such TFDS dataset"):
        fetch(tmp_path, source="tfds:no_such_dataset_xyz")
    with tfds.testing.mock_data(num_examples=2):
        with pytest.raises(UserError, match="tfds:imdb_reviews has no image feature"):
            fetch(tmp_path, source="tfds:imdb_reviews")


def test_source_json_missing_tells_to_run_download(tmp_path):
    with pytest.raises(UserError, match="run the download stage first"):
        sources.open_raw(tmp_path)


def test_class_folders_that_link_to_each_other_list_each_image_once_under_its_own_class(tmp_path):
    root = tmp_path / "animals"
    make_image_folder(root, ["c1", "c2"], per_class=20)
    (root / "c1" / "to2").symlink_to("../c2", target_is_directory=True)
    (root / "c2" / "to1").symlink_to("../c1", target_is_directory=True)
    listing = index(root, "skip")
    assert len(listing["files"]) == 40
    assert sorted(listing["left_out"]) == ["c1/to2", "c2/to1"]
    assert "a folder of the tree itself" in listing["left_out"]["c1/to2"]
    out, meta = fetch(tmp_path, source="folder", local_dir=str(root))
    assert np.bincount(sources.open_raw(out).splits["train"].labels).tolist() == [20, 20]
    with pytest.raises(UserError, match=r"c1/to2 is a symlink to c2, a folder of the tree itself"):
        index(root, "fail")
