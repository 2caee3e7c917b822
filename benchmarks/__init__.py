"""Benchmarks: speed and memory targets, measured, never asserted in tests (the machine is shared)."""
