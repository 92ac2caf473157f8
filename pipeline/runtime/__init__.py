"""The stage runtime: faust app, stage runner, worker processes, dead letters, metrics."""
