"""The run folder: resolved config, per-round metrics, adapters, checkpoints and final results."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from fedrouter.config import flat_defaults
from fedrouter.results import provenance
from fedrouter.utils.io import atomic_save_npz, atomic_write_json, atomic_write_text, load_npz

# Settings that may change between an interrupted run and its resumption.
RESUME_FREE_KEYS = {"resume", "client_resources_cpus", "client_resources_gpus", "ray_address", "max_failure_rate"}


class RunFolder:
    """<output_dir>/<sim_alias>_seed<seed>/:
    config.json, provenance.json, metrics.jsonl, log.txt, results.json, adapters/round_<r>/<name>/,
    checkpoint/, clients/."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.ckpt = self.path / "checkpoint"

    # --- config -------------------------------------------------------------------------------
    def write_config(self, cfg_dict: dict[str, Any]) -> None:
        atomic_write_json(self.path / "config.json", cfg_dict)

    def read_config(self) -> dict[str, Any] | None:
        p = self.path / "config.json"
        return json.loads(p.read_text()) if p.exists() else None

    # --- provenance ---------------------------------------------------------------------------
    def write_provenance(self, started_round: int, record: dict[str, Any] | None = None) -> None:
        """Append this session's provenance (record, default provenance.collect(): commit, package
        versions, machine) with the round it starts at: a resumed run keeps its earlier sessions'."""
        sessions = (self.read_provenance() or {"sessions": []})["sessions"]
        entry = {**(provenance.collect() if record is None else record), "started_round": started_round,
                 "time": datetime.now(UTC).isoformat(timespec="seconds")}
        atomic_write_json(self.path / "provenance.json", {"sessions": [*sessions, entry]})

    def read_provenance(self) -> dict[str, Any] | None:
        """{"sessions": [one record per start of the run, oldest first]}; None for a run folder
        written before provenance was recorded."""
        p = self.path / "provenance.json"
        return json.loads(p.read_text()) if p.exists() else None

    # --- metrics ------------------------------------------------------------------------------
    def read_metrics(self) -> list[dict[str, Any]]:
        p = self.path / "metrics.jsonl"
        if not p.exists():
            return []
        return [json.loads(line) for line in p.read_text().splitlines() if line.strip()]

    def read_zero_shot(self) -> dict[str, float] | None:
        """The round-0 evaluation (the base model before any training), if the run had one."""
        return next((r["eval"] for r in self.read_metrics() if r["round"] == 0 and r.get("eval")), None)

    def write_metrics(self, rows: list[dict[str, Any]]) -> None:
        # Rewritten whole each round (small): atomic, and a resume can drop rounds it will redo.
        text = "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows)
        atomic_write_text(self.path / "metrics.jsonl", text)

    # --- adapters -----------------------------------------------------------------------------
    def save_adapter(self, rnd: int, name: str, state: dict[str, np.ndarray], peft_config, base_model: str) -> Path:
        """PEFT layout (adapter_model.safetensors + adapter_config.json), loadable with
        PeftModel.from_pretrained(base, folder). Written to a temp folder and renamed into place."""
        from safetensors.numpy import save_file

        final = self.path / "adapters" / f"round_{rnd}" / name
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{name}."))
        save_file({k: np.ascontiguousarray(v) for k, v in state.items()}, str(tmp / "adapter_model.safetensors"))
        peft_config.base_model_name_or_path = base_model
        peft_config.save_pretrained(str(tmp))
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        return final

    # --- checkpoint ---------------------------------------------------------------------------
    def save_checkpoint(self, rnd: int, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        """Arrays, then metadata, then the 'latest' pointer: the pointer only ever names a
        complete checkpoint. Older checkpoints beyond the previous one are removed."""
        atomic_save_npz(self.ckpt / f"server_r{rnd}.npz", arrays)
        atomic_write_json(self.ckpt / f"server_r{rnd}.json", meta)
        atomic_write_json(self.ckpt / "latest.json", {"round": rnd})
        for p in self.ckpt.glob("server_r*.*"):
            r = int(p.name.split("_r")[1].split(".")[0])
            if r < rnd - 1:
                p.unlink(missing_ok=True)

    def latest_round(self) -> int:
        p = self.ckpt / "latest.json"
        return int(json.loads(p.read_text())["round"]) if p.exists() else 0

    def resume_conflict(self, cfg_dict: dict[str, Any]) -> str | None:
        """Why a run with these settings cannot resume here: the folder's checkpoint (an interrupted or a
        completed run) was made with other settings. None when it can (no checkpoint, or the same
        settings up to RESUME_FREE_KEYS). Cheap: the launcher asks before any model or data loads."""
        if self.latest_round() == 0:
            return None
        diffs = config_differences(self.read_config() or {}, cfg_dict)
        if not diffs:
            return None
        return (f"{self.path} holds a run with different settings ({'; '.join(diffs)}). Use another "
                "sim_alias/output_dir, or resume=false to start over in this folder.")

    def load_checkpoint(self, rnd: int) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        return load_npz(self.ckpt / f"server_r{rnd}.npz"), json.loads((self.ckpt / f"server_r{rnd}.json").read_text())

    # --- results ------------------------------------------------------------------------------
    def write_results(self, results: dict[str, Any]) -> None:
        atomic_write_json(self.path / "results.json", results)

    def read_results(self) -> dict[str, Any] | None:
        p = self.path / "results.json"
        return json.loads(p.read_text()) if p.exists() else None

    def read_diagnostics(self) -> dict[str, Any] | None:
        """The algorithm's diagnostics (FedRouter: silhouette curves, cluster purity, routing accuracy)."""
        p = self.path / "diagnostics.json"
        return json.loads(p.read_text()) if p.exists() else None

    def clear(self) -> None:
        """Start over: remove what a previous run in this folder left (resume=false)."""
        for name in ("checkpoint", "clients", "adapters"):
            shutil.rmtree(self.path / name, ignore_errors=True)
        for name in ("metrics.jsonl", "results.json", "diagnostics.json", "provenance.json"):
            (self.path / name).unlink(missing_ok=True)


def config_differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Settings that differ between a run folder's config (`old`) and a run's (`new`), RESUME_FREE_KEYS
    aside. A setting added to the code after `old` was written is absent from it: at its default it
    means what the code did then, so it is no difference."""
    defaults = flat_defaults()
    keys = (set(old) | set(new)) - RESUME_FREE_KEYS
    return sorted(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in keys
                  if old.get(k, defaults.get(k)) != new.get(k, defaults.get(k)))
