"""The metric registry: each scorer against its definition on hand-made strings, the settings that
choose metrics (per run and per task), the bookkeeping with per-task metrics, a registered metric
flowing from a client's evaluation to the report, and one tiny run scored by three metrics."""

from __future__ import annotations

import csv
import io
import json
from types import SimpleNamespace

import numpy as np
import pytest

from conftest import assert_clients_sent_only_what_is_allowed, tiny_settings
from fedrouter import metrics
from fedrouter.algorithms.base import client_metrics, get_algorithm, reply, score_predictions
from fedrouter.config import RunConfig
from fedrouter.metrics import (
    ROUGE_KEYS,
    MetricSelection,
    combine_clients,
    normalize_answer,
    register_metric,
    score_samples,
    summarize_client,
)
from fedrouter.results.matrix import load_runs
from fedrouter.results.report import write_report
from fedrouter.results.report_csv import results_csv, runs_csv
from fedrouter.results.report_markdown import markdown_report, metric_title
from fedrouter.results.run_folder import RunFolder
from fedrouter.results.summary import main as summary_main
from fedrouter.validation import problems


def scorer(name: str):
    return metrics.get_metric(name).scorer


# --- scorers against their definitions ----------------------------------------------------------------


def test_rouge_against_hand_computed_values():
    preds, refs = ["the cat sat", "no overlap"], ["the cat sat down", "something else"]
    # unigrams: P = 3/3, R = 3/4, F1 = 2 * 1 * 0.75 / 1.75 = 6/7
    assert scorer("rouge1")(preds, refs) == pytest.approx([6 / 7, 0.0])
    # bigrams: pred {the cat, cat sat}, ref {the cat, cat sat, sat down}: P = 1, R = 2/3, F = 0.8
    assert scorer("rouge2")(preds, refs)[0] == pytest.approx(0.8)
    # longest common subsequence "the cat sat": P = 1, R = 3/4
    assert scorer("rougeL")(preds, refs)[0] == pytest.approx(6 / 7)
    # no stemming: "cats" and "cat" differ
    assert scorer("rouge1")(["cats"], ["cat"])[0] == 0.0


def test_exact_match_compares_normalised_strings():
    assert normalize_answer("  Not   Duplicate.\n") == "not duplicate"
    assert normalize_answer("YES!?…") == "yes"  # trailing punctuation of any script
    assert normalize_answer("e.g. this") == "e.g. this"  # inside the answer it stays
    em = scorer("exact_match")
    assert em(["Duplicate", "yes .", "not duplicate", "ab", ""], ["duplicate", "Yes", "duplicate", "a b", ""]).tolist() \
        == [1.0, 1.0, 0.0, 0.0, 1.0]


def test_chrf_is_the_f_beta_of_character_ngram_precision_and_recall():
    # "abc" vs "abd": 1-grams P = R = 2/3, 2-grams 1/2, 3-grams 0; orders 4-6 exist in neither and
    # do not count: average P = R = 7/18, and F_beta of equal P and R is that value (0-1 scale)
    chrf = scorer("chrf")
    assert chrf(["abc"], ["abd"])[0] == pytest.approx(7 / 18)
    assert chrf(["a b c", "xyz"], ["abc", "abc"]).tolist() == pytest.approx([1.0, 0.0])  # spaces are ignored


def test_bleu_is_the_geometric_mean_of_ngram_precisions():
    # "the cat sat on a mat" vs "the cat sat on the mat": 1- to 4-gram precisions 5/6, 3/5, 2/4, 1/3,
    # equal lengths (no brevity penalty): (5/6 * 3/5 * 1/2 * 1/3) ** (1/4) = (1/12) ** (1/4)
    bleu = scorer("bleu")
    assert bleu(["the cat sat on a mat"], ["the cat sat on the mat"])[0] == pytest.approx((1 / 12) ** 0.25)
    assert bleu(["the cat sat on the mat"], ["the cat sat on the mat"])[0] == pytest.approx(1.0)


# --- settings ------------------------------------------------------------------------------------------


