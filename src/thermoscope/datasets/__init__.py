"""Datasets: synthetic thermal scenes (and, later, versioned ground-truth libraries)."""
