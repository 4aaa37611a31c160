"""The alpaca prompt and its tokenization, shared token for token by training and evaluation."""

from __future__ import annotations

from dataclasses import dataclass

TEMPLATE = (
    "Below is an instruction that describes a task. Write a response that appropriately completes "
    "the request.\n\n### Instruction:\n{instruction}\n\n### Response:"
)
IGNORE_INDEX = -100  # label value that the loss skips (prompt and padding positions)


def build_prompt(instruction: str) -> str:
    """The evaluation prompt. It ends at 'Response:'; the space before the answer belongs to the
    response, so the training text is exactly this prompt followed by ' ' + response + EOS (the
    reference's evaluation prompt ends with an extra space that training never saw)."""
    return TEMPLATE.format(instruction=instruction)


def _middle_truncate(ids: list[int], budget: int) -> list[int]:
    """Drop tokens from the middle of the prompt, keeping its head (template start) and its tail
    ('### Response:'), so a long instruction never removes the cue that the answer starts here."""
    if len(ids) <= budget:
        return ids
    head = budget // 4
    return ids[:head] + ids[len(ids) - (budget - head) :]


def encode_prompt(tokenizer, instruction: str, max_len: int) -> list[int]:
    ids = tokenizer(build_prompt(instruction), add_special_tokens=True)["input_ids"]
    return _middle_truncate(list(ids), max_len)


@dataclass(frozen=True)
class Encoded:
    input_ids: list[int]
    labels: list[int]  # IGNORE_INDEX on prompt positions: loss on response tokens only


def encode_example(tokenizer, instruction: str, response: str, seq_length: int) -> Encoded:
    """Prompt ids (as in evaluation) + response ids + EOS, truncated to seq_length.

    The response keeps at least half the budget; the prompt is truncated in its middle, so the
    label mask always starts exactly where the response starts."""
    resp = list(tokenizer(" " + response, add_special_tokens=False)["input_ids"])
    resp = resp[: max(1, seq_length // 2) - 1] + [tokenizer.eos_token_id]
    prompt = encode_prompt(tokenizer, instruction, seq_length - len(resp))
    return Encoded(prompt + resp, [IGNORE_INDEX] * len(prompt) + resp)
