"""The ``claims`` command: one module per command group, put together in :mod:`.main`."""
