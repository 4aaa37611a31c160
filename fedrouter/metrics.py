"""Evaluation metrics as a registry, and their bookkeeping (per sample -> per client -> across clients).

A metric is one `Metric` entry: its key in the metrics (`rouge1`, giving `rouge1`, `rouge1/<task>`,
`rouge1/seen`, ...), the name tables show (`ROUGE-1`), a scorer `(predictions, references) -> one
score per sample` and whether higher is better. Built in: ROUGE-1/2/L (rouge-score, the paper's),
exact match, chrF and BLEU (sacrebleu, sentence level). A run scores the metrics its `metrics`
setting names, per task narrowed by `task_metrics`; adding one is one `register_metric(...)` call.

Per-sample scores are arrays aligned with the test samples, NaN where a sample's task is not scored
by that metric (task_metrics). The overall number of a metric is the paper's aggregate restricted to
the samples it scores: each client's mean over its samples scored by it, then the mean over the
clients that have such samples."""

from __future__ import annotations

import unicodedata
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from fedrouter.utils import process_state
from fedrouter.utils.timing import timed

Scorer = Callable[[Sequence[str], Sequence[str]], np.ndarray]

DEFAULT_METRICS = "rouge1,rouge2,rougeL"  # the paper's
# Keys a client reply holds beside the metrics' own (sample counts); a metric may not take them.
RESERVED = frozenset({"n", "num_clients", "num_samples"})


@dataclass(frozen=True)
class Metric:
    """A registry entry. `scorer(predictions, references)` returns one float per sample."""

    name: str
    display: str
    scorer: Scorer
    higher_is_better: bool = True


_REGISTRY: dict[str, Metric] = {}


def register_metric(name: str, scorer: Scorer, display: str = "", higher_is_better: bool = True) -> Metric:
    """Add a metric under `name` (its metrics key, usable in `metrics=` and `task_metrics=`).

    Every process that scores must have it: the launcher, the server and each client process (Ray
    workers, ClientApps). Register it in this module or in one it imports, as the built-ins below."""
    if not name or "/" in name or "," in name or "=" in name or ";" in name or name in RESERVED:
        raise ValueError(f"metric name {name!r} is not allowed: no '/', ',', '=', ';', not one of {sorted(RESERVED)}")
    if name in _REGISTRY:
        raise ValueError(f"metric {name!r} is already registered")
    metric = Metric(name, display or name, scorer, higher_is_better)
    _REGISTRY[name] = metric
    return metric


def get_metric(name: str) -> Metric:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"metric {name!r} is not known; allowed: {', '.join(_REGISTRY)}") from None


def metric_names() -> tuple[str, ...]:
    """Every registered metric, in registration order."""
    return tuple(_REGISTRY)


def display_name(name: str) -> str:
    """The name tables and logs show; a key no longer registered shows as itself."""
    return _REGISTRY[name].display if name in _REGISTRY else name


def scores_text(scores: Mapping[str, float], names: Sequence[str], sep: str = " ") -> str:
    """'ROUGE-1 0.1234 ROUGE-2 ...': each named metric's score (one the scores lack is left out)."""
    return sep.join(f"{display_name(k)} {scores[k]:.4f}" for k in names if k in scores)


# --- built-in scorers ---------------------------------------------------------------------------------

ROUGE_KEYS = ("rouge1", "rouge2", "rougeL")


@process_state.cached(maxsize=len(ROUGE_KEYS))
def _rouge_scorer(key: str):
    """One RougeScorer per ROUGE type and process. rouge-score scores each type on its own (the
    same tokens, no shared state), so a scorer per type gives the values of one scorer for all three."""
    from rouge_score import rouge_scorer

    # No stemmer, as the `evaluate` wrapper the reference uses.
    return rouge_scorer.RougeScorer([key], use_stemmer=False)


def _rouge(key: str) -> Scorer:
    def score(predictions: Sequence[str], references: Sequence[str]) -> np.ndarray:
        """Per-sample ROUGE F-measure."""
        scorer = _rouge_scorer(key)
        return np.array([scorer.score(ref, pred)[key].fmeasure
                         for pred, ref in zip(predictions, references, strict=True)], dtype=np.float64)

    return score


def normalize_answer(text: str) -> str:
    """What exact match compares: case-folded, whitespace runs collapsed to one space, no leading or
    trailing whitespace, trailing punctuation (Unicode category P*: . , ! ? ) " ...) removed."""
    text = " ".join(text.casefold().split())
    end = len(text)
    while end and (text[end - 1] == " " or unicodedata.category(text[end - 1]).startswith("P")):
        end -= 1
    return text[:end]


