"""Tests for the built-in tiny LM (fedrouter.models.tiny), on a shrunken build so they stay fast."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fedrouter.data.builtin import PROMPT_TEMPLATE, make_builtin_pool, pretokenize
from fedrouter.models import tiny

# Same architecture family, a few pretraining steps: the cache/loading behaviour is what is tested here
# (the real build's quality is checked offline; see the module's docstring).
FAST_ARCH = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
             "num_key_value_heads": 2, "max_position_embeddings": 512, "tie_word_embeddings": True}
FAST_TRAIN = {**tiny.VARIANTS["tiny"][1], "n_texts": 200, "steps": 3, "warmup": 1}
PATCH = f"import fedrouter.models.tiny as t; t.VARIANTS['tiny'] = ({FAST_ARCH!r}, {FAST_TRAIN!r})"


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory):
    """(cache root, model folder, first-build seconds) for a fast build in a private cache."""
    root = tmp_path_factory.mktemp("fedrouter-cache")
    # The patch ends with the build: a session fixture that kept it would point every later test
    # (and the Ray workers they start) at this cache, where they would build the real model again.
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FEDROUTER_CACHE", str(root))
        mp.setitem(tiny.VARIANTS, "tiny", (FAST_ARCH, FAST_TRAIN))
        start = time.time()
        path = tiny.resolve_builtin("builtin:tiny")
        seconds = time.time() - start
    return root, path, seconds


@pytest.fixture
def fast_env(built, monkeypatch: pytest.MonkeyPatch):
    root = built[0]
    monkeypatch.setenv("FEDROUTER_CACHE", str(root))
    monkeypatch.setitem(tiny.VARIANTS, "tiny", (FAST_ARCH, FAST_TRAIN))
    return root


def test_is_builtin() -> None:
    assert tiny.is_builtin("builtin:tiny") and not tiny.is_builtin("meta-llama/Llama-2-7b-hf")
    assert tiny.BUILTIN_PREFIX == "builtin:"


def test_unknown_variant_names_known_ones() -> None:
    with pytest.raises(ValueError, match="builtin:tiny"):
        tiny.resolve_builtin("builtin:huge")


def test_real_variant_is_a_small_llama() -> None:
    arch, train = tiny.VARIANTS["tiny"]
    assert arch["num_hidden_layers"] == 4 and arch["max_position_embeddings"] == 512
    assert train["threads"] == 2 and train["steps"] > 0


def test_build_lands_in_cache_root(built) -> None:
    root, path, _ = built
    assert path.parent == root and path.name.startswith("tiny-")
    for name in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", tiny.MARKER):
        assert (path / name).is_file(), name
    info = json.loads((path / tiny.MARKER).read_text())
    assert info["arch"] == FAST_ARCH and info["seed"] == 0 and info["final_loss"] > 0
    assert not [p for p in root.iterdir() if ".tmp-" in p.name]  # the temp build folder was renamed away


def test_second_call_is_a_cache_hit(built, fast_env, monkeypatch: pytest.MonkeyPatch) -> None:
    _, path, _ = built
    monkeypatch.setattr(tiny, "_build", lambda *a, **k: pytest.fail("rebuilt despite the cache"))
    start = time.time()
    assert tiny.resolve_builtin("builtin:tiny") == path
    assert time.time() - start < 1.0


def test_key_depends_on_seed_and_settings(fast_env) -> None:
    a, _ = tiny._build_key("tiny", 0)
    b, _ = tiny._build_key("tiny", 1)
    assert a != b and a == tiny._build_key("tiny", 0)[0]


def test_default_cache_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FEDROUTER_CACHE", raising=False)
    assert tiny.cache_root() == Path.home() / ".cache" / "fedrouter"
    monkeypatch.setenv("FEDROUTER_CACHE", "/somewhere/else")
    assert tiny.cache_root() == Path("/somewhere/else")


def test_loads_with_auto_classes(built) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = built[1]
    model = AutoModelForCausalLM.from_pretrained(path)
    tok = AutoTokenizer.from_pretrained(path)
    assert type(model).__name__ == "LlamaForCausalLM"
    names = {n.rsplit(".", 1)[-1] for n, _ in model.named_modules()}
    assert {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"} <= names
    assert model.config.vocab_size == len(tok)
    assert (model.config.bos_token_id, model.config.eos_token_id) == (tok.bos_token_id, tok.eos_token_id)
    ids = tok("Anna: Hi Ben!", return_tensors="pt")["input_ids"]
    out = model.generate(ids, max_new_tokens=3, do_sample=False, pad_token_id=tok.pad_token_id)
    assert out.shape[1] <= ids.shape[1] + 3


def test_tokenizer_specials_and_bos(built) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(built[1])
    assert (tok.pad_token, tok.bos_token, tok.eos_token, tok.unk_token) == ("<pad>", "<s>", "</s>", "<unk>")
    assert len({tok.pad_token_id, tok.bos_token_id, tok.eos_token_id, tok.unk_token_id}) == 4
    assert tok("Yes")["input_ids"][0] == tok.bos_token_id
    assert tok("Yes", add_special_tokens=False)["input_ids"] == [tok.convert_tokens_to_ids("Yes")]


def test_tokenizer_round_trips_builtin_text(built) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(built[1])
    for r in make_builtin_pool(60, 3):
        for text in (PROMPT_TEMPLATE.format(instruction=r["instruction"]), " " + r["response"]):
            ids = tok(text, add_special_tokens=False)["input_ids"]
            assert tok.unk_token_id not in ids, text
            assert tok.convert_ids_to_tokens(ids) == pretokenize(text)
            assert tok.decode(ids).split(" ") == pretokenize(text)  # words joined by single spaces


def test_punctuation_is_split(built) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(built[1])
    text = "['Alan_Bean | birthPlace | Wheeler,_Texas']"
    assert tok.tokenize(text)[:6] == ["[", "'", "Alan", "_", "Bean", "|"]


def test_concurrent_builds_share_one_folder(tmp_path: Path) -> None:
    # Two processes resolving at once: the file lock makes the second wait and reuse the first's build.
    code = f"{PATCH}; print(t.resolve_builtin('builtin:tiny', seed=7))"
    env = {**os.environ, "FEDROUTER_CACHE": str(tmp_path)}
    procs = [subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outs]
    paths = {o[0].strip().splitlines()[-1] for o in outs}
    assert len(paths) == 1
    assert [p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")] == [Path(paths.pop()).name]


def test_build_logs_progress(tmp_path: Path, fast_env, monkeypatch: pytest.MonkeyPatch,
                             caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("FEDROUTER_CACHE", str(tmp_path))
    with caplog.at_level(logging.INFO, logger="fedrouter.models.tiny"):
        tiny.resolve_builtin("builtin:tiny", seed=3)
    assert any("pretrain step" in r.getMessage() for r in caplog.records)


def test_concurrent_builders_build_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Prepare: a builder that takes a while and counts its calls; a private cache
    import threading

    monkeypatch.setenv("FEDROUTER_CACHE", str(tmp_path))
    builds = []

    def slow_build(out: Path, settings: dict) -> None:
        builds.append(out)
        time.sleep(0.5)  # the other builder arrives meanwhile and must wait on the lock
        (out / tiny.MARKER).write_text(json.dumps(settings))

    monkeypatch.setattr(tiny, "_build", slow_build)
    found: list[Path] = []
    # Execute: two builders at once (each opens the lock file itself, as two processes would)
    workers = [threading.Thread(target=lambda: found.append(tiny.resolve_builtin("builtin:tiny", seed=5)))
               for _ in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=30)
    # Assert: one build; the second waited and took the cached folder
    assert len(builds) == 1 and len(found) == 2 and found[0] == found[1]
    assert (found[0] / tiny.MARKER).is_file()


@pytest.mark.parametrize(("cores", "load", "own", "threads"), [
    (2, 1.0, 1, 2),   # only the build runs: both cores
    (2, 2.1, 2, 2),   # the build's own two threads make the load
    (2, 4.0, 2, 1),   # another job keeps a core busy: one thread, no barrier to wait at
    (2, 12.0, 1, 1),  # a loaded machine: one thread
    (1, 0.0, 1, 1),   # never more threads than cores
    (16, 3.0, 1, 2),  # never more than the variant's cap
])
def test_build_threads_follow_the_idle_cores(monkeypatch: pytest.MonkeyPatch, cores, load, own, threads) -> None:
    monkeypatch.setattr(tiny, "usable_cores", lambda: cores)
    monkeypatch.setattr(tiny.os, "getloadavg", lambda: (load, load, load))
    assert tiny._build_threads(2, own=own) == threads


def test_build_weights_do_not_depend_on_the_thread_count(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The real architecture (whose large reductions, e.g. the embedding's gradient norm, are the ones torch
    # splits across threads), a few steps on a small corpus, once on 1 thread and once on 2.
    import hashlib

    arch, train = tiny.VARIANTS["tiny"]
    monkeypatch.setitem(tiny.VARIANTS, "tiny", (arch, {**train, "n_texts": 200, "steps": 2, "warmup": 1}))
    _, settings = tiny._build_key("tiny", 0)
    digests = set()
    for threads in (1, 2):
        monkeypatch.setattr(tiny, "_build_threads", lambda cap, own, n=threads: n)
        out = tmp_path / f"threads{threads}"
        out.mkdir()
        tiny._build(out, settings)
        digests.add(hashlib.sha256((out / "model.safetensors").read_bytes()).hexdigest())
    assert len(digests) == 1
