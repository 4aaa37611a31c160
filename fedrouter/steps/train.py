"""One local training call: completion-only loss on one adapter slot, fresh optimizer, fixed steps."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from fedrouter.data.prompt import IGNORE_INDEX, Encoded
from fedrouter.utils.lazy import lazy_import
from fedrouter.utils.timing import timed

torch = lazy_import("torch")


@dataclass(frozen=True)
class TrainResult:
    loss: float  # mean training loss over the call's optimizer steps
    num_samples: int  # distinct samples the adapter was trained on (FedAvg weight)
    steps: int


def collate(batch: Sequence[Encoded], pad_id: int, device: torch.device) -> dict[str, torch.Tensor]:
    """Right-padded input ids, attention mask and labels (padding ignored by the loss)."""
    width = max(len(e.input_ids) for e in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), width), IGNORE_INDEX, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for i, e in enumerate(batch):
        n = len(e.input_ids)
        ids[i, :n] = torch.tensor(e.input_ids)
        labels[i, :n] = torch.tensor(e.labels)
        mask[i, :n] = 1
    return {"input_ids": ids.to(device), "attention_mask": mask.to(device), "labels": labels.to(device)}


def batch_plan(n: int, cfg, rng: np.random.Generator) -> list[np.ndarray]:
    """Indices of each optimizer step's samples. With max_steps > 0: that many steps, each drawing
    batch_size samples from a reshuffled pass over the data (as OpenFedLLM's max_steps does);
    otherwise num_train_epochs full passes."""
    if n == 0:
        return []
    steps = cfg.max_steps if cfg.max_steps > 0 else cfg.num_train_epochs * math.ceil(n / cfg.batch_size)
    order = np.concatenate([rng.permutation(n) for _ in range(math.ceil(steps * cfg.batch_size / n) + 1)])
    return [order[s * cfg.batch_size : (s + 1) * cfg.batch_size] for s in range(steps)]


@timed("train")
def train_adapter(
    backbone,
    examples: Sequence[Encoded],
    cfg,
    lr: float,
    seed: int,
    slot: str = "main",
    loss_fn: Callable | None = None,
) -> TrainResult:
    """Train the adapter in `slot` (already loaded with its starting weights) on `examples`.

    `seed` fixes batch order and dropout, so a client's update does not depend on which process or
    in which order it runs. `loss_fn(backbone, batch) -> loss` lets an algorithm change the forward
    (e.g. to mix two adapters); the default is the causal LM loss on response tokens."""
    model = backbone.model
    params = backbone.parameters(slot)
    for p in params:
        p.requires_grad_(True)
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    rng = np.random.default_rng(seed)
    plan = batch_plan(len(examples), cfg, rng)
    micro = max(1, cfg.batch_size // cfg.gradient_accumulation_steps)
    pad_id = backbone.tokenizer.pad_token_id
    losses: list[float] = []
    seen: set[int] = set()
    model.train()
    with torch.random.fork_rng(devices=[backbone.device] if backbone.device.type == "cuda" else []):
        torch.manual_seed(seed)  # dropout masks
        for step_idx in plan:
            optimizer.zero_grad(set_to_none=True)
            step_loss = 0.0
            chunks = [step_idx[i : i + micro] for i in range(0, len(step_idx), micro)]
            for chunk in chunks:
                batch = collate([examples[i] for i in chunk], pad_id, backbone.device)
                loss = loss_fn(backbone, batch) if loss_fn else model(**batch).loss
                (loss / len(chunks)).backward()
                step_loss += loss.item() / len(chunks)
            optimizer.step()
            losses.append(step_loss)
            seen.update(int(i) for i in step_idx)
    model.eval()
    for p in params:
        p.requires_grad_(False)
    return TrainResult(float(np.mean(losses)) if losses else float("nan"), len(seen), len(plan))
