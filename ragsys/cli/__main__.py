"""`python -m ragsys.cli ...` runs the same command line as `ragsys ...`."""

from ragsys.cli.app import main

main()
