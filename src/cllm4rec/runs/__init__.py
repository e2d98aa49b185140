"""The run folder format that training writes and serving reads: typed config, checkpoints, ID catalogue."""
