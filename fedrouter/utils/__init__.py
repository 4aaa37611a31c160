"""Small shared utilities: atomic file writes, derived seeds, logging, phase timings."""
