"""Process logging (fedrouter.utils.logs): the known library noise is dropped, everything else kept."""

from __future__ import annotations

import logging
import warnings

from fedrouter.utils.logs import silence_known_noise


def test_known_warnings_are_ignored_even_behind_flowers_filter():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        warnings.filterwarnings("once", category=DeprecationWarning)  # what importing Flower's simulation does
        silence_known_noise()
        for message, category in [
            ("`torch.jit.script_method` is deprecated. Please switch to `torch.compile`", DeprecationWarning),
            ("`is_gradient_checkpointing` is deprecated and will be removed in v6.", FutureWarning),
            ("Tip: In future versions of Ray, Ray will no longer override accelerator visible devices", FutureWarning),
            ("some other deprecation", DeprecationWarning),
            ("some other future change", FutureWarning),
        ]:
            warnings.warn(message, category, stacklevel=1)
    assert [str(w.message) for w in caught] == ["some other deprecation", "some other future change"]


def test_flowers_noise_lines_are_dropped_and_its_other_lines_kept(caplog):
    silence_known_noise()
    silence_known_noise()  # idempotent: one filter
    flwr = logging.getLogger("flwr")
    assert sum(type(f).__name__ == "_FlowerNoise" for f in flwr.filters) == 1
    with caplog.at_level(logging.INFO, logger="flwr"):
        flwr.warning("DEPRECATED FEATURE: %s\n\n  This is a deprecated feature.",
                     "The `run_simulation` function is deprecated and will be removed in a future version")
        flwr.warning("Manually terminating %s", "ClientAppActor")
        flwr.warning("DEPRECATED FEATURE: %s", "something else")
        flwr.info("Starting Flower ServerApp")
    assert [r.getMessage() for r in caplog.records] == ["DEPRECATED FEATURE: something else", "Starting Flower ServerApp"]
