"""What people read: outcomes, dashboard, rework queue, replays, exports, analyst tables."""
