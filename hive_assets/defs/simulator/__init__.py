"""The simulator's Dagster side: `InProcessDaemon` plays dagster-daemon's part for `hive loop`."""
