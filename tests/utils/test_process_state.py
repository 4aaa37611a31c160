"""Every process-wide cache of the package is registered in fedrouter.utils.process_state, and clear() empties them."""

from __future__ import annotations

import ast
import importlib

import numpy as np
import pytest

from conftest import REPO
from fedrouter.utils import process_state

PACKAGE = REPO / "fedrouter"
# Module-level state that is not a cache, and why clear() leaves it alone.
NOT_CACHES = {
    "fedrouter.config.registry._REGISTRY": "the algorithm registry: registrations made at import",
    "fedrouter.config.section._SECTIONS": "the settings sections: registrations made at import",
    "fedrouter.config.section._ALIASES": "the settings aliases: registrations made at import",
    "fedrouter.metrics._REGISTRY": "the metric registry: registrations made at import",
    "fedrouter.config.registry._loaded": "whether the built-in algorithm plugins were imported (imports are not undone)",
    "fedrouter.data.sources.base._REGISTERED": "the data-source registry: registrations made at import",
    "fedrouter.routing.routers.ROUTERS": "the router registry: registrations made at import",
    "fedrouter.utils.process_state._ENTRIES": "the registry of caches itself",
    "fedrouter.models.loader.LOAD_COUNT": "loads over the process's life (tests read it to prove one load)",
}
_CACHE_DECORATORS = {"cache", "lru_cache", "cached"}
_CONTAINERS = {"dict", "list", "set", "OrderedDict", "defaultdict", "WeakKeyDictionary", "WeakValueDictionary"}
_MUTATORS = {"update", "clear", "setdefault", "pop", "popitem", "append", "add", "extend", "insert", "remove"}


def _name(node: ast.AST) -> str:
    """The last name of a (dotted) reference or call: `functools.lru_cache(...)` -> lru_cache."""
    node = node.func if isinstance(node, ast.Call) else node
    return node.attr if isinstance(node, ast.Attribute) else getattr(node, "id", "")


def _module_state(path) -> list[str]:
    """The attributes of one module that hold state across calls: functions under a caching decorator,
    module-level containers created empty or mutated anywhere in the module, names rebound by `global`."""
    tree = ast.parse(path.read_text())
    found = []
    for node in tree.body:
        defs = [node] + ([n for n in node.body if isinstance(n, ast.FunctionDef)] if isinstance(node, ast.ClassDef) else [])
        for d in defs:
            if isinstance(d, ast.FunctionDef) and any(_name(dec) in _CACHE_DECORATORS for dec in d.decorator_list):
                found.append(d.name if d is node else f"{node.name}.{d.name}")
    containers = {}
    for node in tree.body:
        target = node.targets[0] if isinstance(node, ast.Assign) and len(node.targets) == 1 else getattr(node, "target", None)
        value = getattr(node, "value", None)
        if isinstance(target, ast.Name) and isinstance(value, ast.Dict | ast.List | ast.Set | ast.Call):
            registered = isinstance(value, ast.Call) and ast.unparse(value.func) == "process_state.register"
            if not isinstance(value, ast.Call) or _name(value) in _CONTAINERS or registered:
                empty = isinstance(value, ast.Call) or not (getattr(value, "keys", None) or getattr(value, "elts", None))
                containers[target.id] = empty
    mutated = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Store | ast.Del) and isinstance(node.value, ast.Name):
            mutated.add(node.value.id)
        elif isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Subscript) and isinstance(node.target.value, ast.Name):
            mutated.add(node.target.value.id)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in _MUTATORS \
                and isinstance(node.func.value, ast.Name):
            mutated.add(node.func.value.id)
        elif isinstance(node, ast.Global):
            found += node.names
    found += [name for name, empty in containers.items() if empty or name in mutated]
    return sorted(set(found))


def _package_state() -> dict[str, object]:
    """"<module>.<attribute>" -> the object, for every piece of process-wide state in the package's source."""
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        names = _module_state(path)
        if not names:
            continue
        module = importlib.import_module(".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__"))
        for name in names:
            obj = module
            for part in name.split("."):
                obj = getattr(obj, part)
            out[f"{module.__name__}.{name}"] = obj
    return out