def test_default_is_the_papers_rouge():
    selection = MetricSelection.of(RunConfig())
    assert RunConfig().metrics == metrics.DEFAULT_METRICS and RunConfig().task_metrics == ""
    assert selection.names == ("rouge1", "rouge2", "rougeL") and selection.headline == "rouge1"
    assert MetricSelection.of_config({}) == selection  # a run folder from before the settings


def test_per_task_metrics():
    selection = MetricSelection.from_settings("rouge1,chrf", "qqp=exact_match; webnlg=chrf,bleu")
    assert selection.names == ("rouge1", "chrf", "exact_match", "bleu")
    assert selection.for_task("qqp") == ("exact_match",) and selection.for_task("webnlg") == ("chrf", "bleu")
    assert selection.for_task("samsum") == ("rouge1", "chrf")


@pytest.mark.parametrize("settings, message", [
    (dict(metrics="rouge1,accuracy"), "metrics: 'accuracy' is not a known metric; allowed: rouge1, rouge2, rougeL, "
                                      "exact_match, chrf, bleu"),
    (dict(metrics=" , "), "metrics=' , ' names no metric"),
    (dict(task_metrics="qqp=exactmatch"), "task_metrics: 'exactmatch' (task qqp) is not a known metric"),
    (dict(task_metrics="qqp"), "task_metrics entry 'qqp' must be 'task=metric[,metric...]'"),
    (dict(task_metrics="qqp=chrf;qqp=bleu"), "task_metrics names task 'qqp' twice"),
])
def test_unknown_or_malformed_metrics_are_refused_naming_the_allowed_ones(settings, message):
    cfg = RunConfig.from_mapping(settings)
    assert any(message in p for p in problems(cfg, sources=False)), problems(cfg, sources=False)
    with pytest.raises(ValueError, match="not a known metric|names no metric|must be|twice"):
        MetricSelection.of(cfg)


def test_a_metric_name_must_fit_the_keys():
    for bad in ("rouge1/x", "n", "a,b", ""):
        with pytest.raises(ValueError, match="not allowed"):
            register_metric(bad, scorer("exact_match"))
    with pytest.raises(ValueError, match="already registered"):
        register_metric("rouge1", scorer("exact_match"))


# --- bookkeeping: per sample -> per client -> across clients --------------------------------------------


def test_client_then_mean_over_clients():
    # client A: two samples (qqp 1.0, webnlg 0.0) -> 0.5; client B: one sample (qqp 0.5) -> 0.5
    a = summarize_client({k: np.array([1.0, 0.0]) for k in ("rouge1", "rouge2", "rougeL")}, ["qqp", "webnlg"])
    b = summarize_client({k: np.array([0.5]) for k in ("rouge1", "rouge2", "rougeL")}, ["qqp"])
    assert a["rouge1"] == pytest.approx(0.5) and a["n/qqp"] == 1
    out = combine_clients([a, b], ROUGE_KEYS)
    assert out["rouge1"] == pytest.approx(0.5)  # mean over clients, not over the 3 samples (0.5 too)
    assert out["rouge1/qqp"] == pytest.approx(0.75)  # mean of client scores on qqp: (1.0 + 0.5) / 2
    assert out["rouge1/webnlg"] == pytest.approx(0.0)
    assert out["num_clients"] == 2 and out["num_samples"] == 3
    # a client-mean differs from a pooled mean when clients have different sizes
    c = summarize_client({k: np.array([1.0, 1.0, 1.0]) for k in ("rouge1", "rouge2", "rougeL")}, ["qqp"] * 3)
    d = summarize_client({k: np.array([0.0]) for k in ("rouge1", "rouge2", "rougeL")}, ["qqp"])
    assert combine_clients([c, d], ROUGE_KEYS)["rouge1"] == pytest.approx(0.5)


