"""Every setting listed from the registries: the flat defaults, pyproject's `[tool.flwr.app.config]`
block and the markdown tables of `--list-settings` and docs/configuration.md.

`python -m fedrouter.config --write` rewrites the two generated blocks in the repository
(pyproject.toml and docs/configuration.md) after a setting or section was added; tests fail, naming
the file and this command, when either is out of date."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from fedrouter.config.registry import algorithms
from fedrouter.config.section import aliases, sections

DOCS_BEGIN, DOCS_END = "<!-- settings:begin (generated: python -m fedrouter.config --write) -->", "<!-- settings:end -->"
PYPROJECT_HEADER = "[tool.flwr.app.config]"


def flat_defaults() -> dict[str, Any]:
    """Every key a run config may hold, with its default: each section's settings, each alias (empty =
    not set) and each algorithm's own settings (what pyproject's [tool.flwr.app.config] equals)."""
    algs = algorithms()  # loads the plugins first: they may register aliases
    out: dict[str, Any] = {}
    for sec in sections():
        out.update({k: str(v) if isinstance(v, str) else v for k, v in sec.defaults().items()})
    out.update({a.name: "" for a in aliases()})
    for alg in algs:
        out.update({k: str(v) if isinstance(v, str) else v for k, v in alg.settings.defaults().items()})
    return out


def flwr_app_defaults() -> dict[str, Any]:
    """pyproject's [tool.flwr.app.config]: `flwr run` passes every key listed there at its default,
    and a setting at its default does not conflict with an alias (`--run-config "evaluation_mode='global'"`)."""
    return flat_defaults()


def _table(fields) -> list[str]:
    rows = ["| setting | default | meaning |", "| --- | --- | --- |"]
    for f in fields:
        meaning = f.metadata["help"].replace("|", "\\|")  # a bare | would split the cell
        rows.append(f"| `{f.name}` | `{f.default}` | {meaning} |")
    return rows


def help_table() -> str:
    """Markdown tables of every setting, its default and meaning, one per section, then the aliases,
    then each algorithm's own settings (used by docs/configuration.md and --list-settings)."""
    algs = algorithms()  # loads the plugins first: they may register aliases
    rows: list[str] = []
    for sec in sections():
        rows += [f"**{sec.title}** (`{sec.name}`)", "", *_table(dataclasses.fields(sec)), ""]
    if aliases():
        rows += ["**Aliases** (resolved once when settings are read)", "", "| alias | meaning |", "| --- | --- |"]
        rows += [f"| `{a.name}` | {a.help.replace('|', chr(92) + '|')} |" for a in aliases()]
    for alg in algs:
        fields = dataclasses.fields(alg.settings)
        rows += ["", f"`fed_alg={alg.name}`" + (f" (alias {', '.join(alg.aliases)})" if alg.aliases else "")
                 + f": {alg.summary}" + ("" if fields else "; no settings of its own")]
        if fields:
            rows += ["", *_table(fields)]
    return "\n".join(rows)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return json.dumps(value)


def pyproject_block() -> str:
    """The [tool.flwr.app.config] table: every key at its default, grouped by section and algorithm."""
    algs = algorithms()  # loads the plugins first: they may register aliases
    lines = [PYPROJECT_HEADER,
             "# Every key a run accepts, at its default (`flwr run . --run-config \"k=v\"` may only set keys listed here).",
             "# Generated from the settings sections and each algorithm's settings class:",
             "#   python -m fedrouter.config --write   (tests/config/test_tables.py keeps it equal)"]
    for sec in sections():
        lines.append(f"# {sec.name}")
        lines += [f"{k} = {_toml_value(str(v) if isinstance(v, str) else v)}" for k, v in sec.defaults().items()]
    for a in aliases():
        lines.append(f'{a.name} = ""  # alias, resolved when settings are read; empty = not set')
    for alg in algs:
        if alg.settings.keys():
            lines.append(f"# fed_alg={alg.name}")
            lines += [f"{k} = {_toml_value(str(v) if isinstance(v, str) else v)}" for k, v in alg.settings.defaults().items()]
    return "\n".join(lines) + "\n"


def _replace_block(text: str, begin: str, end: str | None, new: str) -> str:
    """`text` with the block from the line `begin` up to `end` (exclusive; None = the next [table]) replaced."""
    start = text.index(begin)
    if end is None:
        nxt = text.find("\n[", start + len(begin))
        stop = len(text) if nxt < 0 else nxt + 1
        return text[:start] + new + ("\n" if nxt >= 0 else "") + text[stop:]
    stop = text.index(end, start)
    return text[:start] + new + text[stop:]


def docs_block() -> str:
    return f"{DOCS_BEGIN}\n\n{help_table()}\n\n"


def sync(repo: Path, write: bool) -> list[str]:
    """The generated files that differ from the registries (rewritten when `write`)."""
    stale = []
    targets = [(repo / "pyproject.toml", PYPROJECT_HEADER, None, pyproject_block()),
               (repo / "docs" / "configuration.md", DOCS_BEGIN, DOCS_END, docs_block())]
    for path, begin, end, block in targets:
        text = path.read_text()
        new = _replace_block(text, begin, end, block)
        if new != text:
            stale.append(str(path.relative_to(repo)))
            if write:
                path.write_text(new)
    return stale
