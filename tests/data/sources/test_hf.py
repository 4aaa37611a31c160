"""fedrouter.data.sources.hf: offline or not (hub_mode), forcing the libraries offline for one attempt, and a
loading-script error recognised through its causes."""

from __future__ import annotations

import datasets.config
import pytest

from fedrouter.data.sources import hf


def test_offline_env_means_the_cache_only_without_probing(monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "yes")
    monkeypatch.setattr(hf, "_hub_reachable", lambda *a, **k: pytest.fail("probed the network"))
    assert hf.hub_mode() == (True, "offline mode is on (HF_HUB_OFFLINE/HF_DATASETS_OFFLINE) and the data is not "
                                   "in the cache")


@pytest.fixture
def online(monkeypatch):
    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy",
                "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)


def test_an_unreachable_hub_means_the_cache_only(online, monkeypatch):
    monkeypatch.setattr(hf, "_hub_reachable", lambda endpoint, timeout=3.0: False)
    offline, why = hf.hub_mode()
    assert offline and why == f"{datasets.config.HF_ENDPOINT} is unreachable and the data is not in the cache"
    monkeypatch.setattr(hf, "_hub_reachable", lambda endpoint, timeout=3.0: True)
    assert hf.hub_mode() == (False, "")


def test_behind_a_proxy_the_hub_is_not_probed(online, monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy:3128")
    monkeypatch.setattr(hf, "_hub_reachable", lambda *a, **k: pytest.fail("probed past the proxy"))
    assert hf.hub_mode() == (False, "")


def test_forced_offline_sets_and_restores_both_libraries_flags():
    import huggingface_hub.constants as hub_constants

    saved = (datasets.config.HF_HUB_OFFLINE, hub_constants.HF_HUB_OFFLINE)
    with hf.forced_offline(True):
        assert datasets.config.HF_HUB_OFFLINE and datasets.config.HF_DATASETS_OFFLINE and hub_constants.HF_HUB_OFFLINE
    assert (datasets.config.HF_HUB_OFFLINE, hub_constants.HF_HUB_OFFLINE) == saved


def test_a_loading_script_error_is_found_through_its_causes():
    try:
        try:
            raise RuntimeError("Dataset scripts are no longer supported, but found x.py")
        except RuntimeError as inner:
            raise ValueError("could not build") from inner
    except ValueError as outer:
        assert hf.is_script_error(outer)
    assert not hf.is_script_error(ConnectionError("offline"))
