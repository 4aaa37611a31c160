"""Client-level differential privacy: clipping and noise (mechanism), the accountant (accounting, through
Flower's RdpAccountant), the two halves (client, server), and the leak measurement (attacks)."""
