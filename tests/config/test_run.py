"""RunConfig: reading flat settings into sections, aliases, algorithms' own settings, the learning-rate schedule
(the checks of the values are in tests/test_validation.py and tests/config/test_common.py)."""

from __future__ import annotations

import tomllib

import pytest

from conftest import REPO
from fedrouter.algorithms.base import algorithms
from fedrouter.config import ConfigError, RunConfig, flat_defaults, sections


def test_what_flwr_run_passes_resolves_like_the_launcher():
    """`flwr run .` hands the ServerApp every key of pyproject's config at its default: an alias still decides."""
    app_cfg = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["flwr"]["app"]["config"]
    cfg = RunConfig.from_mapping({**app_cfg, "fed_alg": "fedrouter", "evaluation_mode": "global"})
    assert (cfg.alg.router, cfg.test_distribution) == ("global", "all")
    cfg = RunConfig.from_mapping({**app_cfg, "fed_alg": "fedrouter"})
    assert (cfg.alg.router, cfg.test_distribution) == ("local", "same")


def test_a_key_two_algorithms_share_has_one_default():
    seen: dict[str, object] = {}
    for alg in algorithms():
        for key, default in alg.settings.defaults().items():
            assert seen.setdefault(key, default) == default, key
            assert all(key not in sec.keys() for sec in sections()), key


def test_parsing_strings_and_unknown_keys():
    cfg = RunConfig.from_mapping({"num_rounds": "3", "load_in_4bit": "true", "lr": "1e-3", "eval-round": "1,3"})
    assert cfg.num_rounds == 3 and cfg.load_in_4bit is True and cfg.lr == 1e-3 and cfg.eval_rounds == (1, 3)
    with pytest.raises(ConfigError, match=r"unknown setting\(s\) \['num_round'\] \(did you mean num_rounds\?\)"):
        RunConfig.from_mapping({"num_round": 3})
    with pytest.raises(ConfigError, match="num_rounds='x': expected int"):
        RunConfig.from_mapping({"num_rounds": "x"})


@pytest.mark.parametrize("mode, router, tested_on", [("local", "local", "same"), ("global", "global", "all"),
                                                      ("data_local_eval_global", "global", "same"),
                                                      ("data_global_eval_local", "local", "all")])
def test_evaluation_mode_is_resolved_once_into_router_and_test_distribution(mode, router, tested_on):
    cfg = RunConfig.from_mapping({"evaluation_mode": mode})
    assert (cfg.alg.router, cfg.test_distribution) == (router, tested_on)
    assert "evaluation_mode" not in cfg.to_dict()  # config.json records what it resolved to
    # A method without a router takes the test distribution only.
    assert RunConfig.from_mapping({"evaluation_mode": mode, "fed_alg": "fedit"}).test_distribution == tested_on
    # A setting it implies, given at a non-default value that differs, is a conflict; at its default
    # (what `flwr run` passes for every key) the alias decides.
    other_router, other_tested = ("global" if router == "local" else "local"), ("all" if tested_on == "same" else "same")
    if other_router != "local":
        with pytest.raises(ConfigError, match=f"evaluation_mode='{mode}' means router="):
            RunConfig.from_mapping({"evaluation_mode": mode, "router": other_router})
    else:
        assert RunConfig.from_mapping({"evaluation_mode": mode, "router": other_router}).alg.router == router
    if other_tested != "same":
        with pytest.raises(ConfigError, match=f"evaluation_mode='{mode}' means test_distribution="):
            RunConfig.from_mapping({"evaluation_mode": mode, "test_distribution": other_tested})


def test_one_router_default_everywhere():
    """The code, pyproject (flwr run .) and the launcher (which forwards nothing unset) agree."""
    assert RunConfig().alg.router == flat_defaults()["router"] == "local"
    assert RunConfig().test_distribution == "same"


