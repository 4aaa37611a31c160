"""Federated algorithms, one file each; importing this package registers them all by name."""

import importlib

# Registration order is the report's column order: the paper's baselines, then the proposed method.
MODULES = ("fedit", "fedprox", "local", "fedcluster", "fedsa", "feddpa", "fedrouter")

for _module in MODULES:
    importlib.import_module(f"{__name__}.{_module}")
