"""downsample: resizing, squaring, channels, seeded stratified splits, bad images, the card."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest
from PIL import Image

from latentlab.data import sources
from latentlab.data.downsample import plan_routes
from latentlab.data.prep import BadImage, Spec, prepare
from latentlab.data.prepared import load_split
from latentlab.data.raw import RawDataset, RawSplit
from latentlab.data.splits import carve, labeled_subset
from latentlab.errors import UserError
from stages import download, downsample
from tests.support.data import make_image_folder, make_params


def test_crop_keeps_the_center_and_pad_keeps_everything():
    # A wide image: left third red, middle green, right third blue.
    image = np.zeros((30, 90, 3), dtype=np.uint8)
    image[:, :30, 0] = image[:, 30:60, 1] = image[:, 60:, 2] = 255
    cropped = prepare(image, Spec(16, 3, "crop"))
    assert cropped.shape == (16, 16, 3)
    assert cropped[..., 1].mean() > 250 and cropped[..., [0, 2]].mean() < 5
    padded = prepare(image, Spec(18, 3, "pad"))
    assert padded.shape == (18, 18, 3)
    middle_row = padded[9]
    assert middle_row[1, 0] > 200 and middle_row[9, 1] > 200 and middle_row[-2, 2] > 200
    # Its border is mostly black: the bands continue it.
    assert padded[0].max() == 0 and padded[-1].max() == 0, "pad bands follow the border colour"


def test_channels_and_transparency():
    rgb = np.full((20, 20, 3), (255, 0, 0), dtype=np.uint8)
    gray = prepare(rgb, Spec(10, 1, "crop"))
    assert gray.shape == (10, 10, 1) and abs(int(gray[0, 0, 0]) - 76) <= 1  # ITU-R 601-2 luma
    assert prepare(np.zeros((8, 8), np.uint8), Spec(8, 3, "crop")).shape == (8, 8, 3)
    sprite = Image.new("RGBA", (12, 12), (0, 0, 0, 0))
    sprite.putpixel((6, 6), (0, 0, 255, 255))
    import io

    buffer = io.BytesIO()
    sprite.save(buffer, format="PNG")
    out = prepare(buffer.getvalue(), Spec(12, 3, "crop"))
    assert tuple(out[0, 0]) == (255, 255, 255), "transparent pixels become white"
    assert tuple(out[6, 6]) == (0, 0, 255)


def _png(image: Image.Image) -> bytes:
    import io

    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.parametrize("channels", [1, 3])
def test_pad_continues_the_images_own_background(channels):
    # A wide photo on a light grey backdrop: the bands added to square it are that grey.
    photo = np.full((20, 40, 3), 200, dtype=np.uint8)
    photo[5:15, 15:25] = (200, 30, 30)
    padded = prepare(photo, Spec(20, channels, "pad"))
    band = padded[:5].reshape(-1, channels)
    assert np.abs(band.astype(int) - padded[0, 0].astype(int)).max() <= 1
    assert 190 <= int(padded[0, 0, 0]) <= 210, "the pad continues the backdrop, not black"
    # A transparent sprite, wider than tall: its transparency and the bands both become white.
    sprite = Image.new("RGBA", (30, 10), (0, 0, 0, 0))
    sprite.paste((0, 0, 255, 255), (12, 2, 18, 8))
    out = prepare(_png(sprite), Spec(30, channels, "pad"))
    assert out[:10].min() == 255 and out[-10:].min() == 255, "white bands around a sprite"


def test_fit_content_crops_a_small_sprite_to_its_bounding_box():
    # A 12×12 object in the middle of a 96×96 transparent canvas, as sprite sheets have them.
    sprite = Image.new("RGBA", (96, 96), (0, 0, 0, 0))
    sprite.paste((255, 0, 0, 255), (42, 40, 54, 52))
    padded = prepare(_png(sprite), Spec(24, 3, "pad"))
    content = prepare(_png(sprite), Spec(24, 3, "content"))
    red = lambda a: ((a[..., 0] > 200) & (a[..., 1] < 80)).mean()  # noqa: E731
    assert red(padded) < 0.05, "padding keeps the object small"
    assert red(content) > 0.9, "content fit makes the object fill the frame"
    # Without transparency the object is told from the border colour.
    photo = np.full((60, 80, 3), 240, dtype=np.uint8)
    photo[20:30, 30:50] = (0, 0, 0)
    framed = prepare(photo, Spec(20, 3, "content"))
    assert framed[8:12, :, 0].max() < 60, "the 20-px wide object spans the frame"
    assert framed[0, 0, 0] > 200, "the bands above and below are the backdrop"


@pytest.mark.parametrize("channels", [1, 3])
def test_16_bit_png_is_scaled_to_8_bits_not_clipped(tmp_path, channels):
    ramp = (np.linspace(0, 65535, 16 * 16).reshape(16, 16)).astype(np.uint16)
    path = tmp_path / "depth.png"
    Image.fromarray(ramp).save(path)  # a real 16-bit grayscale PNG
    assert Image.open(path).mode.startswith("I")
    out = prepare(str(path), Spec(16, channels, "crop"))
    expected = np.round(ramp / 257.0)
    assert np.abs(out[..., 0].astype(int) - expected).max() <= 1
    assert out.min() == 0 and out.max() == 255


def test_undecodable_payload_raises_bad_image(tmp_path):
    path = tmp_path / "x.jpg"
    path.write_bytes(b"nope")
    with pytest.raises(BadImage):
        prepare(str(path), Spec(8, 1, "crop"))


def test_carve_is_seeded_stratified_and_disjoint():
    labels = np.repeat(np.arange(4), [100, 50, 30, 20])
    kept, taken = carve(labels, 0.2, seed=3)
    assert np.array_equal(np.bincount(labels[taken]), [20, 10, 6, 4])
    assert len(np.intersect1d(kept, taken)) == 0 and len(kept) + len(taken) == 200
    again = carve(labels, 0.2, seed=3)
    assert np.array_equal(again[1], taken)
    assert not np.array_equal(carve(labels, 0.2, seed=4)[1], taken)


def test_a_class_with_one_image_stays_in_train_and_the_others_are_still_stratified(caplog):
    labels = np.repeat(np.arange(4), [20, 20, 1, 10])
    with caplog.at_level("WARNING"):
        kept, taken = carve(labels, 0.1, seed=0)
    assert np.array_equal(np.bincount(labels[taken], minlength=4), [2, 2, 0, 1])
    assert 2 in labels[kept]
    assert "Single-image classes: 2" in caplog.text


def test_labeled_subsets_are_stratified_and_nested():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 2000)
    small, large = labeled_subset(labels, 10, seed=1), labeled_subset(labels, 50, seed=1)
    assert np.bincount(labels[small]).tolist() == [10] * 10
    assert np.bincount(labels[large]).tolist() == [50] * 10
    assert set(small) <= set(large)
    assert not np.array_equal(small, labeled_subset(labels, 10, seed=2))


def _raw(train_labels, test_labels=None) -> RawDataset:
    def split(labels):
        return RawSplit(np.asarray(labels), lambda: iter([]))

    splits = {"train": split(train_labels)}
    if test_labels is not None:
        splits["test"] = split(test_labels)
    return RawDataset("t", ["a", "b"], splits, {})


def test_routes_keep_the_sources_test_split_and_carve_the_rest():
    with_test = plan_routes(_raw([0, 1] * 50, [0, 1] * 10), 0.1, 0.3, seed=0)
    assert (with_test["test"] == 2).all()
    assert np.bincount(with_test["train"], minlength=3).tolist() == [90, 10, 0]
    train_only = plan_routes(_raw([0, 1] * 50), 0.1, 0.2, seed=0)
    counts = np.bincount(train_only["train"], minlength=3).tolist()
    assert counts == [70, 10, 20], "fractions are of the whole train split"


def _prepare(tmp_path, data: dict, downsample_block: dict):
    params = make_params(data=data, downsample=downsample_block)
    raw, prepared, card = tmp_path / "raw", tmp_path / "prepared", tmp_path / "card"
    download.run(params, raw)
    meta = downsample.run(params, raw, prepared, card)
    return params, prepared, card, meta


def test_digits_end_to_end_into_arrays_and_a_card(tmp_path):
    _, prepared, card, meta = _prepare(
        tmp_path, {"source": "digits"}, {"image_size": 16, "val_fraction": 0.1, "test_fraction": 0.2}
    )
    train, train_labels = load_split(prepared, "train")
    test, test_labels = load_split(prepared, "test")
    assert train.shape[1:] == (16, 16, 1) and train.dtype == np.uint8
    val_count = meta["counts"]["val"]
    assert meta["counts"] == {"train": len(train), "val": val_count, "test": len(test)}
    assert len(train) + val_count + len(test) == 1797
    assert abs(val_count - 180) <= 5 and abs(len(test) - 359) <= 5  # rounded per class
    # Stratified: every class has about the same share in every split.
    shares = np.bincount(test_labels, minlength=10) / np.bincount(train_labels, minlength=10)
    assert shares.min() > 0.25 and shares.max() < 0.33
    card_json = json.loads((card / "card.json").read_text())
    assert card_json["splits"]["val"]["count"] == val_count
    assert sum(card_json["splits"]["test"]["class_counts"].values()) == len(test)
    for split in ("train", "val", "test"):
        grid = Image.open(card / f"{split}_samples.png")
        assert grid.size[0] > 100
    assert "| **total** |" in (card / "card.md").read_text()


def test_same_seed_same_arrays_other_seed_other_split(tmp_path):
    a = _prepare(tmp_path / "a", {"source": "digits"}, {"image_size": 8})[1]
    b = _prepare(tmp_path / "b", {"source": "digits"}, {"image_size": 8})[1]
    for name in ("train_images.npy", "val_labels.npy", "test_images.npy"):
        assert (a / name).read_bytes() == (b / name).read_bytes()
    params = make_params(base={"seed": 7}, data={"source": "digits"}, downsample={"image_size": 8})
    downsample.run(params, tmp_path / "a" / "raw", tmp_path / "c", tmp_path / "c_card")
    assert (tmp_path / "c" / "val_labels.npy").read_bytes() != (a / "val_labels.npy").read_bytes()


def test_folder_with_corrupt_images_skips_and_counts_them(tmp_path):
    root = tmp_path / "animals"
    bad = make_image_folder(root, ["cat", "dog"], per_class=30, corrupt=4)
    _, prepared, card, meta = _prepare(
        tmp_path, {"source": "folder", "local_dir": str(root)},
        {"image_size": 32, "channels": 3, "workers": 2, "chunk_size": 7},
    )
    total = sum(meta["counts"].values())
    assert total == 60 and meta["skipped"]["undecodable"] == 4
    assert sorted(meta["undecodable_files"]) == sorted(str(p) for p in bad)
    images, _ = load_split(prepared, "train")
    assert images.shape[1:] == (32, 32, 3) and len(images) == meta["counts"]["train"]
    assert json.loads((card / "card.json").read_text())["skipped"]["undecodable"] == 4


def test_workers_do_not_change_the_result(tmp_path):
    root = tmp_path / "pics"
    make_image_folder(root, ["a", "b"], per_class=15, corrupt=2)
    one = _prepare(tmp_path / "one", {"source": "folder", "local_dir": str(root)},
                   {"image_size": 24, "channels": 3, "workers": 1})[1]
    two = _prepare(tmp_path / "two", {"source": "folder", "local_dir": str(root)},
                   {"image_size": 24, "channels": 3, "workers": 2, "chunk_size": 3})[1]
    for split in ("train", "val", "test"):
        for kind in ("images", "labels"):
            name = f"{split}_{kind}.npy"
            assert (one / name).read_bytes() == (two / name).read_bytes(), name


def test_a_corrupt_image_fails_when_asked_and_leaves_no_output(tmp_path):
    root = tmp_path / "animals"
    make_image_folder(root, ["cat", "dog"], per_class=5, corrupt=1)
    params = make_params(data={"source": "folder", "local_dir": str(root), "on_bad_image": "fail"})
    download.run(params, tmp_path / "raw")
    with pytest.raises(UserError, match=r"broken_000.jpg: cannot be decoded"):
        downsample.run(params, tmp_path / "raw", tmp_path / "prepared", tmp_path / "card")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["animals", "raw"]


def test_a_folder_that_changed_since_download_is_an_error(tmp_path):
    root = tmp_path / "pics"
    make_image_folder(root, None, per_class=6)
    params = make_params(data={"source": "folder", "local_dir": str(root)})
    download.run(params, tmp_path / "raw")
    raw = sources.open_raw(tmp_path / "raw")
    assert len(list(raw.splits["train"].stream())) == 6
    sorted(root.iterdir())[0].unlink()
    with pytest.raises(UserError, match="img_00000.jpg: the file is gone since `download`"):
        downsample.run(params, tmp_path / "raw", tmp_path / "prepared", tmp_path / "card")
    assert not (tmp_path / "prepared").exists() and not (tmp_path / "card").exists()


@pytest.mark.parametrize(("count", "fractions", "expected"), [
    (4, {}, r"has 4 train images: downsample.val_fraction=0.1 of them rounds to no val image. "
            r"Add images \(at least 5\) or raise downsample.val_fraction \(e.g. to 0.25\)"),
    (12, {"test_fraction": 0.02}, r"test_fraction=0.02 of them rounds to no test image"),
    (3, {"val_fraction": 0.5, "test_fraction": 0.5}, r"leaves 0 train images after the val and test"),
])
def test_a_dataset_too_small_for_its_splits_is_refused_before_training(tmp_path, count, fractions,
                                                                       expected):
    root = tmp_path / "few"
    make_image_folder(root, None, per_class=count, sizes=(20, 30))
    params = make_params(data={"source": "folder", "local_dir": str(root)},
                         downsample={"image_size": 16, **fractions})
    download.run(params, tmp_path / "raw")
    with pytest.raises(UserError, match=expected):
        downsample.run(params, tmp_path / "raw", tmp_path / "prepared", tmp_path / "card")
    assert not (tmp_path / "prepared").exists()


@pytest.mark.parametrize("classes", [None, ["cat", "dog"]])
def test_a_folder_of_undecodable_images_is_refused_for_what_it_is(tmp_path, classes):
    root = tmp_path / "empty"
    for folder in [root / c for c in classes] if classes else [root]:
        folder.mkdir(parents=True)
        for i in range(11):
            (folder / f"blank_{i:02d}.png").write_bytes(b"")  # zero-byte PNGs
    params = make_params(data={"source": "folder", "local_dir": str(root)},
                         downsample={"image_size": 16})
    download.run(params, tmp_path / "raw")
    total = 11 * len(classes or [None])
    with pytest.raises(UserError, match=rf"empty: {total} of {total} images could not be decoded "
                                        r"\(e.g. .*blank_00.png: .*\), which leaves 0 train, 0 val "
                                        r"and 0 test images; replace the broken files"):
        downsample.run(params, tmp_path / "raw", tmp_path / "prepared", tmp_path / "card")
    assert not (tmp_path / "prepared").exists() and not (tmp_path / "card").exists()


@pytest.fixture
def small_disk(tmp_path):
    """A real 1 MB file system (tmpfs), where mounting one is allowed (as root)."""
    where = tmp_path / "small"
    where.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(where)],
                             capture_output=True)
    if mounted.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    yield where
    subprocess.run(["umount", str(where)], check=True)


def test_arrays_the_disk_cannot_hold_are_refused_before_writing(tmp_path, small_disk):
    params = make_params(data={"source": "digits"}, downsample={"image_size": 64, "channels": 3})
    download.run(params, tmp_path / "raw")
    # 1,797 images × 64 × 64 × 3 bytes
    with pytest.raises(UserError, match=rf"digits: 1,797 images at 64×64×3 need 22.1 MB in "
                                        rf"{small_disk}, which has 1.0 MB free; lower "
                                        r"downsample.image_size or downsample.channels"):
        downsample.run(params, tmp_path / "raw", small_disk / "prepared", small_disk / "card")
    assert list(small_disk.iterdir()) == []


def test_a_single_class_folder_is_prepared_and_has_nothing_to_classify(tmp_path):
    from latentlab.data.prepared import is_labeled, read_meta
    from latentlab.training.label_efficiency import not_applicable

    root = tmp_path / "pokemon"
    make_image_folder(root, ["pikachu"], per_class=20, sizes=(20, 30))
    _, prepared, _, meta = _prepare(tmp_path, {"source": "folder", "local_dir": str(root)},
                                    {"image_size": 16, "channels": 3})
    assert meta["class_names"] == ["pikachu"] and meta["counts"] == {"train": 16, "val": 2, "test": 2}
    assert not is_labeled(read_meta(prepared))  # the classifier stages skip it, like unlabeled data
    assert "has a single class ('pikachu'), so there is nothing to classify" in not_applicable(prepared)


def _rgba_folder(root, count: int, draw) -> None:
    root.mkdir(parents=True)
    for i in range(count):
        Image.fromarray(draw(i)).save(root / f"sprite_{i:03d}.png")


@pytest.mark.parametrize("draw, message", [
    (lambda i: np.zeros((24, 24, 4), np.uint8),  # fully transparent
     r"every one of the 32 train images is a single flat colour after preparing, e.g. "
     r"\[255, 255, 255\] \(a fully transparent image becomes the background colour"),
    (lambda i: np.full((24, 24, 4), [i * 6, 90, 200, 255], np.uint8),  # flat, of many colours
     r"is a single flat colour"),
    (lambda i: np.tile(np.arange(24, dtype=np.uint8)[:, None, None] * 10, (1, 24, 4)),  # copies
     r"the 32 train images are all one and the same picture"),
])
def test_degenerate_data_stops_at_downsample_in_its_own_words(tmp_path, draw, message):
    _rgba_folder(tmp_path / "sprites", 40, draw)
    params = make_params(data={"source": "folder", "local_dir": str(tmp_path / "sprites")},
                         downsample={"image_size": 16, "channels": 3, "fit": "content"})
    download.run(params, tmp_path / "raw")
    with pytest.raises(UserError, match=message):
        downsample.run(params, tmp_path / "raw", tmp_path / "prepared", tmp_path / "card")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["raw", "sprites"]
