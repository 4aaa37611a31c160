"""Determinism and resume: same seed -> identical run; a run killed mid-way resumes to the same end."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from safetensors.numpy import load_file

from conftest import REPO, metrics_without_timings, tiny_settings
from fedrouter.runtime.simulate import simulate

SETTINGS = dict(fed_alg="fedit", num_rounds=4, eval_round="2,4", max_steps=2, max_new_tokens=6)


def final_state(cfg):
    """Metrics rows (without timings) and every adapter the server saved at the last round."""
    adapter = {f"{p.parent.name}/{k}": v for p in sorted((cfg.run_dir / "adapters" / f"round_{cfg.num_rounds}").glob("*/adapter_model.safetensors"))
               for k, v in load_file(str(p)).items()}
    assert adapter
    return metrics_without_timings(cfg.run_dir), adapter


def test_same_seed_identical_and_different_seed_differs(tmp_path):
    short = {**SETTINGS, "num_rounds": 2, "eval_round": "2"}
    a = tiny_settings(tmp_path / "a", **short)
    b = tiny_settings(tmp_path / "b", **short)
    c = tiny_settings(tmp_path / "c", **short, seed=7)
    for cfg in (a, b, c):
        simulate(cfg)
    (rows_a, ad_a), (rows_b, ad_b), (_, ad_c) = final_state(a), final_state(b), final_state(c)
    assert rows_a == rows_b
    assert all(np.array_equal(ad_a[k], ad_b[k]) for k in ad_a)
    assert any(not np.allclose(ad_a[k], ad_c[k]) for k in ad_a)  # other split, init and batches


# FedRouter adds client-private state (local clusters, training embeddings) and per-cluster server state to
# resume; the trained routing head, the clients' open-set calibration and the shared fallback adapter too.
ROUTER = dict(SETTINGS, fed_alg="fedrouter", split_strategy="dual", n_clusters="2", global_n_clusters="4", router="local",
              router_model="head", router_accept=0.95, fallback="shared")


# dp on: the accountant's state and the learned seeded init are checkpointed; the resumed run reports the same
# epsilon in every row.
PRIVATE = dict(SETTINGS, fed_alg="fedrouter", split_strategy="dual", n_clusters="2", global_n_clusters="4",
               router_model="centroid", dp="central", dp_clip=0.5, dp_noise_multiplier=0.2)


@pytest.mark.parametrize("settings", [SETTINGS, ROUTER, PRIVATE], ids=["fedit", "fedrouter", "fedrouter-dp"])
def test_killed_run_resumes_to_the_uninterrupted_result(tmp_path, settings):
    whole = tiny_settings(tmp_path / "whole", **settings)
    simulate(whole)

    cut = tiny_settings(tmp_path / "cut", **settings)
    args = [f"{k}={v}" for k, v in cut.to_dict().items()]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "fedrouter.runtime.simulate", *args], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    metrics = cut.run_dir / "metrics.jsonl"
    deadline = time.time() + 240
    while time.time() < deadline:
        if metrics.exists() and len(metrics.read_text().splitlines()) >= 2:
            break
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # the whole process group: driver, Ray and its workers
    proc.wait()
    done = len(metrics.read_text().splitlines())
    assert 2 <= done < 4, "the run should have been killed mid-way"
    assert not (cut.run_dir / "results.json").exists()

    simulate(cut)  # same settings, same folder: resumes after the last checkpoint
    assert "resuming from the checkpoint of round" in (cut.run_dir / "log.txt").read_text()
    (rows_w, ad_w), (rows_c, ad_c) = final_state(whole), final_state(cut)
    assert rows_w == rows_c
    assert all(np.array_equal(ad_w[k], ad_c[k]) for k in ad_w)
