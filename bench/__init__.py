"""Benchmarks: Revloop and its peers against the local sandboxes (not part of ``make test``)."""
