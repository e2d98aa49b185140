"""The bottom layer: the user-facing error type, atomic file writes, hashes, locks, cache paths, defaults."""