def test_seen_and_unseen_scores_are_per_client_means_then_means_over_clients():
    # Prepare: client A has 2 seen (qqp) and 2 unseen (samsum) samples, client B only seen ones
    a = {k: np.array([1.0, 0.5, 0.2, 0.0]) for k in ROUGE_KEYS}
    b = {k: np.array([0.6, 0.4]) for k in ROUGE_KEYS}
    # Execute
    ma = summarize_client(a, ["qqp", "qqp", "samsum", "samsum"], unseen=("samsum",))
    mb = summarize_client(b, ["gigaword", "gigaword"], unseen=("samsum",))
    both = combine_clients([ma, mb], ROUGE_KEYS)
    # Assert: per client, then the mean over the clients that have such samples
    assert (ma["rouge1/seen"], ma["rouge1/unseen"], ma["n/unseen"]) == (0.75, 0.1, 2.0)
    assert "rouge1/unseen" not in mb and mb["rouge1/seen"] == 0.5
    assert both["rouge1/seen"] == (0.75 + 0.5) / 2 and both["rouge1/unseen"] == 0.1
    # without unseen tasks nothing is added
    assert "rouge1/seen" not in summarize_client(b, ["gigaword", "gigaword"])


def test_a_metric_covers_only_the_tasks_it_scores():
    # Prepare: qqp is scored by exact match only, the other tasks by ROUGE-1
    selection = MetricSelection.from_settings("rouge1", "qqp=exact_match")
    preds, refs = ["duplicate", "the cat", "the cat sat"], ["Duplicate.", "the dog", "the cat sat"]
    # Execute
    scores = score_samples(preds, refs, ["qqp", "samsum", "samsum"], selection)
    only_qqp = summarize_client(score_samples(preds[:1], refs[:1], ["qqp"], selection), ["qqp"])
    both = summarize_client(scores, ["qqp", "samsum", "samsum"])
    out = combine_clients([only_qqp, both], selection.names)
    # Assert: NaN where a metric does not score; a client's mean is over the samples scored; the
    # overall mean over the clients that have such samples
    assert np.isnan(scores["rouge1"][0]) and np.isnan(scores["exact_match"][1:]).all()
    assert scores["exact_match"][0] == 1.0 and scores["rouge1"][1:] == pytest.approx([0.5, 1.0])
    assert "rouge1" not in only_qqp and both["rouge1"] == pytest.approx(0.75) and both["exact_match"] == 1.0
    assert "rouge1/qqp" not in both and "exact_match/samsum" not in both
    assert out["rouge1"] == pytest.approx(0.75) and out["exact_match"] == 1.0 and out["rouge1/samsum"] == pytest.approx(0.75)
    assert out["num_clients"] == 2 and out["num_samples"] == 4


# --- a registered metric, end to end ----------------------------------------------------------------------


@pytest.fixture
def first_word(monkeypatch):
    """A user's metric, registered in one line (the registry is restored afterwards)."""
    monkeypatch.setattr(metrics, "_REGISTRY", dict(metrics._REGISTRY))
    register_metric("first_word", lambda preds, refs: np.array([float(p.split()[:1] == r.split()[:1])
                                                                for p, r in zip(preds, refs, strict=True)]), "first word")


def client_reply(cfg: RunConfig, preds: list[str]):
    """What a client's evaluation returns for these predictions of its four test samples."""
    test = [{"task": t, "instruction": "", "response": r}
            for t, r in (("qqp", "duplicate"), ("qqp", "not duplicate"), ("webnlg", "Paris is big"),
                         ("webnlg", "a b"))]
    rt = SimpleNamespace(cfg=cfg, rnd=1, store=None, data=SimpleNamespace(test=test, unseen_tasks=()))
    return reply(client_metrics(rt, score_predictions(rt, preds)))


