"""What leaves a client, per algorithm: every reply of real runs checked against what the algorithm's
specification allows (the baselines are checked inside their own tests in the per-algorithm test modules)."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import assert_clients_sent_only_what_is_allowed, message_violations, tiny_settings
from fedrouter.algorithms.base import from_record, reply
from fedrouter.runtime.simulate import simulate

SHORT = dict(num_rounds=2, eval_round="2", max_steps=2, max_new_tokens=4)


def test_fedit_sends_its_adapter_and_metrics_only(tmp_path, sent):
    cfg = tiny_settings(tmp_path, fed_alg="fedit", **SHORT)
    simulate(cfg)
    assert assert_clients_sent_only_what_is_allowed(sent, cfg) == 3 * 4  # 2 train rounds + 1 evaluation


# With the diagnostics: the trained router (routing head), open-set calibration and the shared fallback
# adapter, so every array and metric a router can make a client send is audited; without: the default router.
OPEN_SET = dict(router_model="head", router_accept=0.95, fallback="shared")


@pytest.mark.parametrize("diagnostics", [True, False])
def test_fedrouter_sends_centroids_counts_and_adapters_only(tmp_path, sent, diagnostics):
    cfg = tiny_settings(tmp_path, fed_alg="fedrouter", split_strategy="dual", n_clusters="2", global_n_clusters="4",
                        train_all_clusters=True, diagnostics=diagnostics, **(OPEN_SET if diagnostics else {}), **SHORT)
    simulate(cfg)
    assert assert_clients_sent_only_what_is_allowed(sent, cfg) == 4 * 4  # setup, 2 train rounds, evaluation
    setup = next(replies for kind, _, _, replies in sent if kind == "setup")
    for content in setup.values():
        arrays = from_record(content["centroids"])
        assert arrays["centroids"].shape[0] == 2 and arrays["counts"].sum() == 64  # k x d, not n x d
        assert ("task_counts" in arrays) == diagnostics  # aggregate task-label counts only when asked
        d = arrays["centroids"].shape[1]
        stats = {k: v.shape for k, v in arrays.items() if k.startswith("router/")}
        assert stats == ({"router/sq_sums": (2, d)} if diagnostics else {"router/scatter": (d, d)})
    evals = next(replies for kind, _, _, replies in sent if kind == "evaluate")
    assert all(any(k.startswith("route/") for k in c["metrics"]) == diagnostics for c in evals.values())
    trained = next(replies for kind, rnd, _, replies in sent if kind == "train" and rnd == 1)
    extra = {"router", "adapter_shared"} if diagnostics else set()
    assert all(set(c.array_records) == {"adapter_0", "adapter_1"} | extra for c in trained.values())
    calibrated = [k for c in trained.values() for k in c["metrics"] if k.startswith("calibration/")]
    assert bool(calibrated) == diagnostics  # two numbers per global cluster, only with open-set routing


def test_the_checker_catches_what_must_not_leave(tmp_path):
    """The checker itself: text, per-sample embeddings, labels and B matrices of FedSA are caught."""
    import numpy as np

    lora = {"m.q.lora_A.weight": (8, 16), "m.q.lora_B.weight": (16, 8)}
    adapter = {k: np.zeros(s, np.float32) for k, s in lora.items()}
    assert message_violations("fedit", "train", reply({"loss": 1.0, "num_samples": 3.0}, {"adapter": adapter}), lora) == []
    assert message_violations("fedsa", "train", reply({"loss": 1.0}, {"adapter": adapter}), lora)  # B sent
    assert message_violations("fedit", "train", reply({"loss": 1.0}, meta={"text": "Hi Ben!"}), lora)
    assert message_violations("fedit", "evaluate", reply({"rouge1": 0.5, "label_of_sample_3": 1.0}), lora)
    embeddings = reply({"k_local": 2.0}, {"centroids": {"centroids": np.zeros((2, 16)), "embeddings": np.zeros((40, 16))}})
    assert message_violations("fedrouter", "setup", embeddings, lora)  # per-sample embeddings beside centroids


def test_fedrouter_with_dp_sends_noisy_centroids_shares_and_clipped_adapters_only(tmp_path, sent):
    """dp on: the setup reply carries noised centroids and cluster shares (no router statistics), training replies
    the clipped adapters (the seeded init rides along once, as `dp_init`, and the server drops it)."""
    cfg = tiny_settings(tmp_path, fed_alg="fedrouter", split_strategy="dual", n_clusters="2", global_n_clusters="4",
                        router_model="centroid", diagnostics=False, dp="central", dp_noise_multiplier=0.3, **SHORT)
    simulate(cfg)
    assert assert_clients_sent_only_what_is_allowed(sent, cfg) == 4 * 4
    setup = next(replies for kind, _, _, replies in sent if kind == "setup")
    for content in setup.values():
        arrays = from_record(content["centroids"])
        assert set(arrays) == {"centroids", "counts"}
        assert arrays["counts"].sum() == pytest.approx(1.0) and (arrays["counts"] >= 0).all()  # shares, not counts
        # every embedding was clipped to norm 1; the noise (std 0.3 x sqrt(2 x 4 + 2) per coordinate) shows
        assert (np.linalg.norm(arrays["centroids"], axis=1) > 1.0).all()
