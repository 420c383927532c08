"""exp package."""
