"""The report's figures (matplotlib, Agg backend): bars per scenario, t-SNE of routed test
embeddings, silhouette against k, the headline metric against round. Plain data in, one PNG out per call."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")  # files only, no display; set before pyplot is imported
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from fedrouter.routing.openset import column_order  # noqa: E402
from fedrouter.utils.io import atomic_write_bytes  # noqa: E402

if TYPE_CHECKING:
    from fedrouter.results.stats import Stat

MAX_TSNE_POINTS = 1000  # t-SNE is quadratic in the points; a random subset keeps the plot seconds long


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120)
    plt.close(fig)
    atomic_write_bytes(Path(path), buf.getvalue())
    return Path(path)


def _ordered_mean_std(values: dict[int, list[float]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    xs = np.array(sorted(values))
    means = np.array([np.mean(values[x]) for x in xs])
    stds = np.array([np.std(values[x], ddof=1) if len(values[x]) > 1 else 0.0 for x in xs])
    return xs, means, stds


def palette(n: int) -> list:
    """n distinct colours: matplotlib's default cycle up to 10, tab20 up to 20, then evenly spaced
    hues (any number of tasks, clusters or methods gets its own colour)."""
    if n <= 10:
        return [f"C{i}" for i in range(n)]
    cmap = plt.get_cmap("tab20") if n <= 20 else plt.get_cmap("hsv")
    return [cmap(i / (20 if n <= 20 else n)) for i in range(n)]


def method_colors(methods: Sequence[str]) -> dict[str, str]:
    """One colour per method, the same in every figure."""
    return dict(zip(methods, palette(len(methods)), strict=True))


def bar_chart(by_method: dict[str, Stat], colors: dict[str, str], title: str, path: Path, ylabel: str) -> Path:
    """The paper's Figure 3 for one scenario: the mean score (ROUGE-1 in the paper) per method, std
    over seeds as error bars (none with a single seed), seeds counted under each name."""
    names = list(by_method)
    stats = [by_method[m] for m in names]
    fig, ax = plt.subplots(figsize=(1.2 * len(names) + 2, 3.6))
    x = np.arange(len(names))
    # No error bar with a single seed (std undefined), rather than a misleading zero-width one.
    ax.bar(x, [s.mean for s in stats], yerr=[np.nan if s.std is None else s.std for s in stats], capsize=4,
           color=[colors[m] for m in names])
    for xi, s in zip(x, stats, strict=True):
        ax.annotate(f"{s.mean:.3f}", (xi, s.mean + (s.std or 0.0)), ha="center", va="bottom", fontsize=8,
                    xytext=(0, 2), textcoords="offset points")
    ax.set_xticks(x, [f"{m}\n(n={s.n})" for m, s in zip(names, stats, strict=True)])
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    return _save(fig, path)


def tsne(embeddings: np.ndarray, tasks: Sequence[str], routed: np.ndarray, title: str, path: Path,
         seed: int = 0) -> Path | None:
    """The paper's Figure 4: a 2-D t-SNE of the test embeddings coloured by true task (left) and by
    the adapter each sample was routed to (right). None when there are too few points."""
    from sklearn.manifold import TSNE

    rng = np.random.default_rng(seed)
    keep = np.sort(rng.permutation(len(embeddings))[:MAX_TSNE_POINTS])
    if len(keep) < 5:
        return None
    points = TSNE(n_components=2, perplexity=min(30.0, (len(keep) - 1) / 3), init="pca",
                  random_state=seed).fit_transform(np.asarray(embeddings, dtype=np.float64)[keep])
    tasks = np.asarray(tasks)[keep]
    routed = np.asarray(routed)[keep]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.4))
    for ax, labels, name in ((axes[0], tasks, "true task"), (axes[1], routed, "routed adapter")):
        values = sorted(set(labels.tolist()))
        for value, color in zip(values, palette(len(values)), strict=True):
            sel = labels == value
            ax.scatter(points[sel, 0], points[sel, 1], s=10, color=color, label=str(value))
        ax.set_title(f"coloured by {name}")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.legend(fontsize=8, markerscale=1.5, title=name, title_fontsize=8)
    fig.suptitle(title)
    return _save(fig, path)


def silhouette(curves: dict[str, dict[str, dict[int, list[float]]]], path: Path) -> Path:
    """The paper's Figures 7 and 8: silhouette score against k of the local clustering (mean ± std
    over clients and seeds) and of the global clustering (over seeds), one line per scenario."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, level, what in ((axes[0], "local", "clients' local clustering (over clients and seeds)"),
                            (axes[1], "global", "server's global clustering (over seeds)")):
        for (scenario, by_level), color in zip(curves.items(), palette(len(curves)), strict=True):
            if by_level[level]:
                ks, means, stds = _ordered_mean_std(by_level[level])
                ax.errorbar(ks, means, yerr=stds, marker="o", capsize=3, color=color, label=scenario)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("k")
        ax.set_ylabel("silhouette score")
        ax.set_title(what, fontsize=10)
        if ax.lines:
            ax.legend(fontsize=8)
    return _save(fig, path)