def exact_match(predictions: Sequence[str], references: Sequence[str]) -> np.ndarray:
    """1.0 where the normalised prediction equals the normalised reference (`normalize_answer`), else 0.0."""
    return np.array([float(normalize_answer(p) == normalize_answer(r))
                     for p, r in zip(predictions, references, strict=True)], dtype=np.float64)


def chrf(predictions: Sequence[str], references: Sequence[str]) -> np.ndarray:
    """Sentence-level chrF (sacrebleu's defaults: character 6-grams, beta 2), on a 0-1 scale."""
    from sacrebleu.metrics import CHRF

    metric = CHRF()
    return np.array([metric.sentence_score(p, [r]).score / 100
                     for p, r in zip(predictions, references, strict=True)], dtype=np.float64)


def bleu(predictions: Sequence[str], references: Sequence[str]) -> np.ndarray:
    """Sentence-level BLEU (sacrebleu's `sentence_bleu`: 13a tokens, exp smoothing, effective order),
    on a 0-1 scale."""
    from sacrebleu.metrics import BLEU

    metric = BLEU(effective_order=True)
    return np.array([metric.sentence_score(p, [r]).score / 100
                     for p, r in zip(predictions, references, strict=True)], dtype=np.float64)


register_metric("rouge1", _rouge("rouge1"), "ROUGE-1")
register_metric("rouge2", _rouge("rouge2"), "ROUGE-2")
register_metric("rougeL", _rouge("rougeL"), "ROUGE-L")
register_metric("exact_match", exact_match, "exact match")
register_metric("chrf", chrf, "chrF")
register_metric("bleu", bleu, "BLEU")


# --- which metrics a run scores -------------------------------------------------------------------------


def _names(text: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(m.strip() for m in text.split(",") if m.strip()))


@dataclass(frozen=True)
class MetricSelection:
    """The metrics of a run: `default` for every task, `per_task` for the tasks `task_metrics` names."""

    default: tuple[str, ...]
    per_task: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, metrics: str = DEFAULT_METRICS, task_metrics: str = "") -> MetricSelection:
        """Parse `metrics` ('rouge1,chrf') and `task_metrics` ('qqp=exact_match;webnlg=chrf,bleu');
        ValueError naming every problem."""
        found = selection_problems(metrics, task_metrics)
        if found:
            raise ValueError("; ".join(found))
        per_task = {}
        for entry in filter(None, (e.strip() for e in task_metrics.split(";"))):
            task, names = entry.split("=", 1)
            per_task[task.strip()] = _names(names)
        return cls(_names(metrics), per_task)

    @classmethod
    def of(cls, settings) -> MetricSelection:
        """The selection of a run's settings (a RunConfig, or anything with `metrics`/`task_metrics`)."""
        return cls.from_settings(getattr(settings, "metrics", DEFAULT_METRICS),
                                 getattr(settings, "task_metrics", ""))

    @classmethod
    def of_config(cls, config: Mapping | None) -> MetricSelection:
        """The selection recorded in a run folder's config.json (run folders from before these settings
        scored the default metrics)."""
        config = config or {}
        return cls.from_settings(config.get("metrics", DEFAULT_METRICS), config.get("task_metrics", ""))

    @property
    def names(self) -> tuple[str, ...]:
        """Every metric the run scores: `default`, then those only some tasks use, in order."""
        return tuple(dict.fromkeys([*self.default, *(m for names in self.per_task.values() for m in names)]))

    @property
    def headline(self) -> str:
        """The run's first metric: the one summaries, plots and the seen/unseen comparison show."""
        return self.names[0]

    def for_task(self, task: str) -> tuple[str, ...]:
        return self.per_task.get(task, self.default)


def selection_problems(metrics: str, task_metrics: str) -> list[str]:
    """One message per problem with the `metrics` and `task_metrics` settings (empty = valid)."""
    allowed = ", ".join(_REGISTRY)
    out = []
    if not _names(metrics):
        out.append(f"metrics={metrics!r} names no metric; allowed: {allowed}")
    out += [f"metrics: {m!r} is not a known metric; allowed: {allowed}" for m in _names(metrics) if m not in _REGISTRY]
    tasks: set[str] = set()
    for entry in filter(None, (e.strip() for e in task_metrics.split(";"))):
        task, _, names = (p.strip() for p in entry.partition("="))
        if not task or not _names(names):
            out.append(f"task_metrics entry {entry!r} must be 'task=metric[,metric...]', e.g. 'qqp=exact_match'")
            continue
        if task in tasks:
            out.append(f"task_metrics names task {task!r} twice")
        tasks.add(task)
        out += [f"task_metrics: {m!r} (task {task}) is not a known metric; allowed: {allowed}"
                for m in _names(names) if m not in _REGISTRY]
    return out


