"""Run settings: sections of `setting(default, help)` fields, the algorithm registry, RunConfig.

This package is the bottom layer: it imports no other fedrouter module (the built-in algorithms are
loaded by name as plugins, see `registry`)."""

from fedrouter.config.common import (
    DTYPES,
    GENERATION_BATCHING,
    SPLIT_ALIASES,
    SPLIT_STRATEGIES,
    TEST_DISTRIBUTIONS,
    cross_checks,
)
from fedrouter.config.privacy import DP_BUDGET, DP_MODES, DP_SAMPLING, PrivacySettings
from fedrouter.config.registry import (
    Algorithm,
    algorithms,
    default_algorithm,
    get_algorithm,
    known_algorithms,
    register,
)
from fedrouter.config.run import RunConfig, settings_class
from fedrouter.config.section import (
    AlgorithmSettings,
    Alias,
    ConfigError,
    Section,
    aliases,
    register_alias,
    register_section,
    sections,
    setting,
    unregister_section,
)
from fedrouter.config.tables import flat_defaults, flwr_app_defaults, help_table
from fedrouter.config.values import FaultList, IntOrAuto, IntRange, NameList, RoundList, TaskSelection

__all__ = [
    "DP_BUDGET", "DP_MODES", "DP_SAMPLING", "DTYPES", "PrivacySettings", "GENERATION_BATCHING", "SPLIT_ALIASES", "SPLIT_STRATEGIES", "TEST_DISTRIBUTIONS",
    "Algorithm", "AlgorithmSettings", "Alias", "ConfigError", "FaultList", "IntOrAuto", "IntRange", "NameList",
    "RoundList", "RunConfig", "Section", "TaskSelection", "aliases", "algorithms", "cross_checks",
    "default_algorithm", "flat_defaults", "flwr_app_defaults", "get_algorithm", "help_table", "known_algorithms",
    "register", "register_alias", "register_section", "sections", "setting", "settings_class", "unregister_section",
]
