"""Data: record sources, the built-in pool, train/test and client splits, and prompts."""
