"""FedRouter's report hooks: the figures only its run folders can give (the t-SNE of the routed test
embeddings, the local and global silhouette curves: the paper's Figures 7-8, the routing heat-map) and the
routing section (where each task's test inputs went in the last evaluation round)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

from fedrouter.algorithms.client_state import ClientStore
from fedrouter.routing.openset import column_order


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
        last = last_routing(path)
        if last is not None:
            rnd, table = last
            written.append(plots.routing_heatmap(table["table"], table["clusters"],
                                                 f"{scenario}: where FedRouter routed test inputs\n(seed {seed}, round {rnd})",
                                                 out_dir / f"routing_{scenario}.png", table["unseen_tasks"]))
    sil = silhouette_curves(runs)
    if sil:
        written.append(plots.silhouette(sil, out_dir / "silhouette.png"))
    return written


def last_routing(run_dir: Path) -> tuple[int, dict] | None:
    """(round, routing table) of the run's last evaluation round with the diagnostics on."""
    from fedrouter.results.run_folder import RunFolder

    routing = (RunFolder(run_dir).read_diagnostics() or {}).get("routing", {})
    if not routing:
        return None
    rnd = max(routing, key=int)
    return int(rnd), routing[rnd]


def report_sections(runs: list[tuple[str, int, Path]]) -> list[str]:
    """Markdown: per scenario, routing accuracy per seed, per task (mean over seeds), the open-set counts,
    and the first seed's confusion table (true task x global cluster with its majority task)."""
    lines = ["## FedRouter routing (last evaluation round)", "",
             "Accuracy: share of seen-task test inputs whose global cluster's majority training task is their own; "
             "a task nobody trained on is shown, not scored. Heat-maps: `routing_<scenario>.png`.", ""]
    any_table = False
    for scenario in dict.fromkeys(s for s, _, _ in runs):
        tables = [(seed, *last) for s, seed, path in runs if s == scenario and (last := last_routing(path))]
        if not tables:
            continue
        any_table = True
        accs = ", ".join(f"seed {seed}: {t['accuracy']:.3f}" for seed, _, t in tables)
        lines += [f"### {scenario}", "", f"Routing accuracy {accs}."]
        if any("fallback" in row for _, _, t in tables for row in t["table"].values()):
            lines.append("Open set: seen inputs sent to the fallback "
                         + ", ".join(f"{t['seen_rejected']:.3f}" for _, _, t in tables)
                         + (("; unseen inputs caught " + ", ".join(f"{t['unseen_caught']:.3f}" for _, _, t in tables))
                            if any(t["unseen_total"] for _, _, t in tables) else "") + " (per seed).")
        tasks = list(dict.fromkeys(task for _, _, t in tables for task in t["per_task_accuracy"]))
        lines += ["", "| task | " + " | ".join(tasks) + " |", "| --- |" + " --- |" * len(tasks),
                  "| accuracy (mean over seeds) | " + " | ".join(
                      f"{np.mean([t['per_task_accuracy'][k] for _, _, t in tables if k in t['per_task_accuracy']]):.2f}"
                      for k in tasks) + " |", ""]
        seed, rnd, t = tables[0]
        cols = sorted({g for row in t["table"].values() for g in row}, key=column_order)
        head = [g if g == "fallback" else f"{g} ({t['clusters'][g]})" for g in cols]
        lines += [f"Seed {seed}, round {rnd}: true task (rows) x global cluster (its majority training task).", "",
                  "| true task | " + " | ".join(head) + " |", "| --- |" + " --- |" * len(cols)]
        for task, row in t["table"].items():
            lines.append(f"| {task}{' (unseen)' if task in t['unseen_tasks'] else ''} | "
                         + " | ".join(f"{int(row[g])}" if g in row else "" for g in cols) + " |")
        lines.append("")
    return lines if any_table else []
