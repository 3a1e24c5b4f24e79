"""Reverse ETL: intended writes recorded in an outbox, delivered at least once and applied exactly once."""
