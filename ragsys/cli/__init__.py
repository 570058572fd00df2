"""The `ragsys` command line; `app` (in `ragsys.cli.app`) is the entry point."""
