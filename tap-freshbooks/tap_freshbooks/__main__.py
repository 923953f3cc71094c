"""`python -m tap_freshbooks` = the `tap-freshbooks` console script."""

from tap_freshbooks.cli import cli

cli()
