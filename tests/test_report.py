"""The report of the tiny project built once per session: files, DVC metrics/plots, and a real
browser."""

from __future__ import annotations

import json
import re

import pytest

from latentlab.compare import natural
from latentlab.report import fmt, write_report
from tests.support.browser import chromium, keep_screenshot, needs_chromium
from tests.support.project import dvc

pytestmark = pytest.mark.slow


def test_report_lists_every_gallery_and_metrics_table(built):
    html = (built.project / "reports/index.html").read_text()
    sources = re.findall(r"<img src='([^']+)'", html)
    assert len(sources) >= 15
    for src in sources:
        assert (built.project / "reports" / src).is_file(), src
    assert not re.search(r"(src|href)=['\"](https?:)?//", html)  # nothing from the network
    for title in ("Label efficiency", "Generation vs the test split", "floor: held-out real",
                  "ceiling: per-pixel Gaussian", "git revision", "Params"):
        assert title in html
    # A table of contents whose every link lands on a section or table of the page.
    anchors = set(re.findall(r"id='([^']+)'", html))
    links = re.findall(r"href='#([^']+)'", html)
    metric_tables = html.split("id='metrics'")[1].split("<h2")[0].count("<table>")
    assert len(links) >= metric_tables + 3 and set(links) <= anchors  # + metrics, galleries, params
    assert metric_tables >= 6 and html.count("<p class='note'>") >= metric_tables
    assert "both mapped to the supervised evaluator" in html
    assert "Géron's notebook val_loss" not in html  # a Fashion-MNIST reference, not for digits
    assert "source digits, 8×8×1 images" in html
    summary = (built.project / "reports/summary.md").read_text()
    assert "| VAE |" in summary and "| GAN |" in summary
    for family in ("gan", "vae"):
        gif = built.project / f"reports/galleries/{family}_progress.gif"
        assert gif.read_bytes()[:6] == b"GIF89a" and f"galleries/{family}_progress.gif" in html


def test_metrics_files_per_model_and_anchor_sanity(built):
    anchors = json.loads((built.project / "metrics/evaluate/anchors.json").read_text())
    floor, ceiling = anchors["real_holdout"], anchors["pixel_gaussian"]
    # Held-out real images are far closer to the test split than a per-pixel Gaussian.
    assert floor["frechet_distance"] < ceiling["frechet_distance"]
    assert floor["precision"] > ceiling["precision"]
    assert floor["classes_covered"] == 10
    ae = json.loads((built.project / "metrics/evaluate/autoencoder.json").read_text())
    assert {"mse", "psnr", "ssim", "denoising_gain_db"} <= set(ae)
    for name in ("vae", "gan"):
        values = json.loads((built.project / f"metrics/evaluate/{name}.json").read_text())
        assert {"frechet_distance", "kid", "precision", "recall", "classes_covered",
                "memorization_ratio"} <= set(values)
    shown = dvc(built.project, "metrics", "show", "--json").stdout
    assert "frechet_distance" in shown and "test_accuracy" in shown


def test_dvc_plots_show_renders_histories_and_galleries(built, tmp_path):
    dvc(built.project, "plots", "show", "-o", str(tmp_path / "dvc_plots"))
    page = (tmp_path / "dvc_plots/index.html").read_text()
    assert "label_efficiency" in page and "gan_history" in page
    assert "reports/galleries/gan_samples.png" in page or "gan_samples.png" in page


@needs_chromium
def test_report_opens_in_headless_chromium_with_every_image_loaded(built, tmp_path):
    with chromium(tmp_path / "chromium", 1280, 2400) as driver:
        driver.get((built.project / "reports/index.html").as_uri())
        images = driver.execute_script(
            "return Array.from(document.images).map(i => [i.getAttribute('src'), i.complete, i.naturalWidth])")
        assert len(images) >= 15
        broken = [src for src, complete, width in images if not complete or width == 0]
        assert broken == []
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert errors == []
        assert keep_screenshot(driver, "report").stat().st_size > 10_000