def score_curves(curves: dict[str, dict[str, dict[int, list[float]]]], colors: dict[str, str], path: Path,
                 ylabel: str) -> Path:
    """A score (ROUGE-1 in the paper) against round, one panel per scenario, one line per method (mean
    over seeds, band = std)."""
    scenarios = list(curves)
    fig, axes = plt.subplots(1, max(1, len(scenarios)), figsize=(4.2 * max(1, len(scenarios)), 3.6), squeeze=False)
    for ax, scenario in zip(axes[0], scenarios, strict=False):
        for method in [m for m in colors if m in curves[scenario]]:
            rounds, means, stds = _ordered_mean_std(curves[scenario][method])
            ax.plot(rounds, means, marker="o", color=colors[method], label=method)
            ax.fill_between(rounds, means - stds, means + stds, color=colors[method], alpha=0.15)
        ax.set_title(scenario)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("round")
        ax.set_ylabel(ylabel)
        ax.legend(fontsize=8)
    return _save(fig, path)


def routing_heatmap(table: dict[str, dict[str, float]], clusters: dict[str, str], title: str, path: Path,
                    unseen: Sequence[str] = ()) -> Path:
    """Where each true task's test inputs went: rows = true tasks (those in `unseen` marked), columns = global
    clusters (labelled with their majority training task) and the fallback; colour = share of the row,
    number = inputs."""
    cols = sorted({g for row in table.values() for g in row}, key=column_order)
    rows = list(table)
    counts = np.array([[table[t].get(g, 0.0) for g in cols] for t in rows])
    share = counts / np.maximum(counts.sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(max(5.0, 1.5 + 0.55 * len(cols)), max(3.0, 1.5 + 0.4 * len(rows))))
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1, aspect="auto")
    for i in range(len(rows)):
        for j in range(len(cols)):
            if counts[i, j]:
                ax.text(j, i, f"{int(counts[i, j])}", ha="center", va="center", fontsize=7,
                        color="white" if share[i, j] > 0.6 else "black")
    ax.set_xticks(range(len(cols)), [g if g == "fallback" else f"{g} ({clusters.get(g, '?')})" for g in cols],
                  rotation=60, ha="right", fontsize=7)
    ax.set_yticks(range(len(rows)), [f"{t} (unseen)" if t in unseen else t for t in rows], fontsize=7)
    ax.set_xlabel("routed to: global cluster (its majority training task)", fontsize=8)
    ax.set_ylabel("true task")
    ax.set_title(title, fontsize=9)
    return _save(fig, path)


def privacy_utility(points: dict[str, list[tuple[float, float, int]]], colors: dict[str, str], path: Path,
                    ylabel: str) -> Path:
    """Final score against the epsilon spent, one line per method (mean over seeds at each epsilon, the seeds as
    dots); runs without DP at the right edge, marked no DP."""
    finite = [e for pts in points.values() for e, _, _ in pts if np.isfinite(e)]
    right = (max(finite) * 5 if finite else 1.0)

    def at(e: float) -> float:  # runs that spent about the same budget share a point (7.99 and 8)
        return float(f"{e:.2g}") if np.isfinite(e) else right

    fig, ax = plt.subplots(figsize=(5.2, 3.6))
    for m, pts in points.items():
        by_eps: dict[float, list[float]] = {}
        for e, v, _ in pts:
            by_eps.setdefault(at(e), []).append(v)
        xs = sorted(by_eps)
        ax.plot(xs, [np.mean(by_eps[x]) for x in xs], "-o", color=colors.get(m), label=m)
        for x in xs:
            ax.scatter([x] * len(by_eps[x]), by_eps[x], color=colors.get(m), s=10, alpha=0.5)
    ax.set_xscale("log")
    if finite:
        ticks = sorted({at(e) for e in finite}) + [right]
        ax.set_xticks(ticks, [f"{t:g}" for t in ticks[:-1]] + ["no DP"])
    ax.set_xlabel("epsilon spent (log scale)")
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8)
    ax.set_title("privacy-utility")
    return _save(fig, path)
