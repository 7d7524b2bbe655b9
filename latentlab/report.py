"""The report: one self-contained HTML page (relative image paths, no network) and a Markdown
summary, built from the metrics files, the params and the galleries."""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass
from pathlib import Path

from latentlab import ladder
from latentlab.families import FAMILIES
from latentlab.io import write_text_atomic

# Generation metrics shown as columns, in order, with what "better" means.
GENERATION_COLUMNS = [
    ("ladder_position", "ladder ↓"), ("frechet_distance", "FD ↓"), ("fd_spread", "FD ±"),
    ("kid", "KID ↓"), ("precision", "precision ↑"), ("recall", "recall ↑"), ("classes_covered", "classes ≥1%"),
    ("kl_to_reference", "KL(classes‖real) ↓"), ("memorization_ratio", "NN-to-train ratio"),
]


def fmt(value) -> str:
    """A table cell: 4 significant digits, whole numbers in full."""
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e12 else f"{value:.4g}"
    return str(value)


@dataclass
class Table:
    title: str
    header: list[str]
    rows: list[list[str]]
    note: str = ""  # one line under the title: what is measured, which way is better

    @property
    def anchor(self) -> str:
        return re.sub(r"[^a-z0-9]+", "-", self.title.lower()).strip("-")[:60]


def pairs(values: dict) -> list[list[str]]:
    return [[k, fmt(v)] for k, v in values.items()]


LABEL_KINDS = (("pretrained", "pretrained"), ("scratch", "scratch"), ("probe", "linear probe"),
               ("pixel_logreg", "pixel LogReg"), ("pixel_knn", "pixel k-NN"),
               ("semi_pretrained", "semi pretrained"), ("semi_scratch", "semi scratch"))
BASELINE_KINDS = ("pixel_logreg", "pixel_knn")


def _label_efficiency(curve: dict) -> Table:
    """The curve, each classifier a column, and what pretraining bought over the best classifier
    that needs no network (the pixel baselines) at the fewest labels, in words."""
    shown = [(kind, label) for kind, label in LABEL_KINDS
             if any(f"{kind}_mean" in e for e in curve.values())]

    def cell(e: dict, kind: str) -> str:
        return f"{e[f'{kind}_mean']:.3f} ± {e[f'{kind}_std']:.3f}" if f"{kind}_mean" in e else "—"

    rows = [[str(e["labels"]), *(cell(e, kind) for kind, _ in shown),
             f"{e['gain_over_scratch']:+.3f}"] for e in curve.values()]
    caption = ("Test accuracy ↑ of a classifier given this many labeled train images: pretrained = "
               "the autoencoder's encoder plus a head, fine-tuned; scratch = the same network from "
               "random weights, same budget; linear probe = logistic regression on the frozen "
               "codings; pixel LogReg and pixel k-NN = logistic regression and 4-nearest-neighbours "
               "on the raw pixels of the same labeled images, the baselines to beat; ")
    if any(kind == "semi_pretrained" for kind, _ in shown):
        caption += ("semi pretrained and semi scratch = each of those two networks with the "
                    "other train images, never their labels (finetune.semi_supervised: fixmatch "
                    "trains it further on them, poisson carries the labels over a graph of its "
                    "codings of them and averages that with the network); ")
    caption += "gain = pretrained − scratch."
    fewest = min(curve.values(), key=lambda e: e["labels"])
    baselines = {label: fewest[f"{kind}_mean"] for kind, label in LABEL_KINDS
                 if kind in BASELINE_KINDS and f"{kind}_mean" in fewest}
    if baselines:
        name, best = max(baselines.items(), key=lambda item: item[1])
        networks = {label: fewest[f"{kind}_mean"] for kind, label in LABEL_KINDS
                    if kind in ("pretrained", "semi_pretrained") and f"{kind}_mean" in fewest}
        network, score = max(networks.items(), key=lambda item: item[1])
        gain = score - best
        caption += (f" With {fewest['labels']:,} labels the {network} classifier scores "
                    f"{100 * score:.1f} %, {abs(100 * gain):.1f} points "
                    f"{'above' if gain >= 0 else 'below'} the best baseline ({name}, "
                    f"{100 * best:.1f} %): what pretraining"
                    f"{' and the unlabeled images' if network.startswith('semi') else ''} bought.")
    return Table("Label efficiency: test accuracy (mean ± std over seeds)",
                 ["labels", *(label for _, label in shown), "gain"], rows, caption)