@needs_chromium
def test_a_wide_table_scrolls_inside_the_page(tmp_path):
    """A table wider than the window (a stage logging dozens of metrics) scrolls within itself;
    the page keeps its width."""
    header = ["run", *(f"metric_{i:02d}_mean" for i in range(60))]
    write_report(tmp_path, {"dataset": "digits"}, "rev", {}, [], "",
                 [("finetune: last 2 runs", header, [[f"run{r}", *["0.8123"] * 60] for r in (1, 2)])])
    with chromium(tmp_path / "chromium", 1280, 900) as driver:
        driver.get((tmp_path / "index.html").as_uri())
        page, window, table = driver.execute_script(
            "const t = document.querySelector('h3#finetune-last-2-runs + table');"
            "return [document.documentElement.scrollWidth, window.innerWidth, t.scrollWidth];")
    assert table > window >= page, (table, window, page)


def test_cells_and_rows_read_as_numbers():
    assert [fmt(v) for v in (54000.0, 0.81234, 1e-05, 7)] == ["54000", "0.8123", "1e-05", "7"]
    names = ["labels_1000.probe", "labels_100.probe", "labels_500.probe", "labels_54000.probe"]
    assert sorted(names, key=natural) == [names[1], names[2], names[0], names[3]]


def test_the_fashion_mnist_reference_shows_on_fashion_mnist_alone(tmp_path):
    metrics = {"vae": {"val_loss": 0.0312}}
    fashion = {"dataset": "fashion_mnist", "source": "fashion_mnist", "image_shape": [28, 28, 1],
               "counts": {"train": 54000}, "class_names": [str(i) for i in range(10)]}
    for data, shown in ((fashion, True), ({**fashion, "image_shape": [32, 32, 3]}, False),
                        ({**fashion, "source": "folder"}, False)):
        write_report(tmp_path, data, "rev", metrics, [], "")
        html = (tmp_path / "index.html").read_text()
        assert ("Géron&#x27;s notebook val_loss" in html) is shown, data


def test_the_label_efficiency_table_names_each_classifier_and_the_gain_over_the_best_baseline(
        tmp_path):
    def point(labels, pretrained, logreg, knn):
        scores = {"pretrained": pretrained, "scratch": 0.6, "probe": 0.65, "pixel_logreg": logreg,
                  "pixel_knn": knn}
        return {"labels": labels, "gain_over_scratch": pretrained - 0.6,
                **{f"{k}_mean": v for k, v in scores.items()},
                **{f"{k}_std": 0.01 for k in scores}}

    data = {"dataset": "d", "source": "digits", "image_shape": [8, 8, 1], "counts": {},
            "class_names": ["a", "b"]}
    semi = {**point(100, 0.729, 0.712, 0.643), "semi_pretrained_mean": 0.754,
            "semi_pretrained_std": 0.011}
    for curve, said in (
            ([point(100, 0.729, 0.712, 0.643), point(1000, 0.842, 0.796, 0.754)],
             "With 100 labels the pretrained classifier scores 72.9 %, 1.7 points above the best "
             "baseline (pixel LogReg, 71.2 %): what pretraining bought."),
            ([semi], "With 100 labels the semi pretrained classifier scores 75.4 %, 4.2 points "
                     "above the best baseline (pixel LogReg, 71.2 %): what pretraining and the "
                     "unlabeled images bought."),
            ([point(50, 0.60, 0.55, 0.62)],
             "With 50 labels the pretrained classifier scores 60.0 %, 2.0 points below the best "
             "baseline (pixel k-NN, 62.0 %)")):
        metrics = {"finetune": {f"labels_{p['labels']}": p for p in curve}}
        write_report(tmp_path, data, "rev", metrics, [], "")
        page = (tmp_path / "index.html").read_text()
        for column in ("pretrained", "scratch", "linear probe", "pixel LogReg", "pixel k-NN"):
            assert f"<th>{column}</th>" in page
        assert said in page, page
