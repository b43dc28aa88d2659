"""Keeping a replica's index current: snapshots and permit changes from Redis (or snapshot
files), our own Redis where none is configured, and the loader's feed statuses."""
