"""The privacy section: client-level differential privacy (DP-FedAvg) on what clients send, the clustering
step's noisy release, and the accountant's target. The mechanisms are in fedrouter/privacy/; docs/privacy.md
says what is protected, against whom, and how it is accounted."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fedrouter.config.common import _allowed
from fedrouter.config.section import Section, register_section, setting

if TYPE_CHECKING:
    from fedrouter.config.run import RunConfig

DP_MODES = ("off", "central", "local")
DP_SAMPLING = ("fixed", "poisson", "none")
DP_BUDGET = ("calibrate", "stop")


@register_section
@dataclass(frozen=True)
class PrivacySettings(Section):
    name = "privacy"
    title = "Differential privacy (client-level)"

    dp: str = setting("off", "off | central (each client clips its whole round update to dp_clip; the server adds Gaussian noise of std dp_noise_multiplier x dp_clip to each aggregated sum, divided by a fixed denominator) | local (each client also adds that noise to its own update before it leaves)")
    dp_clip: float = setting(1.0, "L2 norm C every client's whole update of a round (all the adapters it sends, together) is clipped to")
    dp_noise_multiplier: float = setting(1.0, "noise std / dp_clip (sigma); with dp_target_epsilon > 0 and dp_budget=calibrate it is chosen for you")
    dp_embedding_clip: float = setting(1.0, "clustering methods: norm R the instruction embeddings are clipped to before local k-means; each client's centroids and cluster shares leave it once, with Gaussian noise of std sigma x their sensitivity (2R per centroid)")
    dp_delta: float = setting(1e-5, "delta of the reported (epsilon, delta); 0 = 1/num_clients^1.1")
    dp_target_epsilon: float = setting(0.0, "privacy budget epsilon (0 = none: the run reports the epsilon it spent)")
    dp_budget: str = setting("calibrate", "with dp_target_epsilon > 0: calibrate (choose sigma before the run so every planned release fits the budget) | stop (keep dp_noise_multiplier, stop before a round would exceed the budget)")
    dp_sampling: str = setting("fixed", "client sampling the accountant assumes, and the simulation does: fixed (sample_clients drawn without replacement each round; amplification under replace-one) | poisson (each client joins each round with probability sample_clients/num_clients; add-or-remove-one) | none (fixed sampler, no amplification claimed). Amplification assumes the sample is hidden from the adversary (the seed kept secret); dp=local never claims it")

    @property
    def on(self) -> bool:
        return self.dp != "off"

    def delta_for(self, num_clients: int) -> float:
        return self.dp_delta if self.dp_delta > 0 else 1.0 / num_clients ** 1.1

    def check(self, run: RunConfig) -> list[str]:
        out = (_allowed("dp", self.dp, DP_MODES) + _allowed("dp_sampling", self.dp_sampling, DP_SAMPLING)
               + _allowed("dp_budget", self.dp_budget, DP_BUDGET))
        checks = [
            (0 < self.dp_clip < math.inf, f"dp_clip={self.dp_clip} must be a finite number > 0"),
            (0 < self.dp_noise_multiplier < math.inf,
             f"dp_noise_multiplier={self.dp_noise_multiplier} must be a finite number > 0"),
            (0 < self.dp_embedding_clip < math.inf, f"dp_embedding_clip={self.dp_embedding_clip} must be a finite number > 0"),
            (0 <= self.dp_delta < 1, f"dp_delta={self.dp_delta} must be in [0, 1) (0 = 1/num_clients^1.1)"),
            (0 <= self.dp_target_epsilon < math.inf,
             f"dp_target_epsilon={self.dp_target_epsilon} must be a finite number >= 0 (0 = no budget)"),
        ]
        return out + [msg for ok, msg in checks if not ok]
