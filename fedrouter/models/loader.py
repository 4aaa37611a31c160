"""Base model + tokenizer loading (hub id, local folder, GGUF, 4/8-bit), once per process."""

from __future__ import annotations

import importlib.util
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from fedrouter.utils.lazy import lazy_import

torch = lazy_import("torch")

log = logging.getLogger("fedrouter.models")

# How many times a base model was actually loaded in this process; tests assert it stays at 1
# across clients, rounds, embedding and routed evaluation.
LOAD_COUNT = 0


class ModelLoadError(RuntimeError):
    """The model could not be found or loaded; the message says what to do."""


@dataclass(frozen=True)
class ModelSpec:
    """Everything that determines which base model a process holds (the per-process cache key)."""

    name_or_path: str
    gguf_file: str = ""
    load_in_4bit: bool = False
    load_in_8bit: bool = False
    dtype: str = "auto"
    gpu: bool = True
    seed: int = 0  # only used to build the built-in model

    @classmethod
    def from_config(cls, cfg) -> ModelSpec:
        return cls(cfg.model_name_or_path, cfg.gguf_file, cfg.load_in_4bit, cfg.load_in_8bit, cfg.dtype, cfg.gpu)

    @property
    def device(self) -> torch.device:
        return torch.device("cuda" if self.gpu and torch.cuda.is_available() else "cpu")

    def torch_dtype(self) -> torch.dtype:
        if self.dtype != "auto":
            return getattr(torch, self.dtype)
        if self.device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32


def bitsandbytes_problem() -> str | None:
    """Why 4/8-bit cannot be used here, or None when bitsandbytes is importable."""
    if importlib.util.find_spec("bitsandbytes") is None:
        return "bitsandbytes is not installed (pip install bitsandbytes)"
    try:
        import bitsandbytes  # noqa: F401
    except Exception as exc:  # noqa: BLE001 - any import failure means unusable
        return f"bitsandbytes failed to import: {exc}"
    return None


def resolve_model_path(name_or_path: str, seed: int = 0) -> str:
    """builtin:* -> its cached folder (built on first use); anything else is passed through."""
    from fedrouter.models.tiny import is_builtin, resolve_builtin

    if is_builtin(name_or_path):
        return str(resolve_builtin(name_or_path, seed=seed))
    return name_or_path


def model_available_offline(name_or_path: str) -> str | None:
    """None if the model can be loaded without a network; otherwise an actionable message."""
    from fedrouter.models.tiny import is_builtin

    if is_builtin(name_or_path) or Path(name_or_path).expanduser().exists():
        return None
    if not _offline():
        return None
    try:
        from huggingface_hub import try_to_load_from_cache

        if isinstance(try_to_load_from_cache(name_or_path, "config.json"), str):
            return None
    except Exception:  # noqa: BLE001 - a broken cache is the same as no cache
        pass
    return (
        f"model_name_or_path={name_or_path!r} is neither a local folder nor in the Hugging Face cache, "
        "and this machine is offline. Use a local path, the built-in model (builtin:tiny), or go "
        "online once to fill the cache."
    )


def _offline() -> bool:
    return any(os.environ.get(v, "") not in ("", "0", "false") for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def load_tokenizer(spec: ModelSpec):
    from transformers import AutoTokenizer

    path = resolve_model_path(spec.name_or_path, spec.seed)
    kwargs = {"gguf_file": spec.gguf_file} if spec.gguf_file else {}
    tok = AutoTokenizer.from_pretrained(path, **kwargs)
    if tok.pad_token_id is None:
        # Models without a pad token (Llama): reuse EOS; padded positions are masked anyway.
        tok.pad_token = tok.eos_token
    # Right padding for training and embedding; generation left-pads its own batches.
    tok.padding_side = "right"
    return tok


def _keep_4bit_layers_trainable(model) -> None:
    """bitsandbytes 0.50, on CPUs with AVX512-BF16, repacks a Linear4bit's weights for a faster
    kernel the first time the layer runs in eval mode, and computes it with that kernel from then on,
    in training too; the kernel has no backward pass, so after a first generation (e.g. the round-0
    evaluation) LoRA training silently stops learning. One model serves generation and training in
    every process here, so the repacking is switched off."""
    import bitsandbytes as bnb

    for module in model.modules():
        if isinstance(module, bnb.nn.Linear4bit):
            module.support_avx512bf16_for_cpu = False


def load_model(spec: ModelSpec):
    """A fresh base model (frozen). Callers go through the per-process cache in backbone.py."""
    global LOAD_COUNT
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    path = resolve_model_path(spec.name_or_path, spec.seed)
    kwargs: dict = {"dtype": spec.torch_dtype()}
    if spec.gguf_file:
        kwargs["gguf_file"] = spec.gguf_file
    if spec.load_in_4bit or spec.load_in_8bit:
        problem = bitsandbytes_problem()
        if problem:
            raise ModelLoadError(f"load_in_4bit/load_in_8bit asked for, but {problem}")
        if spec.load_in_4bit:
            kwargs["quantization_config"] = BitsAndBytesConfig(
                load_in_4bit=True,
                bnb_4bit_quant_type="nf4",
                bnb_4bit_use_double_quant=True,
                bnb_4bit_compute_dtype=spec.torch_dtype(),
            )
        else:
            kwargs["quantization_config"] = BitsAndBytesConfig(load_in_8bit=True)
        kwargs["device_map"] = {"": spec.device.index or 0} if spec.device.type == "cuda" else {"": "cpu"}
    try:
        model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    except OSError as exc:
        raise ModelLoadError(
            f"could not load model_name_or_path={spec.name_or_path!r}: {exc}. Use a local path, the "
            "built-in model (builtin:tiny), or go online once to fill the Hugging Face cache."
        ) from exc
    if "quantization_config" not in kwargs:
        model.to(spec.device)
    elif spec.load_in_4bit and spec.device.type == "cpu":
        _keep_4bit_layers_trainable(model)
    model.requires_grad_(False)
    if model.config.pad_token_id is None:
        model.config.pad_token_id = model.config.eos_token_id
    LOAD_COUNT += 1
    log.info("loaded base model %s (%s, %s) [load #%d in this process]", spec.name_or_path,
             spec.device, kwargs["dtype"], LOAD_COUNT)
    return model
