"""ROUGE bookkeeping (per sample -> per client -> across clients)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence

import numpy as np

from fedrouter.utils import process_state
from fedrouter.utils.timing import timed

ROUGE_KEYS = ("rouge1", "rouge2", "rougeL")


@process_state.cached(maxsize=1)
def _scorer():
    from rouge_score import rouge_scorer

    # No stemmer, as the `evaluate` wrapper the reference uses.
    return rouge_scorer.RougeScorer(list(ROUGE_KEYS), use_stemmer=False)


@timed("rouge")
def rouge(predictions: Sequence[str], references: Sequence[str]) -> dict[str, np.ndarray]:
    """Per-sample ROUGE-1/2/L F-measure."""
    scores = [_scorer().score(ref, pred) for pred, ref in zip(predictions, references, strict=True)]
    return {k: np.array([s[k].fmeasure for s in scores], dtype=np.float64) for k in ROUGE_KEYS}


def summarize_client(scores: dict[str, np.ndarray], tasks: Sequence[str], unseen: Sequence[str] = ()
                     ) -> dict[str, float]:
    """One client's metrics: the mean over its samples (= the mean of its routed groups weighted
    by their sizes), and the same per task, with counts so the server can combine them. With tasks
    no client trained on (`unseen`), also the mean over this client's seen-task and unseen-task
    samples (keys `<rouge>/seen`, `<rouge>/unseen`; absent when it has no such sample)."""
    out: dict[str, float] = {"n": float(len(tasks))}
    for k in ROUGE_KEYS:
        out[k] = float(scores[k].mean()) if len(tasks) else 0.0
    task_arr = np.asarray(tasks)
    for t in sorted(set(tasks)):
        sel = task_arr == t
        out[f"n/{t}"] = float(sel.sum())
        for k in ROUGE_KEYS:
            out[f"{k}/{t}"] = float(scores[k][sel].mean())
    if unseen:
        is_unseen = np.isin(task_arr, list(unseen))
        for part, sel in (("seen", ~is_unseen), ("unseen", is_unseen)):
            if sel.any():
                out[f"n/{part}"] = float(sel.sum())
                for k in ROUGE_KEYS:
                    out[f"{k}/{part}"] = float(scores[k][sel].mean())
    return out


def combine_clients(per_client: Iterable[dict[str, float]]) -> dict[str, float]:
    """The paper's aggregate: mean over clients of each client's score; per task, the mean over
    the clients tested on that task of their score on it."""
    per_client = list(per_client)
    if not per_client:
        return {}
    out: dict[str, float] = {k: float(np.mean([c[k] for c in per_client])) for k in ROUGE_KEYS}
    by_task: dict[str, list[float]] = defaultdict(list)
    for c in per_client:
        for key, value in c.items():
            if key.split("/")[0] in ROUGE_KEYS and "/" in key:
                by_task[key].append(value)
    out.update({k: float(np.mean(v)) for k, v in sorted(by_task.items())})
    out["num_clients"] = float(len(per_client))
    out["num_samples"] = float(sum(c["n"] for c in per_client))
    return out
