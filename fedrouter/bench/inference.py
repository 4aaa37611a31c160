"""Routed evaluation ours vs the reference way, and our generation vs a plain batched `model.generate`.

Both run in this process on a finished run's adapters, centroids and test samples."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fedrouter.algorithms.base import Routing, get_algorithm
from fedrouter.bench.replay import client_runtime, restored_server
from fedrouter.config import RunConfig
from fedrouter.data.prompt import encode_prompt
from fedrouter.metrics import MetricSelection, score_samples
from fedrouter.models.backbone import get_backbone
from fedrouter.models.loader import ModelSpec, load_model
from fedrouter.steps import cluster
from fedrouter.steps.embed import mean_pooled
from fedrouter.steps.generate import DECODE_COUNTERS, generate
from fedrouter.utils import process_state


@torch.inference_mode()
def plain_generate(model, tok, instructions: Sequence[str], cfg: RunConfig) -> list[str]:
    """The baseline: prompts in their given order, fixed batches, each left-padded to its longest
    prompt, one `model.generate` call per batch (greedy, KV cache, same max_new_tokens)."""
    encoded = [encode_prompt(tok, ins, cfg.seq_length) for ins in instructions]
    out = []
    for start in range(0, len(encoded), cfg.batch_size_eval):
        batch = encoded[start : start + cfg.batch_size_eval]
        width = max(len(e) for e in batch)
        ids = torch.tensor([[tok.pad_token_id] * (width - len(e)) + e for e in batch])
        mask = torch.tensor([[0] * (width - len(e)) + [1] * len(e) for e in batch])
        gen = model.generate(input_ids=ids.to(model.device), attention_mask=mask.to(model.device),
                             max_new_tokens=cfg.max_new_tokens, do_sample=False, num_beams=1, use_cache=True,
                             pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
        out += [t.strip() for t in tok.batch_decode(gen[:, width:], skip_special_tokens=True)]
    return out


@torch.inference_mode()
def _mean_pooled(model, tok, texts: Sequence[str], cfg: RunConfig) -> np.ndarray:
    """The same instruction embedding as fedrouter.steps.embed.base_embeddings, on a plain base model, in the
    given order (the reference batches its texts as they come)."""
    vecs = []
    for start in range(0, len(texts), cfg.batch_size_eval):
        enc = tok(list(texts[start : start + cfg.batch_size_eval]), return_tensors="pt", padding=True,
                  truncation=True, max_length=cfg.seq_length)
        vecs.append(mean_pooled(model, enc["input_ids"], enc["attention_mask"])[0])
    return np.concatenate(vecs)


def reference_routed_eval(cfg: RunConfig, client_id: int, centroids: np.ndarray, candidates: np.ndarray,
                          adapter_dirs: dict[int, Path]) -> tuple[list[str], np.ndarray, float, int]:
    """The reference's evaluation of one client: a fresh base model for the embedding pass, then per
    routed cluster a fresh base model + `PeftModel.from_pretrained(adapter folder)` + plain generate.
    Returns (predictions, routed cluster per sample, seconds spent loading, number of loads)."""
    from peft import PeftModel

    spec, tok = ModelSpec.from_config(cfg), get_backbone(cfg).tokenizer  # one tokenizer: generous to the reference
    test = _test(cfg, client_id)
    instructions = [r["instruction"] for r in test]
    start = time.perf_counter()
    base = load_model(spec)
    load_s = time.perf_counter() - start
    routed = cluster.nearest(_mean_pooled(base, tok, instructions, cfg), centroids, candidates)
    preds = [""] * len(test)
    groups = np.unique(routed)
    for g in groups:
        idx = np.flatnonzero(routed == g)
        start = time.perf_counter()
        model = PeftModel.from_pretrained(load_model(spec), str(adapter_dirs[int(g)]))
        model.eval()
        load_s += time.perf_counter() - start
        for i, p in zip(idx, plain_generate(model, tok, [instructions[i] for i in idx], cfg), strict=True):
            preds[i] = p
    score_samples(preds, [r["response"] for r in test], [r["task"] for r in test], MetricSelection.of(cfg))
    return preds, routed, load_s, 1 + len(groups)


def _test(cfg: RunConfig, client_id: int) -> list[dict[str, Any]]:
    from fedrouter.data.federated import client_data

    return client_data(cfg, client_id).test


def routing_of(cfg: RunConfig) -> Routing:
    """The run's method's routing hook; the routed-evaluation measurements need a method that routes."""
    alg = get_algorithm(cfg.fed_alg)
    if alg.routing is None:
        raise ValueError(f"fed_alg={cfg.fed_alg!r} does not route test samples to adapters (its registry entry "
                         "has no routing hook): the routed-evaluation measurements need a method that does")
    return alg.routing


def round_adapter_dirs(run_dir: Path, rnd: int) -> dict[int, Path]:
    """Cluster -> the folder of its adapter saved at round `rnd` (<run>/adapters/round_<r>/<name>_<cluster>)."""
    return {int(p.name.rsplit("_", 1)[1]): p for p in (run_dir / "adapters" / f"round_{rnd}").iterdir()
            if p.name.startswith("cluster_")}


def routed_eval_speedup(cfg: RunConfig, run_dir: Path) -> dict[str, Any]:
    """Every client's routed evaluation of the run's last round, ours (the real client half on the
    process's one backbone: embed the test set, route, swap adapters, bucketed generation, scoring)
    against the reference way, client by client, on the same samples, centroids and adapters."""
    routing = routing_of(cfg)
    if getattr(cfg.alg, "router_model", "centroid") != "centroid":
        raise ValueError(f"router_model={cfg.alg.router_model!r}: the reference code routes by the nearest centroid, "
                         "so the routed-evaluation comparison needs router_model=centroid")
    server, rnd = restored_server(cfg, run_dir)
    contents = server.configure_evaluate(rnd, list(range(cfg.num_clients)))
    adapter_dirs = round_adapter_dirs(run_dir, rnd)
    client = get_algorithm(cfg.fed_alg).client()
    ours_s = ref_s = load_s = 0.0
    same_route = same_pred = total = loads = 0
    with tempfile.TemporaryDirectory() as store:
        for warmup in (True, False):  # one untimed pass on client 0 for lazy imports on both sides
            for cid in [0] if warmup else range(cfg.num_clients):
                rt = client_runtime(cfg, cid, rnd, Path(store))
                content = contents[cid]
                client.clear_caches()  # ours embeds its test set once per evaluation round
                t0 = time.perf_counter()
                client.evaluate(rt, content)
                t1 = time.perf_counter()
                centroids, candidates = routing.router(content)
                ref_preds, ref_routed, ref_load_s, ref_loads = reference_routed_eval(
                    cfg, cid, centroids, candidates, adapter_dirs)
                t2 = time.perf_counter()
                if warmup:
                    continue
                ours_s, ref_s = ours_s + t1 - t0, ref_s + t2 - t1
                load_s, loads = load_s + ref_load_s, loads + ref_loads
                ours_routed = routing.routed(rt.store, rnd)
                ours_preds = [p["prediction"] for p in rt.store.load_predictions(rnd)]
                same_route += int((ours_routed == ref_routed).sum())
                same_pred += sum(a == b for a, b in zip(ours_preds, ref_preds, strict=True))
                total += len(ref_preds)
    return {"ours_s": ours_s, "reference_s": ref_s, "speedup": ref_s / ours_s, "samples": total,
            "reference_loads": loads, "reference_load_s": load_s,
            "same_routing": same_route / total, "same_predictions": same_pred / total}


def generation_efficiency(cfg: RunConfig, run_dir: Path, repeats: int = 2) -> dict[str, Any]:
    """Our `generate` (length-bucketed) against `plain_generate` on the same backbone, adapter and
    prompts (every client's test set, in client order); best of `repeats` alternated timings."""
    server, _ = restored_server(cfg, run_dir)
    backbone = get_backbone(cfg)
    backbone.activate("main")
    backbone.set_state(next(iter(server.adapters().values())))
    prompts = [r["instruction"] for cid in range(cfg.num_clients) for r in _test(cfg, cid)]
    ours, plain = [], []
    for _ in range(repeats):
        process_state.clear(DECODE_COUNTERS)
        t0 = time.perf_counter()
        a = generate(backbone, prompts, cfg)
        t1 = time.perf_counter()
        steps = dict(DECODE_COUNTERS)
        b = plain_generate(backbone.model, backbone.tokenizer, prompts, cfg)
        t2 = time.perf_counter()
        ours.append(t1 - t0)
        plain.append(t2 - t1)
    return {"prompts": len(prompts), "ours_s": min(ours), "plain_s": min(plain),
            "ours_prompts_per_s": len(prompts) / min(ours), "plain_prompts_per_s": len(prompts) / min(plain),
            "efficiency": min(plain) / min(ours), "same_outputs": sum(x == y for x, y in zip(a, b, strict=True)) / len(a),
            "roofline": roofline(backbone.model, min(ours), steps["steps"], steps["row_steps"])}


def machine_limits(copy_mb: int = 256, matmul_n: int = 1024, repeats: int = 3,
                   dtype: torch.dtype = torch.float32) -> dict[str, float]:
    """This process's measured memory bandwidth (bytes/s: a large tensor copy, read + write) and matmul
    throughput in `dtype` (FLOP/s: an n x n product; bf16 has its own units on CPUs with AVX512-BF16/AMX),
    best of `repeats`, at torch's current thread count."""
    src = torch.ones(copy_mb * 2**20 // 4)
    dst = torch.empty_like(src)
    best = float("inf")
    for _ in range(repeats + 1):
        t0 = time.perf_counter()
        dst.copy_(src)
        best = min(best, time.perf_counter() - t0)
    bandwidth = 2 * src.numel() * 4 / best
    a, b = torch.randn(matmul_n, matmul_n, dtype=dtype), torch.randn(matmul_n, matmul_n, dtype=dtype)
    best = float("inf")
    for _ in range(repeats + 1):
        t0 = time.perf_counter()
        torch.matmul(a, b)
        best = min(best, time.perf_counter() - t0)
    return {"bandwidth_gb_s": bandwidth / 1e9, "matmul_gflop_s": 2 * matmul_n**3 / best / 1e9,
            "matmul_dtype": str(dtype).removeprefix("torch."), "threads": torch.get_num_threads()}


def roofline(model, seconds: float, steps: int, row_steps: int) -> dict[str, Any]:
    """How close decoding came to the hardware's limit. A decode step must read every weight once
    (memory time = weight bytes / bandwidth) and do ~2 FLOPs per parameter per batch row (compute time
    = 2 x parameters x rows / matmul throughput); the floor of the measured steps is the larger of the
    two totals. Fraction = floor / measured generation seconds (which also holds the
    prompts' prefill, tokenization and sampling: an upper bound on the waste, not all of it decoding)."""
    floats = [p.dtype for p in model.parameters() if p.is_floating_point()]
    compute_dtype = max(set(floats), key=floats.count) if floats else torch.float32  # the weights' main dtype
    limits = machine_limits(dtype=compute_dtype)
    weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    params = sum(p.numel() for p in model.parameters())  # 4-bit: packed storage, counted as stored
    memory_s = steps * weight_bytes / (limits["bandwidth_gb_s"] * 1e9)
    compute_s = 2 * params * row_steps / (limits["matmul_gflop_s"] * 1e9)
    floor = max(memory_s, compute_s)
    return {**limits, "weight_mb": weight_bytes / 2**20, "decode_steps": steps, "row_steps": row_steps,
            "memory_floor_s": memory_s, "compute_floor_s": compute_s, "measured_s": seconds,
            "fraction": floor / seconds if seconds else 0.0,
            "bound": "memory" if memory_s >= compute_s else "compute"}


def mixed_vs_grouped(cfg: RunConfig, run_dir: Path) -> dict[str, Any]:
    """Every client's routed evaluation of the run's last round through the real client half, once
    with the routed groups decoded one after another and once in mixed-adapter batches (alternated,
    one untimed warm-up): seconds of each, the share of identical predictions, and what `auto`
    chose for each client from its measured decode-step times."""
    from fedrouter.steps.batching import mixed_batches_pay

    routing = routing_of(cfg)
    server, rnd = restored_server(cfg, run_dir)
    contents = server.configure_evaluate(rnd, list(range(cfg.num_clients)))
    client = get_algorithm(cfg.fed_alg).client()
    seconds = {"grouped": 0.0, "mixed": 0.0}
    preds: dict[str, list[str]] = {"grouped": [], "mixed": []}
    auto_mixed = groups = 0
    with tempfile.TemporaryDirectory() as store:
        for warmup in (True, False):
            for cid in [0] if warmup else range(cfg.num_clients):
                for mode in ("grouped", "mixed"):
                    mcfg = cfg.replace(generation_batching=mode)
                    rt = client_runtime(mcfg, cid, rnd, Path(store) / mode)
                    client.clear_caches()  # both modes embed their test set
                    t0 = time.perf_counter()
                    client.evaluate(rt, contents[cid])
                    if warmup:
                        continue
                    seconds[mode] += time.perf_counter() - t0
                    preds[mode] += [p["prediction"] for p in rt.store.load_predictions(rnd)]
                    if mode == "mixed":
                        sizes = np.unique(routing.routed(rt.store, rnd), return_counts=True)[1]
                        groups += len(sizes)
                        auto_mixed += int(mixed_batches_pay(get_backbone(cfg), sizes.tolist(), cfg.batch_size_eval))
    same = sum(a == b for a, b in zip(preds["grouped"], preds["mixed"], strict=True))
    return {"grouped_s": seconds["grouped"], "mixed_s": seconds["mixed"],
            "speedup": seconds["grouped"] / seconds["mixed"], "samples": len(preds["mixed"]),
            "same_predictions": same / len(preds["mixed"]), "mean_groups_per_client": groups / cfg.num_clients,
            "auto_chose_mixed_for": auto_mixed, "clients": cfg.num_clients}
