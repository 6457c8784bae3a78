"""Helpers shared by the bench/ scripts (not benchmarks themselves: bench/*.py are)."""
