"""Instruction embeddings: both the paper's (the base model's mean-pooled last hidden state) and the
sentence-transformers option route held-out inputs of the embedded benchmark to their own task."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import tiny_settings
from fedrouter.data.builtin import TASKS, make_builtin_pool
from fedrouter.models.backbone import get_backbone
from fedrouter.steps import cluster
from fedrouter.steps.embed import embed


@pytest.mark.parametrize("embedding", ["base", "sentence"])
def test_embeddings_route_inputs_to_their_task(tmp_path, embedding):
    cfg = tiny_settings(tmp_path)
    pool = make_builtin_pool(60, seed=3)
    train, test = pool[:160], pool[160:]
    vectors = embed(get_backbone(cfg), [r["instruction"] for r in pool], cfg, kind=embedding)
    assert vectors.shape[0] == len(pool) and vectors.dtype == np.float32
    # FedRouter routes by nearest centroid: one centroid per task from training inputs
    centroids = np.stack([vectors[:160][[r["task"] == t for r in train]].mean(0) for t in TASKS])
    routed = cluster.nearest(vectors[160:], centroids)
    accuracy = np.mean([TASKS[g] == r["task"] for g, r in zip(routed, test, strict=True)])
    assert accuracy >= 0.95, accuracy
    # the same text embeds to the same vector whatever batch it is in (padding is masked out)
    again = embed(get_backbone(cfg), [pool[5]["instruction"]], cfg, kind=embedding)
    np.testing.assert_allclose(again[0], vectors[5], rtol=1e-4, atol=1e-5)


def test_base_embeddings_separate_tasks_without_labels(tmp_path):
    """k-means alone (no task labels) recovers the tasks from the paper's embedding. The sentence
    encoder groups some inputs by topic instead of form (purity ~0.9 here), which nearest-centroid
    routing above does not suffer from."""
    cfg = tiny_settings(tmp_path)
    pool = make_builtin_pool(30, seed=3)
    _, labels = cluster.kmeans(embed(get_backbone(cfg), [r["instruction"] for r in pool], cfg), 4, seed=0)
    assert cluster.purity(cluster.contingency(labels, [r["task"] for r in pool], list(TASKS), 4)) >= 0.95


def test_decoder_only_hidden_state_equals_the_full_forward(tmp_path):
    """Embedding passes skip the LM head (no batch x length x vocab logits) and still get exactly the
    full causal-LM forward's last hidden state, adapters off (FedRouter) and on (FedDPA)."""
    import torch

    from fedrouter.models.backbone import last_hidden_state

    backbone = get_backbone(tiny_settings(tmp_path))  # the process's shared one: restored at the end
    model, before, was_training = backbone.model, backbone.get_state(), backbone.model.training
    model.eval()
    backbone.set_state({k: v + 0.05 for k, v in backbone.init_state(1).items()})  # a non-zero adapter
    enc = backbone.tokenizer(["paraphrase: is it so?", "hi"], return_tensors="pt", padding=True)
    ids, mask = enc["input_ids"], enc["attention_mask"]
    with torch.inference_mode():
        on = last_hidden_state(model, ids, mask)
        assert torch.equal(on, model(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states[-1])
        with model.disable_adapter():
            off = last_hidden_state(model, ids, mask)
            assert torch.equal(off, model(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states[-1])
            assert torch.equal(off, last_hidden_state(model.get_base_model(), ids, mask))
    backbone.set_state(before)
    model.train(was_training)
    assert not torch.equal(on, off)  # the adapter is applied inside the decoder


def test_embedding_layer_picks_the_hidden_state_that_is_pooled(tmp_path):
    """`embedding_layer`: last (the final normed state, the default), middle (half the decoder layers) or an
    index of output_hidden_states; each is the mean over the instruction's tokens of that state."""
    import torch

    from fedrouter.steps.embed import base_embeddings, layer_index

    cfg = tiny_settings(tmp_path)
    backbone = get_backbone(cfg)
    n_layers = backbone.model.config.num_hidden_layers
    assert layer_index(backbone.model, "last") is None and layer_index(backbone.model, "middle") == n_layers // 2
    texts = [r["instruction"] for r in make_builtin_pool(4, seed=1)[:6]]
    last = base_embeddings(backbone, texts, cfg.seq_length, layer="last")
    np.testing.assert_array_equal(last, base_embeddings(backbone, texts, cfg.seq_length))
    middle = base_embeddings(backbone, texts, cfg.seq_length, layer="middle")
    first = base_embeddings(backbone, texts, cfg.seq_length, layer="1")
    assert not np.allclose(last, middle) and not np.allclose(middle, first)
    enc = backbone.tokenizer(texts[:1], return_tensors="pt")
    with torch.inference_mode(), backbone.model.disable_adapter():
        states = backbone.model(**enc, output_hidden_states=True).hidden_states
    np.testing.assert_allclose(middle[0], states[n_layers // 2][0].float().mean(0).numpy(), rtol=1e-4, atol=1e-5)
