"""The report's figures: each call writes one PNG holding the series it was given."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.container import ErrorbarContainer

from fedrouter.results import plots
from fedrouter.results.stats import Stat

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def drawn(monkeypatch):
    """The axes of every figure saved, read before the figure is closed: [(title, [axes data])]."""
    figures = []
    save = plots._save

    def recording_save(fig, path):
        figures.append([{"title": ax.get_title(), "lines": [(list(line.get_xdata()), list(line.get_ydata()),
                                                             line.get_label()) for line in ax.get_lines()
                                   if not line.get_label().startswith("_")],  # not error-bar caps
                         "errorbars": [(list(c.lines[0].get_xdata()), list(c.lines[0].get_ydata()), c.get_label())
                                       for c in ax.containers if isinstance(c, ErrorbarContainer) and c.lines[0]],
                         "bars": [p.get_height() for p in ax.patches], "collections": ax.collections,
                         "xticks": [t.get_text() for t in ax.get_xticklabels()]} for ax in fig.axes])
        return save(fig, path)

    monkeypatch.setattr(plots, "_save", recording_save)
    return figures


def test_bar_chart_draws_one_bar_per_method_at_its_mean(tmp_path, drawn):
    by_method = {"a": Stat(0.30, 0.02, 3), "b": Stat(0.25, None, 1)}
    path = plots.bar_chart(by_method, plots.method_colors(list(by_method)), "s1", tmp_path / "bars.png", "ROUGE-1")
    assert path.read_bytes().startswith(PNG)
    (ax,) = drawn[0]
    assert ax["title"] == "s1" and ax["bars"] == pytest.approx([0.30, 0.25])
    assert ax["xticks"] == ["a\n(n=3)", "b\n(n=1)"]  # seeds counted under each name


def test_score_curves_one_panel_per_scenario_one_line_per_method(tmp_path, drawn):
    curves = {"s1": {"a": {1: [0.1, 0.3], 2: [0.4, 0.4]}, "b": {1: [0.2]}}, "s2": {"a": {1: [0.5]}}}
    colors = plots.method_colors(["a", "b"])
    plots.score_curves(curves, colors, tmp_path / "curves.png", "ROUGE-1")
    s1, s2 = drawn[0]
    assert (s1["title"], s2["title"]) == ("s1", "s2")
    assert s1["lines"] == [([1, 2], pytest.approx([0.2, 0.4]), "a"), ([1], [0.2], "b")]  # mean over seeds
    assert s2["lines"] == [([1], [0.5], "a")]


def test_silhouette_local_and_global_panels(tmp_path, drawn):
    curves = {"s1": {"local": {2: [0.5, 0.7], 3: [0.4]}, "global": {2: [0.9]}}, "s2": {"local": {}, "global": {4: [0.1]}}}
    plots.silhouette(curves, tmp_path / "sil.png")
    local, global_ = drawn[0]
    assert local["errorbars"] == [([2, 3], pytest.approx([0.6, 0.4]), "s1")]  # s2 has no local curve
    assert global_["errorbars"] == [([2], [0.9], "s1"), ([4], [0.1], "s2")]


def test_tsne_colours_by_task_and_by_routed_adapter(tmp_path, drawn):
    rng = np.random.default_rng(0)
    emb = np.concatenate([rng.normal(c, 0.1, size=(8, 5)) for c in (0.0, 3.0)])
    tasks, routed = ["qa"] * 8 + ["sum"] * 8, np.array([0] * 8 + [1] * 6 + [0] * 2)
    path = plots.tsne(emb, tasks, routed, "t", tmp_path / "tsne.png")
    assert path.read_bytes().startswith(PNG)
    by_task, by_route = drawn[0]
    assert [len(c.get_offsets()) for c in by_task["collections"]] == [8, 8]  # one scatter per task
    assert [len(c.get_offsets()) for c in by_route["collections"]] == [10, 6]  # per routed adapter
    assert plots.tsne(emb[:4], tasks[:4], routed[:4], "t", tmp_path / "few.png") is None  # too few points


def test_palette_gives_distinct_colours_for_any_count():
    for n in (3, 12, 25):
        assert len(set(map(str, plots.palette(n)))) == n
