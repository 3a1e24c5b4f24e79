"""Runs the open-source extractors people would otherwise pick (Airbyte sources, Singer taps) against the sandboxes."""
