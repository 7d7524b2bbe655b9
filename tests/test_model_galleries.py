"""Galleries on splits too small for their defaults: they shrink, and say what they left out."""

from __future__ import annotations

import numpy as np
from PIL import Image

from latentlab.families import selected
from latentlab.families.vae.galleries import galleries as vae_galleries
from latentlab.families.vae.model import build_vae
from latentlab.model_galleries import Context, curve_galleries
from tests.support.data import make_params


def test_vae_galleries_fit_a_test_split_of_three_images(tmp_path):
    """Two classes of a handful of images leave 3 test images: one pair to walk between."""
    params = make_params(train_vae={"latent": 2, "hidden_units": [8]})
    vae = build_vae(params.train_vae, (8, 8, 1), seed=0)
    (tmp_path / "vae").mkdir()
    vae.encoder.save(tmp_path / "vae/encoder.keras")
    vae.decoder.save(tmp_path / "vae/decoder.keras")
    test = np.random.default_rng(0).random((3, 8, 8, 1), dtype=np.float32)
    out = tmp_path / "galleries"
    out.mkdir()
    items = vae_galleries(out, params.render, Context(test, test, tmp_path, tmp_path, tmp_path, 0))
    assert [path for path, _ in items] == ["galleries/vae_prior.png",
                                           "galleries/vae_interpolation.png",
                                           "galleries/vae_traversal.png"]
    width, height = Image.open(out / "vae_interpolation.png").size
    assert width > params.render.interpolation_steps / 2 * height  # one row: one pair
    items = vae_galleries(out, params.render, Context(test[:1], test, tmp_path, tmp_path, tmp_path, 0))
    assert "galleries/vae_interpolation.png" not in [path for path, _ in items]


def test_the_codings_map_legend_matches_its_points_and_draws_cjk_names(tmp_path, monkeypatch):
    import warnings

    from matplotlib.figure import Figure

    from latentlab.galleries import scatter_map

    figures = []
    save = Figure.savefig
    monkeypatch.setattr(Figure, "savefig", lambda self, *a, **k: (figures.append(self),
                                                                    save(self, *a, **k)))
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1], 20)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a missing glyph or a legend mismatch warns
        scatter_map(rng.random((40, 2)), labels, rng.random((40, 8, 8, 1)), tmp_path / "map.png",
                    "map", ["猫", "犬"], thumbnails=4)
    ax = figures[0].axes[0]
    points = ax.collections[0].get_facecolors()
    legend = ax.get_legend()
    assert [t.get_text() for t in legend.get_texts()] == ["猫", "犬"]
    for label, handle in enumerate(legend.legend_handles):
        colour = np.array(matplotlib_colour(handle.get_color()))
        assert np.allclose(points[labels == label], colour)  # every point of its class
        assert not np.allclose(points[labels != label], colour)


def matplotlib_colour(value):
    from matplotlib.colors import to_rgba

    return to_rgba(value)


def test_loss_curves_are_the_runs_own_families_not_a_history_an_earlier_run_left(tmp_path):
    plots, out = tmp_path / "plots", tmp_path / "galleries"
    plots.mkdir(), out.mkdir()
    (plots / "pretrain_history.csv").write_text("epoch,loss,val_loss\n1,0.5,0.6\n2,0.4,0.5\n")
    for name in ("vae", "gan"):  # the GAN's is a default run's, left behind
        (plots / f"{name}_history.csv").write_text("epoch,loss,d_loss,g_loss\n1,1,1,1\n2,1,1,1\n")
    items = curve_galleries(out, plots, selected(["vae", "fastgan"]))
    assert [path for path, _ in items] == ["galleries/loss_pretrain.png", "galleries/loss_vae.png"]
    assert sorted(p.name for p in out.iterdir()) == ["loss_pretrain.png", "loss_vae.png"]
