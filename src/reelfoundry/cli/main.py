"""``reelfoundry``: generate locally, serve the platform, and drive it from the shell.

The commands live in one module per group (see :mod:`reelfoundry.cli.app`); this is the console-script entry.
"""

from __future__ import annotations

import os
import sys

from reelfoundry.cli.app import app

__all__ = ["app", "main"]


def main() -> None:
    """Console-script entry point."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    app(prog_name="reelfoundry")
    sys.exit(0)
