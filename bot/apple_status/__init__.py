"""apple_status."""
