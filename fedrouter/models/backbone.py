"""One base model per process, wrapped once with PEFT; adapters are swapped as weights, never reloaded."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

import numpy as np

from fedrouter.models.loader import ModelSpec, load_model, load_tokenizer
from fedrouter.utils import process_state
from fedrouter.utils.lazy import lazy_import
from fedrouter.utils.timing import phase

torch = lazy_import("torch")

log = logging.getLogger("fedrouter.models")

AdapterState = dict[str, np.ndarray]  # PEFT key (as in adapter_model.safetensors) -> array


def last_hidden_state(model, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """The decoder's last hidden state (after its final norm), without the LM head.

    Embedding passes need no logits: a full causal-LM forward would compute batch x length x vocab of
    them (for Llama-3.2-1B, 128k floats per token) only to drop them. Works on a PEFT model (its
    active adapters, or none under `disable_adapter()`, apply inside the decoder) and on a plain
    transformers model; equal to `model(..., output_hidden_states=True).hidden_states[-1]`."""
    if hasattr(model, "get_base_model"):
        model = model.get_base_model()
    decoder = model.base_model  # transformers: the module under `base_model_prefix`, or the model itself
    if decoder is model:
        return model(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True).hidden_states[-1]
    return decoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state


@dataclass(frozen=True)
class LoraSpec:
    r: int = 8
    alpha: int = 16
    dropout: float = 0.05
    target_modules: tuple[str, ...] | None = None  # None = PEFT's default for the architecture

    @classmethod
    def from_config(cls, cfg) -> LoraSpec:
        mods = cfg.target_modules
        return cls(cfg.lora_r, cfg.lora_alpha, cfg.lora_dropout, tuple(mods) if mods else None)

    def peft_config(self):
        from peft import LoraConfig

        return LoraConfig(
            r=self.r,
            lora_alpha=self.alpha,
            lora_dropout=self.dropout,
            target_modules=list(self.target_modules) if self.target_modules else None,
            bias="none",
            task_type="CAUSAL_LM",
        )


class Backbone:
    """The process's base model with named LoRA slots.

    A slot is a PEFT named adapter; every algorithm uses slot "main", and one that keeps a second
    adapter (a private local one) adds a slot of its own. Loading a client's or a cluster's adapter
    copies arrays into the slot's parameters in place."""

    def __init__(self, spec: ModelSpec, lora: LoraSpec):
        from peft import get_peft_model, prepare_model_for_kbit_training

        self.spec, self.lora = spec, lora
        self.tokenizer = load_tokenizer(spec)
        base = load_model(spec)
        if spec.load_in_4bit or spec.load_in_8bit:
            # Casts norms to fp32 for stable k-bit training; checkpointing off: small batches here.
            base = prepare_model_for_kbit_training(base, use_gradient_checkpointing=False)
        self.model = get_peft_model(base, lora.peft_config(), adapter_name="main")
        self.device = spec.device
        self._params: dict[str, dict[str, torch.nn.Parameter]] = {}
        self._index_slot("main")

    # --- slots ----------------------------------------------------------------------------------
    def ensure_slot(self, slot: str) -> None:
        if slot not in self._params:
            self.model.add_adapter(slot, self.lora.peft_config())
            self._index_slot(slot)

    def _index_slot(self, slot: str) -> None:
        pattern = re.compile(rf"\.{re.escape(slot)}(?=\.weight$)")
        self._params[slot] = {
            pattern.sub("", name): p for name, p in self.model.named_parameters() if f".{slot}." in name and "lora_" in name
        }

    def activate(self, *slots: str) -> None:
        """Make these slots the active adapters (several: their outputs are summed by PEFT)."""
        for s in slots:
            self.ensure_slot(s)
        self.model.base_model.set_adapter(list(slots) if len(slots) > 1 else slots[0])
        # set_adapter marks active adapters trainable; trainability is decided per training call.
        for s in slots:
            for p in self._params[s].values():
                p.requires_grad_(False)

    def parameters(self, slot: str = "main") -> list[torch.nn.Parameter]:
        return list(self._params[slot].values())

    # --- weights as arrays ----------------------------------------------------------------------
    def get_state(self, slot: str = "main") -> AdapterState:
        return {k: p.detach().float().cpu().numpy().copy() for k, p in self._params[slot].items()}

    def set_state(self, state: AdapterState, slot: str = "main") -> None:
        self.ensure_slot(slot)
        params = self._params[slot]
        if set(state) != set(params):
            missing, extra = sorted(set(params) - set(state))[:3], sorted(set(state) - set(params))[:3]
            raise ValueError(f"adapter keys do not match the model (missing {missing}, unexpected {extra})")
        with torch.no_grad():
            for k, p in params.items():
                p.copy_(torch.as_tensor(state[k]).to(p.device, p.dtype))

    def init_state(self, seed: int, slot: str = "main") -> AdapterState:
        """A fresh LoRA initialisation (A random, B zero) that depends on `seed` only. It runs
        under a forked RNG so the caller's random stream is untouched."""
        from peft.tuners.lora import LoraLayer

        self.ensure_slot(slot)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            for module in self.model.modules():
                if isinstance(module, LoraLayer) and slot in module.lora_A:
                    module.reset_lora_parameters(slot, init_lora_weights=True)
        return self.get_state(slot)

    def zero_like(self, slot: str = "main") -> AdapterState:
        return {k: np.zeros(p.shape, dtype=np.float32) for k, p in self._params[slot].items()}


_CACHE: dict[tuple[ModelSpec, LoraSpec], Backbone] = process_state.register(f"{__name__}._CACHE", {})


def get_backbone(cfg) -> Backbone:
    """This process's backbone for the run's model and LoRA settings, built on first use."""
    key = (ModelSpec.from_config(cfg), LoraSpec.from_config(cfg))
    if key not in _CACHE:
        # A process serves one model at a time: drop other entries so memory never holds two.
        _CACHE.clear()
        with phase("load"):
            _CACHE[key] = Backbone(*key)
    return _CACHE[key]
