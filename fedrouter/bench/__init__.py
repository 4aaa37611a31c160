"""`python -m fedrouter.bench`: per-phase times, the four efficiency ratios, scaling, and the server at 1,000 clients."""