def test_a_registered_metric_flows_to_the_clients_the_server_and_the_report(first_word, tmp_path, capsys):
    out = tmp_path / "matrix"
    for method, preds in (("fedit", ["duplicate", "duplicate", "Paris", "x"]), ("local", ["no", "not", "Paris", "a"])):
        cfg = RunConfig.from_mapping(dict(fed_alg=method, sim_alias=method, metrics="first_word,rouge1",
                                          output_dir=str(out / "single"), num_rounds=1))
        replies = {0: client_reply(cfg, preds), 1: client_reply(cfg, preds[:2] + ["Rome", "a"])}
        # the client's reply and the server's aggregate
        assert {"first_word", "first_word/qqp", "first_word/webnlg", "rouge1"} <= set(replies[0]["metrics"])
        final = get_algorithm(method).server(cfg).aggregate_evaluate(1, replies)
        assert final["first_word"] == pytest.approx(np.mean([r["metrics"]["first_word"] for r in replies.values()]))
        folder = RunFolder(cfg.run_dir)
        folder.write_config(cfg.to_dict())
        folder.write_metrics([{"round": 1, "train_loss": 1.0, "eval": final}])
        folder.write_results({"final_round": 1, "final": final, "fed_alg": method, "seed": 0})
    # first words right: fedit 2 of 4 for both clients; local 3 of 4 and 2 of 4
    runs = load_runs(out)
    md = markdown_report(runs, out, "fedit")
    assert "## first word\n" in md and "## ROUGE-1\n" in md
    table = md[md.index("## first word\n"):md.index("## ROUGE-1\n")]
    assert "| fedit | 0.5000 ± – (n=1) |" in table and "| local | 0.6250 ± – (n=1) |" in table
    assert "## Per task (first word)" in md and "## Per task (ROUGE-1)" not in md  # each task under its first metric
    rows = list(csv.DictReader(io.StringIO(results_csv(runs, "fedit"))))
    assert [(r["method"], r["metric"]) for r in rows] == [("fedit", "first_word"), ("local", "first_word"),
                                                          ("fedit", "rouge1"), ("local", "rouge1")]
    assert float(rows[1]["mean"]) == pytest.approx(0.625) and float(rows[1]["fedit_gain"]) == pytest.approx(-0.2)
    assert {r["metric"] for r in csv.DictReader(io.StringIO(runs_csv(runs)))} >= {"first_word", "first_word/webnlg"}
    written = {p.name for p in write_report(out, tmp_path / "report", "fedit")}
    assert {"first_word_curves.png", "bars_single.png"} <= written
    assert summary_main([str(out / "single"), "--alias", "fedit"]) == 0
    assert "| seed | first_word | rouge1 |\n| --- | --- | --- |\n| 0 | 0.5000 |" in capsys.readouterr().out


def test_a_metric_where_lower_is_better_is_marked(monkeypatch):
    monkeypatch.setattr(metrics, "_REGISTRY", dict(metrics._REGISTRY))
    register_metric("length_gap", lambda preds, refs: np.array([abs(len(p) - len(r)) for p, r in zip(preds, refs, strict=True)],
                                                                dtype=float), "length gap", higher_is_better=False)
    assert metric_title("length_gap") == "length gap (lower is better)" and metric_title("chrf") == "chrF"
    assert metric_title("gone") == "gone"  # a metric an old run folder holds, no longer registered


# --- one tiny run ------------------------------------------------------------------------------------------


def test_a_run_scored_by_rouge1_exact_match_and_chrf(tmp_path, sent, capsys):
    from fedrouter.runtime.simulate import simulate

    cfg = tiny_settings(tmp_path, fed_alg="fedit", metrics="rouge1,exact_match,chrf", num_rounds=1, eval_round="1",
                        max_steps=1, max_new_tokens=4)
    results = simulate(cfg)
    keys = {"rouge1", "exact_match", "chrf"}
    final = results["final"]
    assert keys <= set(final) and "rouge2" not in final
    assert {k.split("/")[0] for k in final if "/" in k} == keys
    assert json.loads((cfg.run_dir / "results.json").read_text())["final"] == final
    assert assert_clients_sent_only_what_is_allowed(sent, cfg) == 2 * 4  # one training round, one evaluation
    assert "eval ROUGE-1 " in (cfg.run_dir / "log.txt").read_text() and " exact match " in (cfg.run_dir / "log.txt").read_text()
    assert summary_main([str(tmp_path), "--alias", "t"]) == 0
    assert "| seed | rouge1 | exact_match | chrf |" in capsys.readouterr().out
