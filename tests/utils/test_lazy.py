"""Heavy libraries load on first use: importing the algorithms loads none of them, and the lazy torch is
the one torch module of the process, with the behaviour of an eager import once touched."""

from __future__ import annotations

import sys

import pytest

from conftest import run_python
from fedrouter.utils.lazy import inference_mode, is_loaded, lazy_import


def test_importing_the_algorithms_registers_them_all_and_loads_no_heavy_library():
    out, loaded = run_python("import fedrouter.algorithms\n"
                             "from fedrouter.config import known_algorithms\n"
                             "print(' '.join(sorted(known_algorithms())))\n")
    from fedrouter.config import known_algorithms

    assert out.split() == sorted(known_algorithms())  # this process's registry
    assert loaded == []


def test_the_lazy_torch_loads_on_first_use_and_is_the_process_torch():
    out, loaded = run_python("from fedrouter.steps import train\n"
                             "from fedrouter.utils.lazy import is_loaded\n"
                             "before = is_loaded('torch')\n"
                             "x = train.torch.zeros(2)\n"
                             "import torch\n"
                             "print(before, is_loaded('torch'), torch is train.torch, torch.get_num_threads() >= 1)\n")
    assert out.split() == ["False", "True", "True", "True"]
    assert loaded == ["torch"]


def test_lazy_import_runs_the_module_once_on_first_attribute_access(tmp_path, monkeypatch):
    name = "fedrouter_lazy_probe"
    runs = tmp_path / "runs.txt"
    (tmp_path / f"{name}.py").write_text("from pathlib import Path\n"
                                         "with (Path(__file__).parent / 'runs.txt').open('a') as f:\n"
                                         "    f.write('ran\\n')\n"
                                         "VALUE = 42\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        module = lazy_import(name)
        assert sys.modules[name] is module and lazy_import(name) is module
        assert not runs.exists() and not is_loaded(name)
        assert module.VALUE == 42 and is_loaded(name)
        import fedrouter_lazy_probe  # a plain import anywhere gets the same, already executed module

        assert fedrouter_lazy_probe is module and fedrouter_lazy_probe.VALUE == 42
        assert runs.read_text() == "ran\n"
    finally:
        sys.modules.pop(name, None)


def test_lazy_import_of_an_imported_module_is_that_module_and_refuses_what_it_cannot_load():
    import json

    assert lazy_import("json") is json and is_loaded("json")
    assert not is_loaded("fedrouter_no_such_module")
    with pytest.raises(ModuleNotFoundError):
        lazy_import("fedrouter_no_such_module")
    with pytest.raises(ValueError, match="top-level"):
        lazy_import("fedrouter_no_such_module.sub")


def test_inference_mode_enters_torch_inference_mode_when_called():
    import torch

    @inference_mode
    def double(x):
        """Twice x."""
        return torch.is_inference_mode_enabled(), x * 2

    assert (double.__name__, double.__doc__) == ("double", "Twice x.")
    enabled, y = double(torch.ones(2))
    assert enabled and y.is_inference() and y.tolist() == [2.0, 2.0]
    assert not torch.is_inference_mode_enabled()
