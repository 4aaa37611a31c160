"""Prompt masking: loss only on response tokens, and train/eval prompts identical token for token."""

from __future__ import annotations

import pytest

from fedrouter.data.prompt import IGNORE_INDEX, build_prompt, encode_example, encode_prompt


@pytest.fixture(scope="module")
def tok():
    from fedrouter.config import RunConfig
    from fedrouter.models.loader import ModelSpec, load_tokenizer

    return load_tokenizer(ModelSpec.from_config(RunConfig()))


def test_prompt_ends_where_response_starts():
    p = build_prompt("hello")
    assert p.endswith("### Response:") and not p.endswith(" ")


def test_labels_cover_exactly_the_response(tok):
    # Words of the built-in vocabulary (its word-level tokenizer maps other words to <unk>).
    enc = encode_example(tok, "Anna: Hi Ben!", "Ben will bring the key to Anna tomorrow.", seq_length=160)
    prompt = encode_prompt(tok, "Anna: Hi Ben!", 160)
    assert enc.input_ids[: len(prompt)] == prompt  # training prompt == evaluation prompt
    assert all(label == IGNORE_INDEX for label in enc.labels[: len(prompt)])
    resp = enc.labels[len(prompt) :]
    assert resp == enc.input_ids[len(prompt) :] and resp[-1] == tok.eos_token_id
    assert tok.decode(resp, skip_special_tokens=True).split() == "Ben will bring the key to Anna tomorrow .".split()


def test_long_inputs_truncate_prompt_middle_not_mask(tok):
    long_instruction = " ".join(["anna"] * 500)
    enc = encode_example(tok, long_instruction, "short answer", seq_length=64)
    assert len(enc.input_ids) <= 64
    n_prompt = sum(1 for x in enc.labels if x == IGNORE_INDEX)
    assert enc.labels[n_prompt:] == enc.input_ids[n_prompt:]  # the mask still starts at the response
    tail = tok(build_prompt(""), add_special_tokens=False)["input_ids"][-3:]
    assert enc.input_ids[n_prompt - 3 : n_prompt] == tail  # '### Response:' kept