def tables(metrics: dict, data: dict | None = None) -> list[Table]:
    """The report's metric tables, each with a one-line explanation."""
    data = data or {}
    out = []
    generators = [(f.label, metrics.get(f"evaluate/{f.name}")) for f in FAMILIES.values()]
    verdicts = [[name, values["verdict"]] for name, values in (
        ("autoencoder", metrics.get("evaluate/autoencoder")), *generators)
        if values and "verdict" in values]
    if verdicts:
        out.append(Table(
            "Verdicts", ["model", "verdict"], verdicts,
            "Each model against a known scale: generators on the ladder of degraded real images "
            "below (nearest a mild noise or blur: pictures; nearest scrambled tiles, blobs or "
            "smears: not; where the judge puts those within two sampling spreads of each other, "
            "not judged), the autoencoder against rebuilding every image as the mean image."))
    ae = {k: v for k, v in {**metrics.get("pretrain", {}),
                            **metrics.get("evaluate/autoencoder", {})}.items() if k != "verdict"}
    if ae:
        out.append(Table(
            "Autoencoder (test split unless named val)", ["metric", "value"], pairs(ae),
            "Reconstruction of held-out images in pixel space: MSE ↓, PSNR (dB) ↑, SSIM ↑ (1 = "
            "identical); denoising gain: the PSNR (dB) the autoencoder wins back from images with "
            "Gaussian noise ↑."))
    curve = metrics.get("finetune", {})
    if curve.get("available") is False:
        out.append(Table("Label efficiency: not applicable", ["why"], [[curve.get("reason", "")]],
                         "The curve needs a dataset with two classes or more."))
    elif curve:
        out.append(_label_efficiency(curve))
    gen_rows = []
    anchors = metrics.get("evaluate/anchors", {})
    gen_sources = (*generators, ("floor: held-out real", anchors.get("real_holdout")),
                   ("ceiling: per-pixel Gaussian", anchors.get("pixel_gaussian")))
    for name, values in gen_sources:
        if values:
            gen_rows.append([name, *(fmt(values.get(k, "–")) for k, _ in GENERATION_COLUMNS)])
    if gen_rows:
        space = anchors.get("feature_space", "")
        kid = next((v["kid_subset_size"] for _, v in gen_sources if v and "kid_subset_size" in v),
                   None)
        kid_note = f" over subsets of {kid}" if kid else ""
        classes = ("classes the evaluator finds in ≥ 1 % of samples; "
                   if any("classes_covered" in (v or {}) for _, v in generators)
                   else "no classes, so no class columns; ")
        out.append(Table(
            f"Generation vs the test split ({space})",
            ["model", *(t for _, t in GENERATION_COLUMNS)], gen_rows,
            f"Samples against real test images, both mapped to {space}: "
            f"Fréchet distance (FD ±: how far it moves over resamples of the images) and "
            f"KID{kid_note} ↓; precision (samples on the real manifold) and "
            f"recall (real images covered) ↑; {classes}nearest-train-image distance of samples "
            "over that of test images (≪ 1: copies). Floor and ceiling: held-out real images and "
            "per-pixel Gaussian noise, judged alike."))
    if anchors.get("ladder"):
        out.append(_ladder(anchors["ladder"]))
    for family in FAMILIES.values():  # each family's training table
        values = metrics.get(family.name)
        if values:
            own = family.hook("report", "table")
            out.append(own(values, data) if own else Table(
                f"{family.label} training", ["metric", "value"], pairs(values),
                f"What train@{family.name} wrote of its run (metrics/{family.name}.json)."))
    evaluator = metrics.get("evaluator", {})
    if evaluator:
        out.append(Table("Evaluator network", ["metric", "value"], pairs(evaluator),
                         "The classifier whose features the generation metrics use: its test "
                         "accuracy ↑ (absent for data without classes)."))
    return out


def _ladder(scores: dict) -> Table:
    columns = [(k, title) for k, title in GENERATION_COLUMNS[1:6]
               if any(k in v for v in scores.values())]
    rows = [[name.replace("_", " "), *(fmt(scores[name].get(k, "–")) for k, _ in columns)]
            for name in ladder.NAMES if name in scores]
    return Table(
        "The ladder: degraded real images, judged like the generators",
        ["rung", *(title for _, title in columns)], rows,
        "Held-out real images; copies of train images (the NN-to-train ratio catches them); "
        "real images with Gaussian noise (σ 0.1) or blurred by a pixel (at 64 px; half a pixel "
        "at 32 px and below): still pictures; one kind of image only; real images cut into "
        "4×4 tiles and shuffled (colours and textures without shapes), blobs (a blur four times "
        "stronger) and colour smears (blurred per-pixel noise): not pictures; per-pixel "
        "Gaussian noise. A generator's verdict names the rung nearest its FD (log scale); its "
        "ladder position is its FD between held-out real images (0) and the noise (1), log scale. "
        "FD ± is how far an FD moves over resamples of the images (bootstrap): where blobs lie "
        "within two of those of the mild rungs, no score between them is read as pictures.")


