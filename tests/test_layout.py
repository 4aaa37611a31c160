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
    pattern = re.compile(r"\b(" + "|".join(words) + r")\b", re.IGNORECASE)  # FedIT as much as fedit
    branch = re.compile(r"fed_alg\s*(==|!=|\bin\b)|\.(fed_alg|method)\s*==\s*[\"']")
    found = []
    for path in _outside_algorithms():
        rel = path.relative_to(REPO)
        for lineno, line in enumerate(path.read_text().splitlines(), 1):
            found += [f"{rel}:{lineno}: {m.group(1)}" for m in pattern.finditer(line)]
            found += [f"{rel}:{lineno}: branches on fed_alg" for _ in branch.finditer(line)]
        found += [f"{rel}:{lineno}: {text!r}" for lineno, text in _string_literals(path)
                  if text.lower() in names - {"local", PACKAGE.name}]
    assert not found, "algorithm names outside fedrouter/algorithms/:\n" + "\n".join(found)


def _module_name(path: Path) -> str:
    return ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")


def _imports(path: Path) -> set[str]:
    """The fedrouter modules `path` imports, at module level or inside functions; imports under
    `if TYPE_CHECKING:` are for annotations only and never run, so they are not edges."""
    tree = ast.parse(path.read_text())
    skip = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
            for n in ast.walk(node)}
    this = _module_name(path)
    package = this if path.name == "__init__.py" else this.rpartition(".")[0]
    deps = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative import
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            if base.startswith("fedrouter"):
                # `from fedrouter.steps import cluster` imports the submodule fedrouter.steps.cluster
                deps |= {f"{base}.{a.name}" if (PACKAGE.parent / f"{base}.{a.name}".replace(".", "/")).with_suffix(".py").exists()
                         else base for a in node.names}
        elif isinstance(node, ast.Import):
            deps |= {a.name for a in node.names if a.name.startswith("fedrouter")}
    return deps - {this}


def test_no_import_circles_between_modules():
    """No cycle among fedrouter modules, counting imports inside functions too (a deferred import
    hides a circle; it does not remove it). An import of a module also runs its package's __init__.
    Loading the built-in algorithms by name (config.registry.BUILTIN_PLUGINS) is the registry's plugin
    mechanism, not an import statement, and is the one way the bottom layer reaches the algorithms."""
    graph: dict[str, set[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        graph[_module_name(path)] = _imports(path)
    for mod, deps in graph.items():  # importing a.b.c runs a.b's __init__ first
        for dep in list(deps):
            parent = dep.rpartition(".")[0]
            if parent in graph and parent != mod and not mod.startswith(parent + "."):
                deps.add(parent)
    state: dict[str, int] = {}

    def visit(mod: str, stack: list[str]) -> None:
        state[mod] = 1
        for dep in sorted(graph.get(mod, ())):
            if state.get(dep) == 1:
                raise AssertionError("import circle: " + " -> ".join([*stack[stack.index(dep):], dep]))
            if dep in graph and not state.get(dep):
                visit(dep, [*stack, dep])
        state[mod] = 2

    for mod in sorted(graph):
        if not state.get(mod):
            visit(mod, [mod])


def test_the_settings_package_imports_nothing_above_it():
    """fedrouter.config is the bottom layer: its modules import only each other."""
    found = {f"{p.relative_to(REPO)}: {dep}" for p in sorted((PACKAGE / "config").glob("*.py"))
             for dep in _imports(p) if not dep.startswith("fedrouter.config")}
    assert not found, found


def test_nothing_a_user_reads_points_outside_the_repository():
    files = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md")), *sorted(PACKAGE.rglob("*.py")),
             *sorted((REPO / "training_scripts").glob("*.sh")), *sorted((REPO / "configs").glob("*.toml"))]
    found = [f"{p.relative_to(REPO)}:{i}" for p in files
             for i, line in enumerate(p.read_text().splitlines(), 1) if re.search(r"\.\./shared|/work/", line)]
    assert not found, found


def test_readme_is_short():
    assert len((REPO / "README.md").read_text().splitlines()) <= 300
