"""Target writers against the sandboxes, through the real client libraries."""
