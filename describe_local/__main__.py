"""``python -m describe_local`` runs the command-line interface."""

from describe_local.cli import main

raise SystemExit(main())
