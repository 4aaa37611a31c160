"""The client's side of differential privacy: what leaves it after local training is its start plus its
whole round update clipped to dp_clip (every array it sends, together), with dp=local also Gaussian noise."""

from __future__ import annotations

import logging

import numpy as np
from flwr.app import RecordDict

from fedrouter.privacy.mechanism import clipped_updates
from fedrouter.privacy.server import DP_INIT, noise_multiplier
from fedrouter.utils.records import from_record, to_record
from fedrouter.utils.seeding import derive_seed

log = logging.getLogger("fedrouter.privacy")


def release(rt, received: RecordDict, out: RecordDict) -> RecordDict:
    """The training reply as it may leave the client. Every ArrayRecord of the reply is an update of the
    record of the same name the client received (or, where it received none, of the seeded LoRA init,
    which then rides along as `dp_init` so the server can measure the update: it holds no data)."""
    cfg = rt.cfg
    names = list(out.array_records.keys())
    if not cfg.privacy.on or not names:
        return out
    trained = {n: from_record(out[n]) for n in names}
    init = None
    starts = {}
    for n, state in trained.items():
        if n in received.array_records:
            start = from_record(received[n])
        else:
            init = init if init is not None else rt.backbone.init_state(cfg.seed)
            start = init
        starts[n] = {k: start[k] for k in state}
    std = noise_multiplier(cfg) * cfg.dp_clip if cfg.dp == "local" else 0.0
    rng = np.random.default_rng(derive_seed(cfg.seed, rt.client_id, rt.rnd, 0xD9))
    sent, norm = clipped_updates(starts, trained, cfg.dp_clip, std, rng)
    for n, state in sent.items():
        out[n] = to_record(state)
    if init is not None:
        out[DP_INIT] = to_record(init)
    # the norm before clipping stays on the client (its log): it is not part of the release
    log.info("client %d round %d: update norm %.4g, clipped to %g%s", rt.client_id, rt.rnd, norm, cfg.dp_clip,
             f", noise std {std:.3g} added" if std else "")
    return out
