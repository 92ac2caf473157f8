"""Exit statuses of a worker that stopped itself so that a supervisor restarts it.

Both leave the batches in hand uncommitted: the restarted worker processes them
again (at-least-once), so restarting on them is always safe.
"""

# A batch's outputs or state writes were not acknowledged (refused, or not within the
# delivery timeout).
EXIT_UNDELIVERED = 70
# A partition the worker held had records waiting and stopped moving (pipeline.runtime.stallwatch).
EXIT_STALLED = 71
RESTART_ON = frozenset({EXIT_UNDELIVERED, EXIT_STALLED})
