"""Federated algorithms, one file each; importing this package registers them all by name."""

from fedrouter.algorithms import fedcluster, feddpa, fedit, fedrouter, fedsa, local  # noqa: F401
