"""FedDPA-T: a federated global LoRA adapter plus a private local one, mixed per test instance.

Yang et al., "Dual-Personalizing Adapter for Federated Foundation Models" (NeurIPS 2024); baseline
of Talasso et al. (arXiv 2604.00050); see docs/method.md.

Both adapters sit on the same modules of the one backbone: slot "main" is the global adapter
(sent, FedAvg'd), slot "local" the client's own (kept in its store, never sent). Training per round:
(a) local step: only the local adapter learns, with `h = W0 x + a dW_local x + (1 - a) dW_global x`,
a = mix_weight (0.5), the global adapter frozen; (b) global step: the global adapter alone, trained from the
weights received on the same data, is sent. Inference: for a test input x, e_x and the embeddings
of k = k_reference (5) random local training instructions (last layer, last token, local adapter active) give
`alpha = 0.5 * max(0, mean_i cos(e_x, e_i))`, and x is generated with alpha mixing the adapters.
The mixing is real per-sample weighting: both slots are active (PEFT sums their outputs) and a
forward hook scales each slot's LoRA output by a per-sample weight, which holds through the
KV-cached decoding steps since the batch dimension never changes.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
from flwr.app import RecordDict

from fedrouter.algorithms.base import (
    Algorithm,
    ClientAlgorithm,
    ClientRuntime,
    client_metrics,
    metrics_of,
    received_adapter,
    register,
    reply,
    score_predictions,
)
from fedrouter.algorithms.client_state import ClientState
from fedrouter.algorithms.fedit import FedITServer
from fedrouter.config import AlgorithmSettings, RunConfig, setting
from fedrouter.data.prompt import encode_prompt
from fedrouter.models.backbone import AdapterState, last_hidden_state
from fedrouter.steps.generate import generate
from fedrouter.steps.train import train_adapter
from fedrouter.utils.lazy import inference_mode, lazy_import
from fedrouter.utils.seeding import derive_seed

torch = lazy_import("torch")

GLOBAL, LOCAL = "main", "local"


@dataclass(frozen=True)
class FedDPASettings(AlgorithmSettings):
    mix_weight: float = setting(0.5, "a: the local adapter's weight in the local training step (the global one gets 1 - a)")
    k_reference: int = setting(5, "local training instructions compared with each test input for its mixing weight")

    def check(self, run: RunConfig) -> list[str]:
        out = []
        if not 0 <= self.mix_weight <= 1:
            out.append(f"mix_weight={self.mix_weight} must be in [0, 1]")
        if self.k_reference < 1:
            out.append(f"k_reference={self.k_reference} must be >= 1")
        return out

_LOCAL_INIT = 0x10CA1  # seed tag of the local adapter's initialisation


@contextmanager
def adapter_weights(backbone, weights: dict[str, float | torch.Tensor]) -> Iterator[None]:
    """Scale each slot's LoRA output `B A x` by a weight: a float, or a (batch,) tensor for per-sample
    mixing. With the slots active together PEFT adds their scaled outputs, so weights
    {local: alpha, main: 1 - alpha} give `W0 x + alpha dW_local x + (1 - alpha) dW_global x`."""
    from peft.tuners.lora import LoraLayer

    def hook(weight: float | torch.Tensor):
        def scale(module, args, out: torch.Tensor) -> torch.Tensor:
            if isinstance(weight, torch.Tensor):  # (batch,) -> (batch, 1, ..., 1) against (batch, seq, out)
                return out * weight.to(out.device, out.dtype).view(-1, *([1] * (out.dim() - 1)))
            return out * weight
        return scale

    handles = []
    try:
        for module in backbone.model.modules():
            if isinstance(module, LoraLayer):
                for slot, w in weights.items():
                    if slot in module.lora_B:
                        handles.append(module.lora_B[slot].register_forward_hook(hook(w)))
        yield
    finally:
        for h in handles:
            h.remove()


def local_adapter(rt: ClientRuntime, before_round: int) -> AdapterState:
    """The client's local adapter saved for a round < before_round, or its own seeded init (B = 0)."""
    st = rt.store.load(before_round=before_round)
    return st.arrays if st.arrays else rt.backbone.init_state(derive_seed(rt.cfg.seed, rt.client_id, _LOCAL_INIT), LOCAL)


@inference_mode
def last_token_embeddings(backbone, texts: Sequence[str], max_len: int, batch_size: int) -> np.ndarray:
    """Last layer's hidden state at each raw text's last token, only the local adapter active.
    Right-padded by hand, so the real tokens keep positions 0..n-1."""
    backbone.activate(LOCAL)
    tok, dev = backbone.tokenizer, backbone.device
    ids = [tok(t, truncation=True, max_length=max_len)["input_ids"] for t in texts]
    out = []
    for start in range(0, len(ids), batch_size):
        chunk = ids[start : start + batch_size]
        width = max(len(x) for x in chunk)
        batch = torch.full((len(chunk), width), tok.pad_token_id, dtype=torch.long)
        mask = torch.zeros_like(batch)
        for row, x in enumerate(chunk):
            batch[row, : len(x)], mask[row, : len(x)] = torch.tensor(x), 1
        hidden = last_hidden_state(backbone.model, batch.to(dev), mask.to(dev))
        last = torch.tensor([len(x) - 1 for x in chunk], device=hidden.device)
        out.append(hidden[torch.arange(len(chunk), device=hidden.device), last].float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, 0), dtype=np.float32)


