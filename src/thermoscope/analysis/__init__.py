"""Stateless analysis functions on temperature arrays (no I/O, no configuration objects)."""
