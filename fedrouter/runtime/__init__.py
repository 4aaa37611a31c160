"""Flower wiring: the ClientApp and ServerApp, the in-process simulation, the server's view of clients, client-private state."""
