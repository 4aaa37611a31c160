"""FedRouter's report hook: the figures only its run folders can give (the t-SNE of the routed test
embeddings, the local and global silhouette curves: the paper's Figures 7-8)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

from fedrouter.algorithms.client_state import ClientStore


def eval_embeddings(run_dir: Path) -> tuple[np.ndarray, list[str], np.ndarray, int] | None:
    """(test embeddings, true tasks, routed adapter, round) of every client's last saved evaluation."""
    stores = [ClientStore(p.parent, int(p.name.split("_")[1])) for p in Path(run_dir).glob("clients/client_*")]
    rounds = [r for st in stores for r in st.eval_rounds()]
    if not rounds:
        return None
    rnd = max(rounds)
    emb, tasks, routed = [], [], []
    for st in sorted((st for st in stores if rnd in st.eval_rounds()), key=lambda st: st.dir.name):
        arrays, meta = st.load_eval(rnd)
        emb.append(arrays["embeddings"])
        routed.append(arrays["routed"])
        tasks += meta["tasks"]
    return np.concatenate(emb), tasks, np.concatenate(routed), rnd


def silhouette_curves(runs: list[tuple[str, int, Path]]) -> dict[str, dict[str, dict[int, list[float]]]]:
    """scenario -> {"local": k -> scores over clients and seeds, "global": k -> scores over seeds}."""
    from fedrouter.results.run_folder import RunFolder

    out: dict[str, dict[str, dict[int, list[float]]]] = {}
    for scenario, _seed, path in runs:
        diag = RunFolder(path).read_diagnostics()
        if not diag:
            continue
        curves = out.setdefault(scenario, {"local": defaultdict(list), "global": defaultdict(list)})
        for per_client in diag.get("local_silhouette", {}).values():
            for k, score in per_client.items():
                curves["local"][int(k)].append(float(score))
        for k, score in diag.get("global_silhouette", {}).items():
            curves["global"][int(k)].append(float(score))
    return out


def report_plots(runs: list[tuple[str, int, Path]], out_dir: Path) -> list[Path]:
    """t-SNE of each scenario's routed test embeddings (first seed) and the silhouette curves
    (the paper's Figures 7-8) over every scenario."""
    from fedrouter.results import plots

    written: list[Path] = []
    for scenario in dict.fromkeys(s for s, _, _ in runs):
        seed, path = min((seed, path) for s, seed, path in runs if s == scenario)
        data = eval_embeddings(path)
        if data is not None:
            emb, tasks, routed, rnd = data
            title = f"{scenario}: FedRouter test embeddings (seed {seed}, round {rnd})"
            tsne = plots.tsne(emb, tasks, routed, title, out_dir / f"tsne_{scenario}.png", seed=seed)
            written += [tsne] if tsne else []
    sil = silhouette_curves(runs)
    if sil:
        written.append(plots.silhouette(sil, out_dir / "silhouette.png"))
    return written
