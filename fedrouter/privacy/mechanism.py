"""The Gaussian mechanisms: a client's round update clipped (and, with dp=local, noised) before it leaves;
a client's centroids noised before they leave; the server's noisy fixed-denominator average.

Clipping is Flower's (`flwr.supercore.differential_privacy.clip_inputs_inplace`: one L2 norm over all the
arrays, McMahan et al.'s flat clipping). The noise is drawn from a seeded NumPy generator instead of
Flower's `add_gaussian_noise_inplace`, which draws from NumPy's global generator: a run would not be
reproducible for its seed. (A deployment that must resist an adversary who knows the seed should draw the
noise from a secure source; the seed only serves reproducibility here.)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

AdapterState = dict[str, np.ndarray]


def joint_norm(arrays: Sequence[np.ndarray]) -> float:
    from flwr.supercore.differential_privacy import get_norm

    return get_norm([np.asarray(a, dtype=np.float64) for a in arrays])


def clip_jointly(arrays: list[np.ndarray], clip: float) -> float:
    """Scale the arrays (float64, in place) so that their joint L2 norm is at most `clip`; return the norm
    before clipping."""
    from flwr.supercore.differential_privacy import clip_inputs_inplace

    norm = joint_norm(arrays)
    if norm > clip:  # Flower's helper divides by the norm: an all-zero update stays as it is
        clip_inputs_inplace(arrays, clip)
    return norm


def gaussian(rng: np.random.Generator, shape, std: float) -> np.ndarray:
    return rng.normal(0.0, std, size=shape)


def clipped_updates(starts: dict[str, AdapterState], trained: dict[str, AdapterState], clip: float,
                    noise_std: float = 0.0, rng: np.random.Generator | None = None) -> tuple[dict[str, AdapterState], float]:
    """The states to send: start + the update, with all the updates (every named state, every array) clipped
    together to `clip` and, with noise_std > 0 (dp=local), Gaussian noise added to every coordinate.
    Returns them and the joint norm before clipping."""
    keys = [(name, k) for name, state in trained.items() for k in state]
    deltas = [trained[n][k].astype(np.float64) - starts[n][k].astype(np.float64) for n, k in keys]
    norm = clip_jointly(deltas, clip)
    if noise_std > 0:
        deltas = [d + gaussian(rng, d.shape, noise_std) for d in deltas]
    out: dict[str, AdapterState] = {n: {} for n in trained}
    for (n, k), d in zip(keys, deltas, strict=True):
        out[n][k] = (starts[n][k].astype(np.float64) + d).astype(trained[n][k].dtype)
    return out, norm


def noisy_average(ref: AdapterState, states: Sequence[AdapterState], denominator: float, noise_std: float,
                  rng: np.random.Generator) -> AdapterState:
    """DP-FedAvg's step: ref + (sum_i (state_i - ref) + N(0, noise_std^2)) / denominator, key by key (float64
    accumulation). The denominator is fixed in advance (the expected number of contributors), not the count
    of this round's replies, so one client's presence does not change the scale."""
    out = {}
    for k, r in ref.items():
        r64 = r.astype(np.float64)
        total = sum((s[k].astype(np.float64) - r64 for s in states), np.zeros_like(r64))
        if noise_std > 0:
            total = total + gaussian(rng, r.shape, noise_std)
        out[k] = (r64 + total / denominator).astype(r.dtype)
    return out


def centroid_sensitivity(k: int, clip: float) -> float:
    """L2 sensitivity of a client's release of k centroids (each a mean of embeddings clipped to `clip`, so
    inside a ball of that radius) and its k cluster shares (summing to 1), when the client's data is
    replaced: 2R per centroid, sqrt(2) for the shares."""
    return float(np.sqrt(k * (2 * clip) ** 2 + 2.0))


def noisy_centroids(centroids: np.ndarray, shares: np.ndarray, clip: float, sigma: float,
                    rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The Gaussian mechanism on a client's centroids and cluster shares, noise std sigma x their joint
    sensitivity. Post-processing (free): shares clipped to >= 0 and renormalised."""
    std = sigma * centroid_sensitivity(len(centroids), clip)
    c = centroids.astype(np.float64) + gaussian(rng, centroids.shape, std)
    s = np.maximum(shares.astype(np.float64) + gaussian(rng, shares.shape, std), 0.0)
    s = s / s.sum() if s.sum() > 0 else np.full(len(s), 1.0 / len(s))
    return c.astype(centroids.dtype), s


def clip_rows(x: np.ndarray, clip: float) -> np.ndarray:
    """Each row scaled down to L2 norm <= clip (the embeddings before local k-means)."""
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x * np.minimum(1.0, clip / np.maximum(norms, 1e-12))).astype(x.dtype)
