"""Tests for the embedded synthetic benchmark (fedrouter.data.builtin)."""

from __future__ import annotations

import ast
import itertools
import os
import re
import subprocess
import sys
from collections import Counter

import pytest

from fedrouter.data.builtin import (
    PROMPT_TEMPLATE,
    TASKS,
    builtin_vocabulary,
    make_builtin_pool,
    pretokenize,
    pretraining_corpus,
)

STOP = {"the", "and", "for", "with", "that", "this", "can", "how", "what", "you", "are", "will", "said", "was",
        "his", "her", "its", "new", "from", "who", "had", "year", "local", "best", "way", "should", "does",
        "where", "which", "get"}


@pytest.fixture(scope="module")
def pool() -> list[dict]:
    return make_builtin_pool(300, 0)


def _split(records: list[dict]) -> tuple[list[dict], list[dict]]:
    cut = int(0.8 * len(records))
    return records[:cut], records[cut:]


def test_tasks_constant() -> None:
    assert TASKS == ("qqp", "gigaword", "samsum", "webnlg")


def test_deterministic_per_seed() -> None:
    assert make_builtin_pool(40, 0) == make_builtin_pool(40, 0)
    assert make_builtin_pool(40, 0) != make_builtin_pool(40, 1)
    assert pretraining_corpus(100, 0) == pretraining_corpus(100, 0)
    assert pretraining_corpus(100, 0) != pretraining_corpus(100, 1)


def test_independent_of_hash_seed() -> None:
    # Set iteration order depends on PYTHONHASHSEED; the generator must never rely on it.
    code = ("from fedrouter.data.builtin import make_builtin_pool as m, pretraining_corpus as c;"
            "import hashlib;print(hashlib.sha256((repr(m(30, 3)) + repr(c(50, 3))).encode()).hexdigest())")
    outs = {subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONHASHSEED": s},
                           capture_output=True, text=True, check=True).stdout for s in ("1", "2")}
    assert len(outs) == 1


@pytest.mark.parametrize("n", [0, 1, 7, 120])
def test_sizes_and_record_shape(n: int) -> None:
    records = make_builtin_pool(n, 5)
    assert len(records) == n * len(TASKS)
    assert Counter(r["task"] for r in records) == ({t: n for t in TASKS} if n else Counter())
    for r in records:
        assert set(r) == {"instruction", "response", "task"}
        assert all(isinstance(v, str) and v.strip() for v in r.values())


def test_unique_instructions_and_shuffled(pool: list[dict]) -> None:
    assert len({r["instruction"] for r in pool}) == len(pool)
    first = [r["task"] for r in pool[:40]]
    assert len(set(first)) == len(TASKS)  # shuffled, not grouped by task


def test_task_forms(pool: list[dict]) -> None:
    for r in pool:
        ins, resp = r["instruction"], r["response"]
        if r["task"] == "webnlg":
            triples = ast.literal_eval(ins)
            assert ins == str(triples) and 1 <= len(triples) <= 3
            assert all(t.count(" | ") == 2 and " " not in t.replace(" | ", "") for t in triples)
            assert resp.endswith(".") and "_" not in resp
        elif r["task"] == "samsum":
            lines = ins.split("\n")
            assert 3 <= len(lines) <= 6
            assert all(re.match(r"^[A-Z][a-z]+: \S", line) for line in lines)
            assert resp.endswith(".") and "\n" not in resp
        elif r["task"] == "gigaword":
            assert ins == ins.lower() and resp == resp.lower()
            assert not re.search(r"\d", ins + resp) and ins.endswith(" .")
            assert len(resp.split()) < len(ins.split())
        else:
            assert resp in ("Yes", "No") and ins.count("?-") == 1 and ins.endswith("?")


def test_qqp_label_balance(pool: list[dict]) -> None:
    labels = [r["response"] for r in pool if r["task"] == "qqp"]
    assert 0.3 <= labels.count("Yes") / len(labels) <= 0.5


