"""The clustering math (k-means, silhouette, nearest centroid, purity, ARI) against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from fedrouter.steps import cluster
from fedrouter.utils import process_state


def blobs(centers, n=20, scale=0.05, seed=0):
    rng = np.random.default_rng(seed)
    pts = np.concatenate([np.asarray(c) + scale * rng.standard_normal((n, len(c))) for c in centers])
    return pts, np.repeat(np.arange(len(centers)), n)


def test_kmeans_recovers_blobs_and_is_seeded():
    pts, truth = blobs([[0, 0], [5, 5], [0, 5]])
    cents, labels = cluster.kmeans(pts, 3, seed=1)
    table = cluster.contingency(labels, truth.astype(str), ["0", "1", "2"], 3)
    assert cluster.purity(table) == 1.0 and cluster.ari(table) == pytest.approx(1.0)
    np.testing.assert_array_equal(labels, cluster.kmeans(pts, 3, seed=1)[1])
    with pytest.raises(ValueError, match="k=100"):
        cluster.kmeans(pts, 100, seed=1)


def test_choose_k_by_silhouette():
    pts, _ = blobs([[0, 0], [6, 0], [0, 6], [6, 6]])
    k, scores = cluster.choose_k(pts, 2, 7, seed=0, rule="silhouette")
    assert k == 4 and set(scores) == set(range(2, 8)) and max(scores.values()) == scores[4]


def test_silhouette_rule_is_the_best_of_the_silhouette_curve_ties_to_the_smaller_k(seed):
    rng = np.random.default_rng(seed)
    pts = rng.normal(size=(60, 6))  # no structure: any k may win, the rule must still be the curve's argmax
    k, scores = cluster.choose_k(pts, 2, 8, seed=seed, rule="silhouette")
    assert scores == cluster.silhouette_curve(pts, 2, 8, seed=seed)
    assert k == min(kk for kk, s in scores.items() if s == max(scores.values()))
    assert cluster.choose_k(pts[:2], 2, 8, seed=seed, rule="silhouette") == (1, {})  # too few points to score


def separated_blobs(n_blobs, seed, dim=16, n=25):
    """n_blobs unit-variance Gaussian blobs in `dim` dimensions, centres about 14 standard deviations apart."""
    rng = np.random.default_rng(seed)
    centres = 10.0 * rng.standard_normal((n_blobs, dim))
    return np.concatenate([c + rng.standard_normal((n, dim)) for c in centres])


@pytest.mark.parametrize("n_blobs", [1, 2, 4, 6])
@pytest.mark.parametrize("data_seed", [0, 1])
def test_gap_rule_counts_separated_blobs_and_answers_one_for_one(n_blobs, data_seed):
    k, scores = cluster.choose_k(separated_blobs(n_blobs, data_seed), 1, 8, seed=data_seed)  # gap is the default
    assert k == n_blobs, scores
    assert set(scores) == set(range(1, 9))


def test_gap_rule_on_few_noise_free_points_looks_past_a_flat_start():
    """The server's case: 8 local centroids, two per task, the four tasks about equally far apart. The gap
    stays flat for k = 1..3 (the first-maximum rule alone would answer 1) and jumps at k = 4."""
    rng = np.random.default_rng(3)
    tasks = 20.0 * np.eye(4, 64)  # four equidistant tasks
    pts = np.repeat(tasks, 2, axis=0) + 0.5 * rng.standard_normal((8, 64))
    gaps, ses = cluster.gap_curve(pts, 1, 7, seed=0)
    assert cluster.choose_k(pts, 1, 7, seed=0) == (4, {k: g for k, g in gaps.items()})
    assert gaps[4] - gaps[1] > cluster.GAP_LOOK_AHEAD


def test_gap_choice_first_maximum_and_look_ahead():
    flat_then_jump = {1: 0.0, 2: -0.1, 3: 0.0, 4: 3.0, 5: 2.9, 6: 2.5}
    ses = dict.fromkeys(flat_then_jump, 0.2)
    assert cluster.gap_choice(flat_then_jump, ses, k_max=6) == 4  # 5 is within one s.e. of 4 but larger
    rising_slowly = {1: 0.0, 2: 0.0, 3: 0.05, 4: 0.1, 5: 0.15}  # gains below the look-ahead: stay at 1
    assert cluster.gap_choice(rising_slowly, dict.fromkeys(rising_slowly, 0.1), k_max=5) == 1
    peak = {1: 0.0, 2: 0.3, 3: 0.2, 4: 0.2}
    assert cluster.gap_choice(peak, dict.fromkeys(peak, 0.05), k_max=3) == 2
    increasing = {1: 0.0, 2: 0.2, 3: 0.4}
    assert cluster.gap_choice(increasing, dict.fromkeys(increasing, 0.01), k_max=3) == 3  # no stop: k_max


def test_gap_rule_edge_cases(seed):
    pts = separated_blobs(2, seed)
    assert cluster.choose_k(pts[:1], 1, 8, seed=seed) == (1, {})  # one point: nothing to score
    assert cluster.choose_k(np.repeat(pts[:1], 5, axis=0), 1, 8, seed=seed) == (1, {})  # one distinct point
    k, scores = cluster.choose_k(pts[:3], 1, 8, seed=seed)  # k is clipped to distinct points - 1
    assert set(scores) == {1, 2} and k in scores
    k, scores = cluster.choose_k(pts, 2, 8, seed=seed)  # min 2: one cluster is not an answer
    assert k == 2 and min(scores) == 2
    with pytest.raises(ValueError, match="unknown rule 'elbow'.*allowed: gap, silhouette"):
        cluster.choose_k(pts, 1, 8, seed=seed, rule="elbow")


def test_gap_rule_is_seeded_and_reuses_the_chosen_fit(seed):
    pts = separated_blobs(4, seed)
    assert cluster.choose_k(pts, 1, 8, seed=seed) == cluster.choose_k(pts.copy(), 1, 8, seed=seed)
    process_state.clear(cluster._FITS)
    k, _ = cluster.choose_k(pts, 1, 8, seed=seed)
    assert any(key[2] == k for key in cluster._FITS)  # the final clustering at k costs no new fit


@pytest.mark.parametrize("changes, message", [
    ({"k_rule": "elbow"}, "k_rule='elbow' is not known; allowed: gap, silhouette"),
    ({"k_rule": "silhouette", "k_range": "1,1"}, "k_range='1,1': k_rule=silhouette needs a max >= 2"),
    ({"k_range": "0,8"}, "k_range='0,8' must be 'min,max' with 1 <= min <= max"),
    ({"k_range": "5,3"}, "k_range='5,3' must be 'min,max' with 1 <= min <= max"),
])
def test_fedrouter_settings_check_names_the_rule_and_its_range(changes, message):
    from fedrouter.config import ConfigError, RunConfig

    problems = RunConfig.from_mapping({"fed_alg": "fedrouter", **changes}).alg.check(RunConfig())
    assert any(message in p for p in problems), problems
    with pytest.raises(ConfigError, match="k_range='two' must be 'min,max'"):  # malformed: refused when read
        RunConfig.from_mapping({"fed_alg": "fedrouter", "k_range": "two"})


@pytest.mark.parametrize("changes", [{}, {"k_range": "1,8"}, {"k_rule": "silhouette", "k_range": "2,8"},
                                     {"k_rule": "silhouette"},  # the default 1,8: silhouette starts at 2
                                     {"k_rule": "gap", "n_clusters": "auto", "global_n_clusters": "auto"}])
def test_fedrouter_settings_accept_gap_from_one_and_silhouette_from_two(changes):
    from fedrouter.config import RunConfig

    cfg = RunConfig.from_mapping({"fed_alg": "fedrouter", **changes})
    assert cfg.alg.check(cfg) == []
    assert RunConfig().alg.k_rule == "gap"


def test_nearest_with_and_without_candidates():
    cents = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    pts = np.array([[1.0, 1.0], [9.0, 1.0], [1.0, 9.0]])
    np.testing.assert_array_equal(cluster.nearest(pts, cents), [0, 1, 2])
    # local router: only clusters 1 and 2 are candidates -> (1,1) goes to the nearer of those
    np.testing.assert_array_equal(cluster.nearest(pts, cents, candidates=[1, 2]), [1, 1, 2])


def test_purity_and_ari_from_contingency():
    table = np.array([[3, 1], [0, 4]])  # 8 points, 7 in their cluster's majority class
    assert cluster.purity(table) == pytest.approx(7 / 8)
    from sklearn.metrics import adjusted_rand_score

    labels = [0, 0, 0, 0, 1, 1, 1, 1]
    classes = [0, 0, 0, 1, 1, 1, 1, 1]
    assert cluster.ari(table) == pytest.approx(adjusted_rand_score(labels, classes))
    np.testing.assert_array_equal(cluster.dominant(np.array([[0, 2], [0, 0]])), [1, -1])


def test_silhouette_curve_with_shared_distances_equals_per_k_silhouette(seed):
    from sklearn.metrics import silhouette_score

    rng = np.random.default_rng(seed)
    pts = np.concatenate([rng.normal(c, 0.3, size=(30, 5)) for c in (0.0, 3.0, 6.0)])
    curve = cluster.silhouette_curve(pts, 2, 5, seed=seed)
    for k, score in curve.items():
        expected = silhouette_score(pts, cluster.kmeans(pts, k, seed)[1])  # distances recomputed for this k
        assert score == pytest.approx(expected, rel=1e-12, abs=1e-12)


def test_kmeans_reuses_an_identical_fit_and_hands_out_copies(seed):
    from sklearn.cluster import KMeans

    rng = np.random.default_rng(seed)
    pts = rng.normal(size=(50, 4))
    cents, labels = cluster.kmeans(pts, 3, seed)
    cents[:] = 0.0  # a caller mutating its result must not change the next caller's
    again, labels_again = cluster.kmeans(pts.copy(), 3, seed)
    fresh = KMeans(n_clusters=3, n_init=10, random_state=seed).fit(pts.astype(np.float32))
    np.testing.assert_array_equal(labels_again, fresh.labels_)
    np.testing.assert_array_equal(again, fresh.cluster_centers_.astype(np.float32))


def test_silhouette_rule_starts_at_two_within_the_default_range():
    from fedrouter.config import RunConfig

    cfg = RunConfig.from_mapping({"k_rule": "silhouette"})
    assert cfg.alg.k_range == "1,8" and cfg.alg.k_bounds() == (2, 8) and cfg.alg.silhouette_bounds() == (2, 8)
    assert RunConfig().alg.k_bounds() == (1, 8)  # gap: one cluster is an answer
