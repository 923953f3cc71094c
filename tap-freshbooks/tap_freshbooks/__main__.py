"""`python -m tap_freshbooks` = the `tap-freshbooks` console script."""

from tap_freshbooks.tap import cli

cli()
