"""Routing: which global cluster's adapter a test input goes to (routers.py), and whether any cluster
accepts it at all (openset.py)."""

from fedrouter.routing.openset import (
    FALLBACKS,
    acceptance_scores,
    accepted,
    client_calibration,
    column_order,
    thresholds,
)
from fedrouter.routing.routers import (
    ROUTERS,
    ClientClusters,
    Router,
    RouterOptions,
    register_router,
    route,
    router_named,
)

__all__ = ["FALLBACKS", "ROUTERS", "ClientClusters", "Router", "RouterOptions", "acceptance_scores", "accepted", "client_calibration", "column_order",
           "register_router", "route", "router_named", "thresholds"]
