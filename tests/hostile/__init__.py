"""Hostile input: property tests (editions, CSV rows, headers) and a broken-file corpus."""