def test_each_algorithm_owns_its_settings():
    assert RunConfig.from_mapping({"fed_alg": "fedprox", "mu": "0.1"}).alg.mu == 0.1
    assert RunConfig.from_mapping({"fed_alg": "fedcluster", "n_groups": "2"}).alg.n_groups == "2"
    # Another algorithm's key at its default is ignored (flwr run passes every key); set, it is an error.
    assert RunConfig.from_mapping({"fed_alg": "fedit", "mu": 0.01, "n_clusters": "1"}).to_dict().get("mu") is None
    with pytest.raises(ConfigError, match="n_clusters='3' is a setting of fed_alg=fedrouter; fed_alg=fedit has no"):
        RunConfig.from_mapping({"fed_alg": "fedit", "n_clusters": "3"})
    cfg = RunConfig.from_mapping({"n_clusters": "2"}).replace(router="global", num_rounds=3)
    assert (cfg.alg.n_clusters, cfg.alg.router, cfg.num_rounds) == ("2", "global", 3)


@pytest.mark.parametrize("changes, message", [
    ({"fed_alg": "fedavgx"}, "fed_alg='fedavgx' is not known; allowed: "),
    ({"evaluation_mode": "both"}, "evaluation_mode='both' is not known"),
])
def test_unknown_algorithm_or_mode_fails_when_read(changes, message):
    with pytest.raises(ConfigError, match=message):
        RunConfig.from_mapping(changes)


def test_sections_and_flat_access_agree():
    cfg = RunConfig.from_mapping({"num_rounds": "3", "lora_r": "4", "mu": "0.5", "fed_alg": "fedprox"})
    assert cfg.training.num_rounds == cfg.num_rounds == 3 and cfg.lora.lora_r == cfg.lora_r == 4
    assert cfg.alg.mu == 0.5 and [s.name for s in cfg.section_list()][:-1] == [s.name for s in sections()]
    assert set(cfg.to_dict()) == {k for sec in cfg.section_list() for k in sec.keys()}
    with pytest.raises(AttributeError):
        cfg.num_rounds = 4  # frozen: a changed copy comes from replace
    assert cfg.replace(num_rounds=4).num_rounds == 4 and cfg.num_rounds == 3
    assert RunConfig.from_mapping(cfg.to_dict()) == cfg and hash(RunConfig.from_mapping(cfg.to_dict())) == hash(cfg)


def test_structured_values_are_parsed_once_and_recorded_as_written():
    cfg = RunConfig.from_mapping({"k_range": "2,6", "eval_round": "0,3", "inject_fault": "1:2:nan,0:1",
                                  "lora_target_modules": "q_proj, v_proj", "num_rounds": 3})
    assert (cfg.alg.k_range.lo, cfg.alg.k_range.hi) == (2, 6) and cfg.eval_round.rounds == (0, 3)
    assert cfg.inject_fault.entries == ((1, 2, "nan"), (0, 1, "raise")) and cfg.fault_for(1, 2) == "nan"
    assert cfg.target_modules == ["q_proj", "v_proj"]
    # config.json keeps the text as written (plain strings: JSON, flwr's ConfigRecord and pyproject take them)
    flat = cfg.to_dict()
    assert flat["k_range"] == "2,6" and type(flat["k_range"]) is str and flat["lora_target_modules"] == "q_proj, v_proj"
    with pytest.raises(ConfigError, match="k_range='2-6' must be 'min,max'"):
        RunConfig.from_mapping({"k_range": "2-6"})
    with pytest.raises(ConfigError, match="n_clusters='many' must be a positive integer or 'auto'"):
        RunConfig.from_mapping({"n_clusters": "many"})


def test_typed_construction_checks_keys():
    assert RunConfig(num_rounds=3, eval_round="1,3").eval_rounds == (1, 3)
    with pytest.raises(TypeError, match="unknown setting"):
        RunConfig(num_round=3)


def test_cosine_lr_over_rounds():
    cfg = RunConfig(num_rounds=5, lr=5e-4, lr_min=1e-5)
    assert cfg.lr_at(1) == pytest.approx(5e-4)
    assert cfg.lr_at(5) == pytest.approx(1e-5)
    assert cfg.lr_at(3) == pytest.approx((5e-4 + 1e-5) / 2)
