"""The generated listings: pyproject's [tool.flwr.app.config], the docs tables and --list-settings follow
the registries, and a new section appears in all three without editing any other file."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass

from conftest import REPO
from fedrouter.config import (
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
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "fedrouter.runtime.simulate", "--list-settings"], cwd=REPO,
                         capture_output=True, text=True, check=True).stdout
    took = time.perf_counter() - start
    assert out.strip() == help_table()
    assert took < 15, took  # generous: measured as instant-ish on an idle machine (see docs/configuration.md)
