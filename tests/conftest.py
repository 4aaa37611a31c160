"""Shared fixtures: offline environment, a private model cache, and tiny run settings."""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from flwr.app import RecordDict

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data" / "multitask"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# One built-in model per test session (built on first use, ~1-2 min), reused by every test.
os.environ.setdefault("FEDROUTER_CACHE", str(REPO / ".cache" / "fedrouter"))


BENCHMARK_TASKS = ("qqp", "gigaword", "samsum", "webnlg")
needs_sample = pytest.mark.skipif(
    not (SHARED_DATA / "qqp.jsonl").is_file(),
    reason=f"real multitask sample not found at {SHARED_DATA} (the repo must be cloned beside shared/)",
)
CL_TASKS = REPO.parent / "shared" / "data" / "cltasks"  # ten more real label tasks (MNLI, RTE, ...)
needs_cltasks = pytest.mark.skipif(
    not (CL_TASKS / "rte.jsonl").is_file() or not (SHARED_DATA / "qqp.jsonl").is_file(),
    reason=f"the fourteen real tasks were not found at {SHARED_DATA} and {CL_TASKS}",
)


def make_rows(n: int = 3, task: str = "qqp", **extra) -> list[dict]:
    """n records of one task for the data-source tests (distinct instructions, one answer)."""
    return [{"instruction": f"q{i}-p{i}", "response": "Yes", "task": task, **extra} for i in range(n)]


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def pool_counts(pool: list[dict]) -> Counter:
    """(task, split) -> records of a loaded pool."""
    return Counter((r["task"], r.get("split")) for r in pool)


@pytest.fixture
def seed() -> int:
    return 1234


def tiny_settings(tmp_path: Path, **overrides):
    """A run small enough for a unit test: 4 clients, few steps, few test samples."""
    from fedrouter.config import RunConfig

    base = dict(num_clients=4, sample_clients=4, num_rounds=2, eval_round="2", max_steps=4, batch_size=8,
                dataset_sample=80, max_eval_size=8, max_new_tokens=12, output_dir=str(tmp_path), sim_alias="t")
    base.update(overrides)
    return RunConfig.from_mapping(base)


def distinct_adapters(backbone, n: int) -> list[dict[str, np.ndarray]]:
    """n adapters that change the model's output (random A and B; a fresh B = 0 would be the base)."""
    rng = np.random.default_rng(0)
    out = []
    for j in range(n):
        state = backbone.init_state(seed=j)
        out.append({k: (v if "lora_A" in k else rng.normal(0, 0.5, v.shape).astype(np.float32)) for k, v in state.items()})
    return out


def metrics_without_timings(run_dir: Path) -> list[dict]:
    """metrics.jsonl rows without what depends on the clock (wall times, per-phase timings, pids):
    what two runs of the same settings and seed must agree on exactly."""
    import json

    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    for r in rows:
        r.pop("time_s", None)
        r.pop("timing", None)
        r.get("eval", {}).pop("time_s", None)
    return rows


# Libraries that importing the algorithms (and so `--list-settings`, `--print KEY`) must not load: each
# takes seconds to import. numpy and flwr.app may load.
HEAVY_LIBRARIES = ("torch", "sklearn", "scipy", "pandas", "transformers", "peft", "datasets", "matplotlib")


def run_python(code: str) -> tuple[str, list[str]]:
    """Run `code` in a fresh interpreter from the repository's root: its stdout, and which of
    HEAVY_LIBRARIES it had loaded when it exited (a `sys.exit` included)."""
    import json
    import subprocess
    import sys

    report = (
        "import atexit, json, sys\n"
        "def _report():\n"
        "    from fedrouter.utils.lazy import is_loaded\n"
        f"    print('LOADED', json.dumps([m for m in {HEAVY_LIBRARIES!r} if is_loaded(m)]), file=sys.stderr)\n"
        "atexit.register(_report)\n"
    )
    proc = subprocess.run([sys.executable, "-c", report + code], cwd=REPO, capture_output=True, text=True, check=True)
    loaded = [line for line in proc.stderr.splitlines() if line.startswith("LOADED ")]
    assert loaded, proc.stderr
    return proc.stdout, json.loads(loaded[-1].removeprefix("LOADED "))


@pytest.fixture
def sent(monkeypatch):
    """Every (kind, round, contents by client, good replies by client) the server exchanges."""
    log: list[tuple[str, int, dict[int, RecordDict], dict[int, RecordDict]]] = []
    from fedrouter.runtime.federation import Federation

    original = Federation.send

    def recording_send(self, kind, rnd, contents):
        good, failed = original(self, kind, rnd, contents)
        log.append((kind, rnd, contents, good))
        return good, failed

    monkeypatch.setattr(Federation, "send", recording_send)
    return log


def arrays_in(log, kinds=("train", "evaluate")):
    """(direction, kind, round, client, record name, state) for every ArrayRecord exchanged."""
    from fedrouter.algorithms.base import from_record

    for kind, rnd, contents, replies in log:
        if kind not in kinds:
            continue
        for direction, msgs in (("down", contents), ("up", replies)):
            for cid, content in msgs.items():
                for name, record in content.array_records.items():
                    yield direction, kind, rnd, cid, name, from_record(record)


