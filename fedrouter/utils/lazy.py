"""Heavy dependencies imported on first use, not when a module that names them is imported.

Importing `fedrouter.algorithms` registers every algorithm and its settings; `--list-settings` and the
launcher's `--print` need nothing more, while torch alone takes seconds to import. Modules that use torch
throughout hold `torch = lazy_import("torch")`: the name is bound at import, the library is loaded by the
first attribute access (`torch.tensor`, `torch.Tensor`, ...). Libraries used by a few functions only
(scikit-learn) are imported inside those functions instead."""

from __future__ import annotations

import functools
import importlib.util
import sys
import types
from collections.abc import Callable
from typing import TypeVar

F = TypeVar("F", bound=Callable)


def lazy_import(name: str) -> types.ModuleType:
    """The top-level module `name`, executed on its first attribute access (the standard library's
    `importlib.util.LazyLoader`); the module itself when it is already imported. It is entered in
    `sys.modules` at once, so a later plain `import name` anywhere gets this same object.

    Until then `sys.modules[name]` holds the module unexecuted: whether a library is loaded is
    `is_loaded(name)`, not `name in sys.modules`. A plain `import name`, and a library that probes
    `sys.modules` for it (scipy's array-API helpers look for `torch.Tensor`, so importing scikit-learn
    does), load it. On Python 3.11, LazyLoader does not guard the load against a second thread touching
    the module meanwhile (3.12 does): a process that would do so imports it eagerly first (the ClientApp
    imports torch at the top)."""
    if name in sys.modules:
        return sys.modules[name]
    if "." in name:
        raise ValueError(f"lazy_import({name!r}): top-level modules only (finding a submodule imports its parent)")
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        raise ModuleNotFoundError(f"No module named {name!r}", name=name)
    loader = importlib.util.LazyLoader(spec.loader)
    spec.loader = loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    loader.exec_module(module)
    return module


def is_loaded(name: str) -> bool:
    """Whether module `name` has been executed: imported eagerly, or lazily and touched since."""
    module = sys.modules.get(name)
    # The lazy module's class is LazyLoader's own subclass until the first attribute access loads it;
    # type() reads the class without triggering that access.
    return module is not None and type(module).__name__ != "_LazyModule"


def inference_mode(fn: F) -> F:
    """`@torch.inference_mode()` for a plain function, entered when the function is called: the decorator
    form would load torch where the function is defined."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        import torch

        with torch.inference_mode():
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
