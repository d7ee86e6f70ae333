"""``python -m reelfoundry`` runs the CLI."""

from reelfoundry.cli.main import main

main()
