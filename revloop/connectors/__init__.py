"""Authenticated clients for the three outside systems, built on their real client libraries."""
