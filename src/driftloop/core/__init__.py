"""Core: the config spec, errors, the clock and shared types. Imports nothing else of driftloop."""