# --- per sample -> per client -> across clients -----------------------------------------------------------


@timed("rouge")  # the scoring phase keeps the name metrics.jsonl's timings and the benchmark have always used
def score_samples(predictions: Sequence[str], references: Sequence[str], tasks: Sequence[str],
                  selection: MetricSelection) -> dict[str, np.ndarray]:
    """Per-sample scores of every metric of the selection, in its order, aligned with the inputs: each
    metric's scorer runs on the samples of the tasks that use it, the others get NaN."""
    out = {}
    for name in selection.names:
        idx = [i for i, t in enumerate(tasks) if name in selection.for_task(t)]
        if len(idx) == len(tasks):
            out[name] = np.asarray(get_metric(name).scorer(predictions, references), dtype=np.float64)
            continue
        values = np.full(len(tasks), np.nan)
        if idx:
            values[idx] = get_metric(name).scorer([predictions[i] for i in idx], [references[i] for i in idx])
        out[name] = values
    return out


def headline_scores(scores: dict[str, np.ndarray], tasks: Sequence[str], selection: MetricSelection
                    ) -> list[dict[str, float]]:
    """Per sample, {its task's first metric: its score}: what a client keeps beside each prediction."""
    return [{selection.for_task(t)[0]: float(scores[selection.for_task(t)[0]][i])} for i, t in enumerate(tasks)]


def _mean_scored(values: np.ndarray) -> float | None:
    """The mean over the scored samples (not NaN); None when there is none."""
    unscored = np.isnan(values)
    if not unscored.any():
        return float(values.mean()) if len(values) else None
    scored = values[~unscored]
    return float(scored.mean()) if len(scored) else None


def summarize_client(scores: dict[str, np.ndarray], tasks: Sequence[str], unseen: Sequence[str] = ()
                     ) -> dict[str, float]:
    """One client's metrics: per metric, the mean over its samples scored by it (= the mean of its
    routed groups weighted by their sizes), and the same per task, with counts so the server can
    combine them. With tasks no client trained on (`unseen`), also the mean over this client's
    seen-task and unseen-task samples (keys `<metric>/seen`, `<metric>/unseen`; absent when it has
    no such sample). A client without test samples reports 0.0 for every metric."""
    out: dict[str, float] = {"n": float(len(tasks))}
    for k, values in scores.items():
        mean = _mean_scored(values) if len(tasks) else 0.0
        if mean is not None:
            out[k] = mean
    task_arr = np.asarray(tasks)
    parts = [(t, task_arr == t) for t in sorted(set(tasks))]
    for t, sel in parts:
        out[f"n/{t}"] = float(sel.sum())
    if unseen:
        is_unseen = np.isin(task_arr, list(unseen))
        for part, sel in (("seen", ~is_unseen), ("unseen", is_unseen)):
            if sel.any():
                out[f"n/{part}"] = float(sel.sum())
                parts.append((part, sel))
    for part, sel in parts:
        for k, values in scores.items():
            mean = _mean_scored(values[sel])
            if mean is not None:
                out[f"{k}/{part}"] = mean
    return out


def combine_clients(per_client: Iterable[dict[str, float]], metrics: Sequence[str]) -> dict[str, float]:
    """The paper's aggregate: per metric, the mean over clients of each client's score (over the
    clients scored by it); per task, the mean over the clients tested on that task of their score on it."""
    per_client = list(per_client)
    if not per_client:
        return {}
    out: dict[str, float] = {}
    for k in metrics:
        values = [c[k] for c in per_client if k in c]
        if values:
            out[k] = float(np.mean(values))
    by_task: dict[str, list[float]] = defaultdict(list)
    for c in per_client:
        for key, value in c.items():
            if key.split("/")[0] in metrics and "/" in key:
                by_task[key].append(value)
    out.update({k: float(np.mean(v)) for k, v in sorted(by_task.items())})
    out["num_clients"] = float(len(per_client))
    out["num_samples"] = float(sum(c["n"] for c in per_client))
    return out