# --- what a client may send (issue: "only what an algorithm's spec sends leaves a client") ------------
_TASK = "(qqp|gigaword|samsum|webnlg)"
# Added by the ClientApp to every reply: who answered, timings, and the serving process's id and
# base-model load count (how "one base model per process" is checked).
_COMMON = [r"client_id", r"time_s", r"time/\w+", r"pid", r"load_count", r"decode_steps", r"decode_row_steps"]
_METRICS = {  # (algorithm, message kind) -> allowed metric keys (regular expressions), besides _COMMON
    "train": [r"loss", r"num_samples"],
    "evaluate": [rf"(n|{{metrics}})(/{_TASK})?"],  # {metrics}: every registered metric's key
    ("feddpa", "train"): [r"loss", r"local_loss", r"num_samples"],
    ("feddpa", "evaluate"): [r"alpha_(mean|own|other)", r"n_(own|other)"],
    # per-cluster sample counts (adapters, the shared fallback adapter, the routing head); with open-set routing
    # the calibration: per global cluster one score quantile and the number of inputs behind it
    ("fedrouter", "train"): [r"num_samples/(\d+|shared|router)", r"calibration/\d+/(score|n)"],
    ("fedrouter", "evaluate"): [rf"route/(\d+|fallback)/{_TASK}"],  # routed-sample counts (diagnostics only)
    ("fedrouter", "setup"): [r"k_local", r"num_samples", r"silhouette/\d+", r"local_purity", r"local_ari"],
}


def message_violations(fed_alg: str, kind: str, content: RecordDict, lora: dict[str, tuple]) -> list[str]:
    """Everything in one client reply that its algorithm's specification does not allow: metrics are
    scalars under known names, arrays are adapters (or their allowed half) with the model's LoRA
    shapes, or (FedRouter setup) k centroids with per-cluster counts. Anything else — text, token
    ids, per-sample embeddings or labels — is a violation. Empty list = clean."""
    import re

    from fedrouter.metrics import metric_names

    bad = []
    patterns = [p.replace("{metrics}", "|".join(metric_names()))
                for p in _COMMON + _METRICS.get(kind, []) + _METRICS.get((fed_alg, kind), [])]
    for name, record in content.metric_records.items():
        bad += [f"metric record {name!r}"] * (name != "metrics")
        bad += [f"metric {key!r}" for key in record if not any(re.fullmatch(p, key) for p in patterns)]
    for name, record in content.config_records.items():
        allowed = {"k_local", "tasks"} if (fed_alg, kind) == ("fedrouter", "setup") else set()
        bad += [f"config {name}.{key}={value!r}" for key, value in record.items() if name != "meta" or key not in allowed]
        # The task names (columns of the diagnostics' task counts) are the data's task list, nothing per sample.
        if name == "meta" and "tasks" in record and not set(record["tasks"]) <= {"qqp", "gigaword", "samsum", "webnlg"}:
            bad.append(f"config meta.tasks={record['tasks']!r}")
    from fedrouter.algorithms.base import from_record

    shapes = {name: {k: tuple(v.shape) for k, v in from_record(record).items()}
              for name, record in content.array_records.items()}
    if kind in ("train", "setup") and fed_alg != "local":
        if fed_alg == "fedrouter" and kind == "setup":
            cent = shapes.pop("centroids", {})
            k, d = cent.get("centroids", (0, 0))
            # the router's per-local-cluster statistics (routing/routers.py): sums of squares, or one scatter matrix
            expect = {"centroids": (k, d), "counts": (k,), "task_counts": (k, 4), "router/sq_sums": (k, d),
                      "router/scatter": (d, d)}
            bad += [f"centroids.{key} {s}" for key, s in cent.items() if expect.get(key) != s or k < 1]
        else:
            full = {k: tuple(v) for k, v in lora.items()}
            want = {k: s for k, s in full.items() if ".lora_A." in k} if fed_alg == "fedsa" else full
            for name in [n for n in shapes if n == "adapter" or (fed_alg == "fedrouter" and re.fullmatch(r"adapter_(\d+|shared)", n))]:
                bad += [f"{name} has keys/shapes other than the LoRA's"] * (shapes.pop(name) != want)
            if fed_alg == "fedrouter" and "router" in shapes:  # the routing head: K x d weights, K biases, d-vectors
                head = shapes.pop("router")
                kk, dd = head.get("weight", (0, 0))
                expect = {"weight": (kk, dd), "bias": (kk,), "mu": (dd,), "scale": (dd,)}
                bad += [f"router.{key} {s}" for key, s in head.items() if expect.get(key) != s or kk < 1]
    bad += [f"array record {name!r} ({len(keys)} arrays)" for name, keys in shapes.items()]
    return bad


def assert_clients_sent_only_what_is_allowed(log, cfg) -> int:
    """Check every reply recorded by the `sent` fixture; returns how many replies were checked."""
    from fedrouter.models.backbone import get_backbone

    lora = {k: v.shape for k, v in get_backbone(cfg).init_state(cfg.seed).items()}
    checked = 0
    for kind, rnd, _, replies in log:
        for cid, content in replies.items():
            bad = message_violations(cfg.fed_alg, kind, content, lora)
            assert not bad, f"{cfg.fed_alg} {kind} round {rnd}, client {cid} sent what its spec does not allow: {bad}"
            checked += 1
    return checked
