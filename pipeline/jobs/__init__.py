"""Whole-flow jobs: the demo, the dry-run check, the benchmark and crash injection."""
