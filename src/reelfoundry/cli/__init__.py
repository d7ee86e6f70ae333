"""The ``reelfoundry`` command line (Typer + Rich)."""
