"""What the three sources share: destination, PII protection, quarantine, locking, retries, value checks."""
