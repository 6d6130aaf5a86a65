"""drift layer."""
