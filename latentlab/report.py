"""The report: one self-contained HTML page (relative image paths, no network) and a Markdown
summary, built from the metrics files, the params and the galleries."""

from __future__ import annotations

import html
import json
from pathlib import Path

from latentlab.io import write_text_atomic

# Generation metrics shown as columns, in order, with what "better" means.
GENERATION_COLUMNS = [
    ("frechet_distance", "FD ↓"), ("kid", "KID ↓"), ("precision", "precision ↑"),
    ("recall", "recall ↑"), ("classes_covered", "classes ≥1%"),
    ("kl_to_reference", "KL(classes‖real) ↓"), ("memorization_ratio", "NN-to-train ratio"),
]


def fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def tables(metrics: dict) -> list[tuple[str, list[str], list[list[str]]]]:
    """(title, header, rows) for each table of the report."""
    out = []
    ae = {**metrics.get("pretrain", {}), **metrics.get("evaluate/autoencoder", {})}
    if ae:
        out.append(("Autoencoder (test split unless named val)", ["metric", "value"],
                    [[k, fmt(v)] for k, v in ae.items()]))
    curve = metrics.get("finetune", {})
    if curve.get("available") is False:
        out.append(("Label efficiency: not applicable", ["why"], [[curve.get("reason", "")]]))
    elif curve:
        rows = [[str(e["labels"]),
                 *(f"{e[f'{k}_mean']:.3f} ± {e[f'{k}_std']:.3f}" for k in ("pretrained", "scratch", "probe")),
                 f"{e['gain_over_scratch']:+.3f}"] for e in curve.values()]
        out.append(("Label efficiency: test accuracy (mean ± std over seeds)",
                    ["labels", "pretrained", "scratch", "linear probe", "gain"], rows))
    vae = metrics.get("vae", {})
    if vae:
        out.append(("VAE (val split; loss in Géron's scaling)", ["metric", "value"],
                    [[k, fmt(v)] for k, v in vae.items()]))
    gen_rows = []
    anchors = metrics.get("evaluate/anchors", {})
    for name, values in (("VAE", metrics.get("evaluate/vae")), ("GAN", metrics.get("evaluate/gan")),
                         ("floor: held-out real", anchors.get("real_holdout")),
                         ("ceiling: per-pixel Gaussian", anchors.get("pixel_gaussian"))):
        if values:
            gen_rows.append([name, *(fmt(values.get(k, "–")) for k, _ in GENERATION_COLUMNS)])
    if gen_rows:
        space = anchors.get("feature_space", "")
        out.append((f"Generation vs the test split ({space})", ["model", *(t for _, t in GENERATION_COLUMNS)],
                    gen_rows))
    gan = metrics.get("gan", {})
    if gan:
        out.append(("GAN training", ["metric", "value"], [[k, fmt(v)] for k, v in gan.items()]))
    evaluator = metrics.get("evaluator", {})
    if evaluator:
        out.append(("Evaluator network", ["metric", "value"],
                    [[k, fmt(v)] for k, v in evaluator.items()]))
    return out


def _html_table(title: str, header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
                   for row in rows)
    return f"<h3>{html.escape(title)}</h3>\n<table><tr>{head}</tr>{body}</table>\n"


STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1100px; color: #222; }
h1 { margin-bottom: 0.2rem; } .meta { color: #666; margin-top: 0; }
table { border-collapse: collapse; margin: 0.5rem 0 1.5rem; font-size: 0.9rem; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.6rem; text-align: right; }
th:first-child, td:first-child { text-align: left; }
figure { display: inline-block; margin: 0.5rem; vertical-align: top; max-width: 100%; }
figure img { max-width: 100%; border: 1px solid #eee; image-rendering: pixelated; }
figcaption { font-size: 0.85rem; color: #555; max-width: 520px; }
pre { background: #f6f6f6; padding: 0.8rem; overflow-x: auto; font-size: 0.8rem; }
"""


def write_report(out_dir: Path, dataset: str, revision: str, metrics: dict,
                 galleries: list[tuple[str, str]], params_text: str,
                 comparison: list[tuple[str, list[str], list[list[str]]]] = ()) -> None:
    """``reports/index.html`` and ``reports/summary.md``; ``galleries`` holds (relative path,
    caption) pairs, paths relative to ``out_dir``."""
    parts = [f"<!doctype html><html lang='en'><head><meta charset='utf-8'>"
             f"<title>latentlab report: {html.escape(dataset)}</title><style>{STYLE}</style></head><body>",
             f"<h1>latentlab: {html.escape(dataset)}</h1>",
             f"<p class='meta'>git revision {html.escape(revision)}</p>",
             "<h2>Metrics</h2>"]
    parts += [_html_table(*t) for t in tables(metrics)]
    if comparison:
        parts.append("<h2>Earlier runs (MLflow)</h2>")
        parts += [_html_table(*t) for t in comparison]
    parts.append("<h2>Galleries</h2>")
    for path, caption in galleries:
        parts.append(f"<figure><img src='{html.escape(path)}' alt='{html.escape(caption)}'>"
                     f"<figcaption>{html.escape(caption)}</figcaption></figure>")
    parts.append(f"<h2>Params</h2><pre>{html.escape(params_text)}</pre></body></html>")
    write_text_atomic(out_dir / "index.html", "\n".join(parts))

    md = [f"# latentlab: {dataset}", "", f"git revision {revision}", ""]
    for title, header, rows in [*tables(metrics), *comparison]:
        md += [f"## {title}", "", "| " + " | ".join(header) + " |",
               "|" + "---|" * len(header)] + ["| " + " | ".join(r) + " |" for r in rows] + [""]
    md += ["## Galleries", ""] + [f"- [{caption}]({path})" for path, caption in galleries]
    write_text_atomic(out_dir / "summary.md", "\n".join(md) + "\n")


def read_metrics(metrics_dir: Path) -> dict:
    """Every metrics JSON under ``metrics_dir``, keyed by its path without the suffix."""
    return {str(p.relative_to(metrics_dir).with_suffix("")): json.loads(p.read_text())
            for p in sorted(metrics_dir.rglob("*.json"))}