def test_lengths_fit_the_template(pool: list[dict]) -> None:
    template = len(pretokenize(PROMPT_TEMPLATE.format(instruction="")))
    for r in pool:
        assert len(r["instruction"].split()) <= 50
        assert template + len(pretokenize(r["instruction"])) + len(pretokenize(r["response"])) + 2 <= 160


def _features(text: str) -> list[float]:
    chars = "[]|\n:?-#'"
    return [text.count(c) for c in chars] + [sum(ch.isupper() for ch in text) / max(1, len(text))]


def test_tasks_separable_by_surface_form() -> None:
    from sklearn.linear_model import LogisticRegression

    train, test = make_builtin_pool(100, 0), make_builtin_pool(100, 1)
    clf = LogisticRegression(max_iter=2000).fit([_features(r["instruction"]) for r in train],
                                                [r["task"] for r in train])
    acc = clf.score([_features(r["instruction"]) for r in test], [r["task"] for r in test])
    assert acc >= 0.95


def _content_pairs(text: str) -> set[tuple[str, str]]:
    words = sorted({w for w in re.findall(r"[a-z]+", text.lower()) if len(w) > 2 and w not in STOP})
    return set(itertools.combinations(words, 2))


def test_test_inputs_hold_unseen_combinations(pool: list[dict]) -> None:
    # A test instruction is "novel" when some pair of its content words never co-occurs in a training one.
    train, test = _split(pool)
    seen = set().union(*(_content_pairs(r["instruction"]) for r in train))
    for task in TASKS:
        rows = [r for r in test if r["task"] == task]
        novel = sum(bool(_content_pairs(r["instruction"]) - seen) for r in rows)
        assert novel / len(rows) >= 0.5, task


def test_responses_are_functions_of_instructions() -> None:
    seen: dict[str, str] = {}
    for r in make_builtin_pool(200, 0) + make_builtin_pool(200, 1):
        assert seen.setdefault(r["instruction"], r["response"]) == r["response"]


def test_corpus_never_pairs_an_instruction_with_its_response() -> None:
    corpus = pretraining_corpus(3000, 0)
    for r in make_builtin_pool(200, 0):
        for text in corpus:
            at = text.find(r["instruction"])
            assert at < 0 or r["response"] not in text[at + len(r["instruction"]):]
    for text in corpus:
        assert "?-" not in text and not re.search(r"\?\s*(Yes|No)\b", text)  # no judged question pair
        if "['" in text:
            assert text.startswith("['") and text.endswith("']")  # a data record stands alone
        lines = text.split("\n")
        if re.match(r"^[A-Z][a-z]+: ", lines[0]):
            assert all(re.match(r"^[A-Z][a-z]+: ", line) for line in lines)  # a chat, with no summary after it
        if text == text.lower():  # news: stories and headline lists never share a text
            ends = {line.endswith(" .") for line in lines}
            assert len(ends) == 1


def test_corpus_shares_the_world() -> None:
    corpus_words = {w for t in pretraining_corpus(2000, 0) for w in pretokenize(t)}
    for task in TASKS:
        words = {w for r in make_builtin_pool(50, 0) if r["task"] == task for w in pretokenize(r["instruction"])}
        assert len(words & corpus_words) / len(words) > 0.9, task


def test_vocabulary_covers_everything() -> None:
    vocab = builtin_vocabulary()
    assert vocab == sorted(set(vocab)) and len(vocab) < 3000
    vocab_set = set(vocab)
    texts = [PROMPT_TEMPLATE.format(instruction="x")] + pretraining_corpus(3000, 2)
    for seed in (0, 1, 2):
        texts += [r["instruction"] + " " + r["response"] for r in make_builtin_pool(300, seed)]
    missing = {w for t in texts for w in pretokenize(t)} - vocab_set - {"x"}
    assert not missing