def instance_alphas(rt: ClientRuntime) -> np.ndarray:
    """alpha = 0.5 * max(0, mean cosine similarity to k_reference random local training inputs)."""
    rng = np.random.default_rng(derive_seed(rt.cfg.seed, rt.client_id, rt.rnd, 0xD9A))
    n_train, n_test = len(rt.data.train), len(rt.data.test)
    if n_train == 0:
        return np.zeros(n_test)
    picks = np.stack([rng.choice(n_train, size=min(rt.cfg.alg.k_reference, n_train), replace=False) for _ in range(n_test)])
    used = np.unique(picks)
    texts = [r["instruction"] for r in rt.data.test] + [rt.data.train[i]["instruction"] for i in used]
    emb = last_token_embeddings(rt.backbone, texts, rt.cfg.seq_length, rt.cfg.batch_size_eval).astype(np.float64)
    emb /= np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
    test, ref = emb[:n_test], emb[n_test:][np.searchsorted(used, picks)]  # ref: (n_test, k, d)
    cos = np.einsum("nd,nkd->nk", test, ref).mean(axis=1)
    return 0.5 * np.maximum(0.0, cos)


def mixed_generate(rt: ClientRuntime, instructions: Sequence[str], alphas: np.ndarray) -> list[str]:
    """Greedy generation of each input with its own alpha (both slots already loaded).

    `generate` buckets prompts by length; feeding it one length-sorted chunk at a time with
    batch_size = len(chunk) keeps its row order equal to ours (stable sort), so the per-sample
    weights line up with the rows."""
    bb = rt.backbone
    bb.activate(GLOBAL, LOCAL)
    lengths = [len(encode_prompt(bb.tokenizer, s, rt.cfg.seq_length)) for s in instructions]
    order = sorted(range(len(instructions)), key=lengths.__getitem__)
    preds = [""] * len(instructions)
    for start in range(0, len(order), rt.cfg.batch_size_eval):
        idx = order[start : start + rt.cfg.batch_size_eval]
        a = torch.tensor([float(alphas[i]) for i in idx])
        with adapter_weights(bb, {LOCAL: a, GLOBAL: 1.0 - a}):
            outs = generate(bb, [instructions[i] for i in idx], rt.cfg, batch_size=len(idx))
        for i, p in zip(idx, outs, strict=True):
            preds[i] = p
    return preds


class FedDPAClient(ClientAlgorithm):
    def train(self, rt: ClientRuntime, content: RecordDict) -> RecordDict:
        bb, cfg = rt.backbone, rt.cfg
        received = received_adapter(rt, content)
        lr, seed = cfg.lr_at(rt.rnd), derive_seed(cfg.seed, rt.client_id, rt.rnd)
        # (a) local step: gradients reach the local slot only (train_adapter unfreezes just it).
        bb.activate(GLOBAL, LOCAL)
        bb.set_state(received, GLOBAL)
        bb.set_state(local_adapter(rt, rt.rnd), LOCAL)
        mix = cfg.alg.mix_weight
        with adapter_weights(bb, {LOCAL: mix, GLOBAL: 1.0 - mix}):
            res_local = train_adapter(bb, rt.examples, cfg, lr, seed, slot=LOCAL)
        rt.store.save(ClientState(rt.rnd, bb.get_state(LOCAL), {}))
        # (b) global step: the global adapter alone, from the received weights, same data and batches.
        bb.activate(GLOBAL)
        bb.set_state(received, GLOBAL)
        res = train_adapter(bb, rt.examples, cfg, lr, seed, slot=GLOBAL)
        return reply({"loss": res.loss, "local_loss": res_local.loss, "num_samples": res.num_samples},
                     {"adapter": bb.get_state(GLOBAL)})

    def evaluate(self, rt: ClientRuntime, content: RecordDict) -> RecordDict:
        bb = rt.backbone
        bb.set_state(received_adapter(rt, content), GLOBAL)
        bb.set_state(local_adapter(rt, rt.rnd + 1), LOCAL)  # this round's local adapter included
        alphas = instance_alphas(rt)
        test = rt.data.test
        preds = mixed_generate(rt, [r["instruction"] for r in test], alphas)
        scores = score_predictions(rt, preds, alpha=alphas)
        tasks = [r["task"] for r in test]
        rt.store.save_eval(rt.rnd, {"alpha": alphas}, {"tasks": tasks})
        metrics = client_metrics(rt, scores)
        metrics["alpha_mean"] = float(alphas.mean()) if len(alphas) else 0.0
        own = np.array([t in rt.data.tasks for t in tasks], dtype=bool)
        for name, sel in (("own", own), ("other", ~own)):
            if sel.any():  # own = tasks this client trains on; other = the rest of its test set
                metrics[f"alpha_{name}"], metrics[f"n_{name}"] = float(alphas[sel].mean()), float(sel.sum())
        return reply(metrics)


class FedDPAServer(FedITServer):
    """FedAvg of the global adapter (FedIT's server); also reports the mixing weights."""

    def aggregate_evaluate(self, rnd, replies):
        out = super().aggregate_evaluate(rnd, replies)
        ms = [metrics_of(c) for c in replies.values()]
        if ms:
            out["alpha_mean"] = float(np.mean([m["alpha_mean"] for m in ms]))
        for name in ("own", "other"):
            pairs = [(m[f"alpha_{name}"], m[f"n_{name}"]) for m in ms if f"alpha_{name}" in m]
            if pairs:
                out[f"alpha_{name}"] = float(np.average([a for a, _ in pairs], weights=[n for _, n in pairs]))
        return out


ALGORITHM = register(Algorithm("feddpa", FedDPAServer, FedDPAClient, FedDPASettings,
                               summary="global + private local adapter, instance-wise mixing at inference"))
