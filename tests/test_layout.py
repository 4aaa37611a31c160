"""The package layout: algorithm logic only in fedrouter/algorithms/, no import circles, no path
outside the repository in what a user reads."""

from __future__ import annotations

import ast
import io
import re
import tokenize
from pathlib import Path

from conftest import REPO
from fedrouter.algorithms.base import algorithms

PACKAGE = REPO / "fedrouter"


def _outside_algorithms() -> list[Path]:
    return [p for p in sorted(PACKAGE.rglob("*.py")) if "algorithms" not in p.relative_to(PACKAGE).parts]


def _string_literals(path: Path) -> list[tuple[int, str]]:
    out = []
    for tok in tokenize.generate_tokens(io.StringIO(path.read_text()).readline):
        if tok.type == tokenize.STRING:
            try:
                out.append((tok.start[0], str(ast.literal_eval(tok.string))))
            except ValueError:  # f-strings: their text as written
                out.append((tok.start[0], tok.string))
    return out


def test_no_module_outside_algorithms_names_an_algorithm():
    """Validation, report, plots and bench reach algorithms through the registry, never by name."""
    names = {n for a in algorithms() for n in (a.name, *a.aliases)}
    # "local" is also a router value and an ordinary word: only an exact string literal "local" used as
    # an algorithm name would count, which the fed_alg comparison check below catches. "fedrouter" is
    # also the package's own name (imports, loggers, cache folder): same treatment.
    words = sorted(names - {"local", PACKAGE.name})
    pattern = re.compile(r"\b(" + "|".join(words) + r")\b")
    branch = re.compile(r"fed_alg\s*(==|!=|\bin\b)|\.(fed_alg|method)\s*==\s*[\"']")
    found = []
    for path in _outside_algorithms():
        rel = path.relative_to(REPO)
        for lineno, line in enumerate(path.read_text().splitlines(), 1):
            found += [f"{rel}:{lineno}: {m.group(1)}" for m in pattern.finditer(line)]
            found += [f"{rel}:{lineno}: branches on fed_alg" for _ in branch.finditer(line)]
        found += [f"{rel}:{lineno}: {text!r}" for lineno, text in _string_literals(path)
                  if text in names - {"local", PACKAGE.name}]
    assert not found, "algorithm names outside fedrouter/algorithms/:\n" + "\n".join(found)


def test_no_import_circles_between_modules():
    """Module-level imports of fedrouter modules form no cycle (deferred imports inside functions aside)."""
    graph: dict[str, set[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        mod = ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
        deps = set()
        for node in ast.parse(path.read_text()).body:  # top level only
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("fedrouter"):
                deps.add(node.module)
            elif isinstance(node, ast.Import):
                deps |= {a.name for a in node.names if a.name.startswith("fedrouter")}
        graph[mod] = deps
    state: dict[str, int] = {}

    def visit(mod: str, stack: list[str]) -> None:
        state[mod] = 1
        for dep in graph.get(mod, ()):
            if state.get(dep) == 1:
                raise AssertionError("import circle: " + " -> ".join([*stack[stack.index(dep):], dep]))
            if dep in graph and not state.get(dep):
                visit(dep, [*stack, dep])
        state[mod] = 2

    for mod in graph:
        if not state.get(mod):
            visit(mod, [mod])


def test_nothing_a_user_reads_points_outside_the_repository():
    files = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md")), *sorted(PACKAGE.rglob("*.py")),
             *sorted((REPO / "training_scripts").glob("*.sh")), *sorted((REPO / "configs").glob("*.toml"))]
    found = [f"{p.relative_to(REPO)}:{i}" for p in files
             for i, line in enumerate(p.read_text().splitlines(), 1) if re.search(r"\.\./shared|/work/", line)]
    assert not found, found


def test_readme_is_short():
    assert len((REPO / "README.md").read_text().splitlines()) <= 300
