"""Operating and repairing stsync: `stsync health` and its `--heal`, the checkpoints (`state`), the run history
(`logs`, `stats`)."""
