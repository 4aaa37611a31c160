"""The built-in tiny base LM (`builtin:tiny`): a small Llama pretrained on the builtin corpus, built once and cached."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import math
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger("fedrouter.models.tiny")

BUILTIN_PREFIX = "builtin:"
CODE_VERSION = "1"  # bump whenever the corpus, tokenizer or training code changes what gets built
MARKER = "fedrouter_tiny.json"
SPECIALS = ("<pad>", "<s>", "</s>", "<unk>")  # ids 0..3

# variant -> (Llama config overrides, pretraining hyper-parameters)
VARIANTS: dict[str, tuple[dict, dict]] = {
    "tiny": (
        {"hidden_size": 128, "intermediate_size": 512, "num_hidden_layers": 4, "num_attention_heads": 4,
         "num_key_value_heads": 4, "max_position_embeddings": 512, "tie_word_embeddings": True},
        {"n_texts": 24000, "seq_len": 96, "batch_size": 16, "steps": 1000, "lr": 2e-3, "weight_decay": 0.01,
         "warmup": 30, "min_lr_ratio": 0.1, "grad_clip": 1.0, "threads": 2},
    ),
}
# "threads" is the most torch threads the build uses; it takes fewer while other processes keep the
# cores busy (_build_threads). The weights do not depend on it: the real build with 1 thread gives the
# same model.safetensors, byte for byte, as with 2 (tests/models/test_tiny.py checks a short build).
THREADS_EVERY = 50  # steps between two looks at how busy the machine is


def is_builtin(name: str) -> bool:
    return str(name).startswith(BUILTIN_PREFIX)


def cache_root() -> Path:
    env = os.environ.get("FEDROUTER_CACHE", "")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "fedrouter"


def _build_key(variant: str, seed: int) -> tuple[str, dict]:
    from fedrouter.data.builtin import builtin_vocabulary

    arch, train = VARIANTS[variant]
    vocab_sha = hashlib.sha256("\n".join(builtin_vocabulary()).encode()).hexdigest()[:16]
    settings = {"variant": variant, "arch": arch, "train": train, "seed": seed, "code_version": CODE_VERSION,
                "vocab_sha": vocab_sha}
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]
    return f"{variant}-{digest}", settings


def resolve_builtin(name: str, seed: int = 0) -> Path:
    """'builtin:tiny' -> a folder loadable with AutoModelForCausalLM/AutoTokenizer.from_pretrained.

    Built (pretrained) on first use and cached under $FEDROUTER_CACHE (default ~/.cache/fedrouter)."""
    variant = str(name)[len(BUILTIN_PREFIX):] if is_builtin(name) else str(name)
    if variant not in VARIANTS:
        known = ", ".join(BUILTIN_PREFIX + v for v in VARIANTS)
        raise ValueError(f"unknown built-in model {name!r}; known: {known}")
    folder_name, settings = _build_key(variant, seed)
    root = cache_root()
    final = root / folder_name
    if (final / MARKER).is_file():
        return final
    root.mkdir(parents=True, exist_ok=True)
    with _file_lock(root / f".{folder_name}.lock"):
        if (final / MARKER).is_file():  # another process built it while we waited for the lock
            log.info("built-in model %s was built by another process: %s", name, final)
            return final
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder_name}.tmp-", dir=root))
        try:
            _build(tmp, settings)
            if final.exists():  # a half-written leftover (no marker) from a crashed older build
                shutil.rmtree(final)
            os.replace(tmp, final)  # atomic: readers see either nothing or a complete folder
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return final


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """Exclusive lock on `path` across processes (and threads: each open is its own lock holder):
    two builders of one model (pytest workers, Ray workers, two runs) never build it at once."""
    with open(path, "a+") as fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("another process is building the built-in model (%s); waiting for it", path.name)
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)  # blocks until that build ends
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def usable_cores() -> int:
    """CPUs this process may run on: its affinity mask, capped by a cgroup CPU quota (containers)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            cores = min(cores, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return cores


def _build_threads(cap: int, own: int) -> int:
    """Torch threads for the next steps of the build: up to `cap`, but no more than the cores that other
    processes leave idle (`own`: the threads this build runs now, part of the load average).

    Each of the model's many small operations is split across the threads, which meet at a barrier
    when it ends. With every core busy, one thread of a pair is often descheduled for a scheduler time
    slice (milliseconds) while the other spins at the barrier, on operations that take microseconds:
    the build then runs many times slower than on one thread, which only loses its share of a core."""
    cores = usable_cores()
    others = max(0.0, os.getloadavg()[0] - own) if hasattr(os, "getloadavg") else 0.0
    return max(1, min(cap, cores, int(cores - others + 0.5)))


def build_tokenizer():
    """Word-level tokenizer over builtin_vocabulary(); BOS is prepended by the post-processor."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    from fedrouter.data.builtin import builtin_vocabulary

    vocab = {tok: i for i, tok in enumerate((*SPECIALS, *builtin_vocabulary()))}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    # Same split as fedrouter.data.builtin.pretokenize: whitespace, then every punctuation char alone.
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation("isolated")]
    )
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A $B", special_tokens=[("<s>", vocab["<s>"])]
    )
    # No decoder: tokens are joined with single spaces, which ROUGE's alphanumeric tokenizer ignores.
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>", unk_token="<unk>",
        model_max_length=VARIANTS["tiny"][0]["max_position_embeddings"], clean_up_tokenization_spaces=False,
    )


def _lr_at(step: int, hp: dict) -> float:
    if step < hp["warmup"]:
        return hp["lr"] * (step + 1) / hp["warmup"]
    progress = (step - hp["warmup"]) / max(1, hp["steps"] - hp["warmup"])
    floor = hp["min_lr_ratio"]
    return hp["lr"] * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress)))


def _pack(docs: list[list[int]], length: int, eos: int, pad: int):
    """Greedily pack whole <s> doc </s> sequences into padded blocks: a document is never split, so an
    entity and its later mention stay in one block (that is what teaches the model to copy)."""
    import torch

    rows: list[list[int]] = []
    cur: list[int] = []
    for ids in docs:
        ids = (list(ids) + [eos])[:length]
        if len(cur) + len(ids) > length:
            rows.append(cur + [pad] * (length - len(cur)))
            cur = []
        cur += ids
    if cur:
        rows.append(cur + [pad] * (length - len(cur)))
    return torch.tensor(rows)


def _build(out: Path, settings: dict) -> None:
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    from fedrouter.data.builtin import pretraining_corpus

    hp, seed = settings["train"], settings["seed"]
    start = time.time()
    threads = torch.get_num_threads()  # the caller's, restored below
    torch.set_num_threads(_build_threads(hp["threads"], own=1))
    try:
        tokenizer = build_tokenizer()
        config = LlamaConfig(vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id,
                             bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                             **settings["arch"])
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
        n_params = sum(p.numel() for p in model.parameters())
        log.info("building %s (%.2fM params) -> %s", settings["variant"], n_params / 1e6, out)

        texts = pretraining_corpus(hp["n_texts"], seed)
        blocks = _pack(tokenizer(texts, add_special_tokens=True)["input_ids"], hp["seq_len"],
                       tokenizer.eos_token_id, tokenizer.pad_token_id)
        labels = blocks.masked_fill(blocks == tokenizer.pad_token_id, -100)
        gen = torch.Generator().manual_seed(seed)
        order = torch.cat([torch.randperm(len(blocks), generator=gen)
                           for _ in range(math.ceil(hp["steps"] * hp["batch_size"] / len(blocks)))])

        opt = torch.optim.AdamW(model.parameters(), lr=hp["lr"], weight_decay=hp["weight_decay"], betas=(0.9, 0.95))
        model.train()
        loss_val, ema = float("nan"), None
        for step in range(hp["steps"]):
            if step and step % THREADS_EVERY == 0:
                torch.set_num_threads(_build_threads(hp["threads"], own=torch.get_num_threads()))
            for group in opt.param_groups:
                group["lr"] = _lr_at(step, hp)
            idx = order[step * hp["batch_size"]:(step + 1) * hp["batch_size"]]
            loss = model(input_ids=blocks[idx], labels=labels[idx]).loss
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), hp["grad_clip"])
            opt.step()
            loss_val = loss.item()
            ema = loss_val if ema is None else 0.9 * ema + 0.1 * loss_val
            if step % 50 == 0 or step == hp["steps"] - 1:
                log.info("pretrain step %d/%d loss %.3f (%.0fs, %d threads)", step + 1, hp["steps"], ema,
                         time.time() - start, torch.get_num_threads())
        model.eval()
        model.generation_config = GenerationConfig(bos_token_id=config.bos_token_id, eos_token_id=config.eos_token_id,
                                                   pad_token_id=config.pad_token_id)
        model.save_pretrained(out, safe_serialization=True)
        tokenizer.save_pretrained(out)
        info = {**settings, "n_params": n_params, "blocks": len(blocks),
                "corpus_tokens": int((labels != -100).sum()), "final_loss": ema, "last_batch_loss": loss_val,
                "build_seconds": round(time.time() - start, 1)}
        (out / MARKER).write_text(json.dumps(info, indent=2))  # written last: marks the folder complete
        log.info("built %s in %.0fs, final loss %.3f", settings["variant"], time.time() - start, ema)
    finally:
        torch.set_num_threads(threads)
