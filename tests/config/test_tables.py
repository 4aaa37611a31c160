"""The generated listings: pyproject's [tool.flwr.app.config], the docs tables and --list-settings follow
the registries, and a new section appears in all three without editing any other file."""

from __future__ import annotations

import shutil
import tomllib
from dataclasses import dataclass

from conftest import REPO, run_python
from fedrouter.config import (
    RunConfig,
    Section,
    flat_defaults,
    flwr_app_defaults,
    help_table,
    register_section,
    setting,
    unregister_section,
)
from fedrouter.config.tables import pyproject_block, sync


def test_pyproject_app_config_equals_code_defaults():
    app_cfg = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["flwr"]["app"]["config"]
    assert app_cfg == flwr_app_defaults() == flat_defaults()
    assert not sync(REPO, write=False), "stale generated settings: run `python -m fedrouter.config --write`"


def test_docs_settings_table_matches_the_code():
    """docs/configuration.md's settings tables are help_table()'s output: defaults and meanings cannot drift."""
    assert help_table() in (REPO / "docs" / "configuration.md").read_text()


def test_a_new_section_appears_everywhere_and_stale_files_are_named(tmp_path):
    @dataclass(frozen=True)
    class Privacy(Section):
        name = "privacy_test"
        title = "A section added by a test"
        dp_noise_test: float = setting(0.0, "noise multiplier (0 = off)")

        def check(self, run):
            return [] if self.dp_noise_test >= 0 else [f"dp_noise_test={self.dp_noise_test} must be >= 0"]

    register_section(Privacy)
    try:
        from fedrouter.config import RunConfig
        from fedrouter.validation import problems

        assert "`dp_noise_test`" in help_table() and "A section added by a test" in help_table()
        assert flat_defaults()["dp_noise_test"] == 0.0 and "dp_noise_test = 0.0" in pyproject_block()
        cfg = RunConfig.from_mapping({"dp_noise_test": "-1"})
        assert cfg.privacy_test.dp_noise_test == cfg.dp_noise_test == -1.0
        assert "dp_noise_test=-1.0 must be >= 0" in problems(cfg, sources=False)
        for rel in ("pyproject.toml", "docs/configuration.md"):
            (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(REPO / rel, tmp_path / rel)
        assert sorted(sync(tmp_path, write=False)) == ["docs/configuration.md", "pyproject.toml"]
        sync(tmp_path, write=True)
        app_cfg = tomllib.loads((tmp_path / "pyproject.toml").read_text())["tool"]["flwr"]["app"]["config"]
        assert app_cfg == flat_defaults() and not sync(tmp_path, write=False)
    finally:
        unregister_section(Privacy)
    assert "dp_noise_test" not in flat_defaults()


def test_list_settings_is_quick_and_complete():
    """The command line's own path (`python -m`): every table, and none of the libraries that take
    seconds to import (torch, scikit-learn, ...; conftest.HEAVY_LIBRARIES): quick on any machine."""
    out, loaded = run_python("import runpy, sys\n"
                             "sys.argv = ['simulate', '--list-settings']\n"
                             "runpy.run_module('fedrouter.runtime.simulate', run_name='__main__', alter_sys=True)\n")
    assert out.strip() == help_table()
    assert loaded == []


def test_print_of_a_setting_loads_no_heavy_library():
    """The launcher resolves the run's name with `--print sim_alias` before every run."""
    out, loaded = run_python("import runpy, sys\n"
                             "sys.argv = ['simulate', '--print', 'sim_alias', 'fed_alg=fedit']\n"
                             "runpy.run_module('fedrouter.runtime.simulate', run_name='__main__', alter_sys=True)\n")
    assert out.strip() == RunConfig.from_mapping({"fed_alg": "fedit"}).sim_alias
    assert loaded == []
