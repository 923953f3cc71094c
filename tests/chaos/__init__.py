"""Chaos suite: faults injected into the real pipeline, then "exactly once" checked (README: tests)."""
