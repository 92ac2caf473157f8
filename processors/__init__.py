"""Processors: the pure rules of each pipeline stage, and the thin agents that run them."""