def test_every_process_wide_cache_in_the_package_is_registered():
    state = _package_state()
    # the scan sees what it must: lru-style functions, module dicts, a weak-keyed dict, a counter dict
    for expected in ("fedrouter.data.federated._partitions", "fedrouter.models.backbone._CACHE",
                     "fedrouter.steps.batching._STEP_SECONDS", "fedrouter.steps.generate.DECODE_COUNTERS",
                     "fedrouter.config.registry._REGISTRY", "fedrouter.models.loader.LOAD_COUNT"):
        assert expected in state
    missing = [name for name, obj in state.items() if name not in NOT_CACHES and process_state.entry_of(obj) is None]
    assert not missing, ("process-wide caches not registered in fedrouter.utils.process_state (use "
                         "@process_state.cached or process_state.register): " + ", ".join(missing))
    assert not set(NOT_CACHES) - set(state), "NOT_CACHES names state the package no longer has"
    # and every registered name is such a piece of state, under the name its module gives it
    registered = {process_state.entry_of(obj).name for name, obj in state.items() if name not in NOT_CACHES}
    assert registered == set(process_state.names())


def test_clear_empties_every_cache(tmp_path):
    from conftest import tiny_settings
    from fedrouter import metrics
    from fedrouter.data.federated import all_client_data
    from fedrouter.runtime import client_app
    from fedrouter.steps import cluster
    from fedrouter.steps.generate import DECODE_COUNTERS
    from fedrouter.utils.io import atomic_write_text

    # Prepare: fill a cache of each kind (lru-style functions, module dicts, a counter)
    cfg = tiny_settings(tmp_path, dataset_sample=20)
    all_client_data(cfg)
    client_app._parse_config((("num_clients", 4),))
    cluster.kmeans(np.arange(12, dtype=np.float32).reshape(6, 2), 2, seed=0)
    metrics.get_metric("rouge1").scorer(["a b"], ["a c"])
    atomic_write_text(tmp_path / "x.txt", "x")
    DECODE_COUNTERS["steps"] += 1
    filled = {n for n, size in process_state.sizes().items() if size}
    assert {"fedrouter.data.federated._partitions", "fedrouter.data.sources.pool._load_pool_cached",
            "fedrouter.runtime.client_app._parse_config", "fedrouter.steps.cluster._FITS",
            "fedrouter.metrics._rouge_scorer", "fedrouter.utils.io._umask",
            "fedrouter.steps.generate.DECODE_COUNTERS"} <= filled
    # Execute
    process_state.clear()
    # Assert
    assert not any(process_state.sizes().values())
    assert DECODE_COUNTERS == {"steps": 0, "row_steps": 0}


def test_clear_one_by_name_object_or_module():
    from fedrouter import metrics
    from fedrouter.steps import cluster

    def fill():
        cluster.kmeans(np.arange(12, dtype=np.float32).reshape(6, 2), 2, seed=0)
        metrics.get_metric("rouge1").scorer(["a b"], ["a c"])

    def held():
        return {n for n, size in process_state.sizes().items() if size} & {
            "fedrouter.steps.cluster._FITS", "fedrouter.metrics._rouge_scorer"}

    fill()
    process_state.clear("fedrouter.steps.cluster._FITS")
    assert held() == {"fedrouter.metrics._rouge_scorer"}
    fill()
    process_state.clear(metrics._rouge_scorer)
    assert held() == {"fedrouter.steps.cluster._FITS"}
    fill()
    process_state.clear(cluster)
    assert held() == {"fedrouter.metrics._rouge_scorer"}
    with pytest.raises(KeyError, match="not a registered process-wide cache: nothing.here"):
        process_state.clear("nothing.here")


def test_cached_memoizes_and_registers_under_its_qualified_name(monkeypatch):
    monkeypatch.setattr(process_state, "_ENTRIES", {})
    calls = []

    @process_state.cached(maxsize=2)
    def square(x):
        calls.append(x)
        return x * x

    d = process_state.register("somewhere.D", {"a": 1})
    assert square(3) == square(3) == 9 and calls == [3]
    name = f"{__name__}.test_cached_memoizes_and_registers_under_its_qualified_name.<locals>.square"
    assert process_state.names() == sorted([name, "somewhere.D"]) and process_state.entry_of(square).name == name
    assert process_state.names(under="somewhere") == ["somewhere.D"]
    process_state.clear()
    assert d == {} and square(3) == 9 and calls == [3, 3]
    # a module imported again registers its caches again: the new object replaces the old
    d2 = process_state.register("somewhere.D", {})
    assert process_state.entry_of(d2).name == "somewhere.D" and process_state.entry_of(d) is None


def test_a_client_half_clears_the_caches_of_its_own_module_only(monkeypatch):
    from fedrouter.algorithms.base import ClientAlgorithm

    monkeypatch.setattr(process_state, "_ENTRIES", {})
    mine, other = process_state.register(f"{__name__}.MINE", {1: 1}), process_state.register("elsewhere.OTHER", {1: 1})

    class Client(ClientAlgorithm):
        def train(self, rt, content):
            raise NotImplementedError

    Client.clear_caches()
    assert mine == {} and other == {1: 1}
