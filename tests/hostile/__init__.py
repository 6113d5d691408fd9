"""Hostile-input campaigns: property tests over editions, CSV rows and headers; a broken-file corpus."""
