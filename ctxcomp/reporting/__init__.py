"""Token and cost reporting."""
