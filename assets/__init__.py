"""Dagster: the one code location (``assets.definitions``) with ingestion, transformation, flows and checks."""