def _html_table(table: Table) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in table.header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
                   for row in table.rows)
    note = f"<p class='note'>{html.escape(table.note)}</p>" if table.note else ""
    return (f"<h3 id='{table.anchor}'>{html.escape(table.title)}</h3>\n{note}"
            f"<table><tr>{head}</tr>{body}</table>\n")


STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1100px; color: #222; }
h1 { margin-bottom: 0.2rem; } .meta { color: #666; margin-top: 0; }
nav ul { font-size: 0.9rem; margin: 0.2rem 0; } .note { color: #555; font-size: 0.85rem; max-width: 900px; }
table { border-collapse: collapse; margin: 0.5rem 0 1.5rem; font-size: 0.9rem; display: block;
        max-width: 100%; overflow-x: auto; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.6rem; text-align: right; }
th:first-child, td:first-child { text-align: left; }
h3#verdicts + p + table td { text-align: left; }
figure { display: inline-block; margin: 0.5rem; vertical-align: top; max-width: 100%; }
figure img { max-width: 100%; border: 1px solid #eee; image-rendering: pixelated; }
figcaption { font-size: 0.85rem; color: #555; max-width: 520px; }
pre { background: #f6f6f6; padding: 0.8rem; overflow-x: auto; font-size: 0.8rem; }
"""


def _describe(data: dict) -> str:
    shape = "×".join(map(str, data.get("image_shape", []))) or "?"
    counts = ", ".join(f"{k} {v:,}" for k, v in (data.get("counts") or {}).items())
    classes = data.get("class_names")
    kind = f"{len(classes)} classes" if classes and len(classes) > 1 else (
        "one class" if classes else "unlabeled")
    return f"source {data.get('source', '?')}, {shape} images ({counts}), {kind}"


def write_report(out_dir: Path, data: dict, revision: str, metrics: dict,
                 galleries: list[tuple[str, str]], params_text: str,
                 comparison: list[tuple[str, list[str], list[list[str]]]] = ()) -> None:
    """``reports/index.html`` and ``reports/summary.md``. ``data`` is the prepared data's
    meta.json; ``galleries`` holds (relative path, caption) pairs, relative to ``out_dir``."""
    dataset = data.get("dataset", "?")
    metric_tables = tables(metrics, data)
    earlier = [Table(*t) for t in comparison]
    sections = [("metrics", "Metrics", metric_tables)]
    if earlier:
        sections.append(("earlier-runs", "Earlier runs (MLflow)", earlier))
    sections += [("galleries", "Galleries", []), ("params", "Params", [])]
    toc = "".join(
        f"<li><a href='#{sid}'>{title}</a>" + (
            "<ul>" + "".join(f"<li><a href='#{t.anchor}'>{html.escape(t.title)}</a></li>"
                             for t in items) + "</ul>" if items else "") + "</li>"
        for sid, title, items in sections)
    parts = [f"<!doctype html><html lang='en'><head><meta charset='utf-8'>"
             f"<title>latentlab report: {html.escape(dataset)}</title><style>{STYLE}</style></head><body>",
             f"<h1>latentlab: {html.escape(dataset)}</h1>",
             f"<p class='meta'>{html.escape(_describe(data))}; git revision "
             f"{html.escape(revision)}</p>",
             f"<nav><h2>Contents</h2><ul>{toc}</ul></nav>"]
    for sid, title, items in sections[:-2]:
        parts.append(f"<h2 id='{sid}'>{title}</h2>")
        parts += [_html_table(t) for t in items]
    parts.append("<h2 id='galleries'>Galleries</h2>")
    for path, caption in galleries:
        parts.append(f"<figure><img src='{html.escape(path)}' alt='{html.escape(caption)}'>"
                     f"<figcaption>{html.escape(caption)}</figcaption></figure>")
    parts.append(f"<h2 id='params'>Params</h2><pre>{html.escape(params_text)}</pre></body></html>")
    write_text_atomic(out_dir / "index.html", "\n".join(parts))

    md = [f"# latentlab: {dataset}", "", f"{_describe(data)}; git revision {revision}", ""]
    for table in [*metric_tables, *earlier]:
        md += [f"## {table.title}", ""] + ([table.note, ""] if table.note else []) + [
            "| " + " | ".join(table.header) + " |", "|" + "---|" * len(table.header)
        ] + ["| " + " | ".join(r) + " |" for r in table.rows] + [""]
    md += ["## Galleries", ""] + [f"- [{caption}]({path})" for path, caption in galleries]
    write_text_atomic(out_dir / "summary.md", "\n".join(md) + "\n")


def read_metrics(metrics_dir: Path) -> dict:
    """Every metrics JSON under ``metrics_dir``, keyed by its path without the suffix."""
    return {str(p.relative_to(metrics_dir).with_suffix("")): json.loads(p.read_text())
            for p in sorted(metrics_dir.rglob("*.json"))}
