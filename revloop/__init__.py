"""revloop package."""
