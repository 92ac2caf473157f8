"""What the stages and everything around them agree on: topics, record shapes, formats.

Nothing here imports a stage package or ``pipeline``; the stages, the runtime,
the adapters and the tools all import from here.
"""
