"""soak package."""
