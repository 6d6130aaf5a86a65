"""Entry point: the `driftloop` command (Typer + Rich)."""
