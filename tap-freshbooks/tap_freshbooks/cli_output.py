"""What the `tap-freshbooks` command line says around the SDK's Singer CLI.

- the `--help` epilog that names the subcommands (`auth login`, `reconcile`);
- the fatal line itself: plain text, or a JSON log line when structured logging is on
  (``SINGER_SDK_LOG_CONFIG`` with the SDK's ``StructuredFormatter``, which is what Meltano sets up
  for a plugin with the ``structured-logging`` capability).
"""

from __future__ import annotations

import logging
import sys
import typing as t

import click
from singer_sdk.logging import StructuredFormatter

PROG = "tap-freshbooks"

#: shown under the SDK's options by `tap-freshbooks --help` (\b keeps click from re-wrapping)
HELP_EPILOG = """\
Subcommands:

\b
  tap-freshbooks auth login [--config FILE|ENV] [--paste]
      Authorize with FreshBooks (OAuth) and write the encrypted token store.
  tap-freshbooks reconcile --config FILE|ENV --warehouse URL [...]
      Compare the warehouse with a fresh read of FreshBooks (changes no state).

Each has its own --help. Settings: tap-freshbooks --about.
"""


def structured_logging_on() -> bool:
    """True when the root logger writes JSON (the SDK's StructuredFormatter)."""
    return any(isinstance(h.formatter, StructuredFormatter) for h in logging.getLogger().handlers)


def fail(message: str, code: int) -> t.NoReturn:
    """Exit with one line: ``tap-freshbooks: <message>``, or one JSON error log line."""
    message = " ".join(message.split())
    if structured_logging_on():
        logging.getLogger(PROG).error(message, extra={"exit_code": code})
    else:
        click.echo(f"{PROG}: {message}", err=True)
    sys.exit(code)
