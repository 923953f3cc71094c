"""What the `tap-freshbooks` command line says around the SDK's Singer CLI.

- the `--help` epilog that names the subcommands (`auth login`, `reconcile`);
- `--config` files checked before the SDK reads them, so a missing or broken file is one line
  instead of an SDK traceback;
- the fatal line itself: plain text, or a JSON log line when structured logging is on
  (``SINGER_SDK_LOG_CONFIG`` with the SDK's ``StructuredFormatter``, which is what Meltano sets up
  for a plugin with the ``structured-logging`` capability).
"""

from __future__ import annotations

import json
import logging
import sys
import typing as t
from pathlib import Path

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


def config_paths(argv: t.Sequence[str]) -> list[str]:
    """The values of every ``--config X`` / ``--config=X`` in ``argv``."""
    paths: list[str] = []
    args = list(argv)
    for i, arg in enumerate(args):
        if arg == "--config" and i + 1 < len(args):
            paths.append(args[i + 1])
        elif arg.startswith("--config="):
            paths.append(arg.split("=", 1)[1])
    return paths


def config_file_problem(path: str) -> str | None:
    """Why ``path`` cannot be the tap's config file, in one line; None when it can (or is ENV)."""
    if path == "ENV":
        return None
    file = Path(path)
    hint = "give --config a JSON file, or ENV to read TAP_FRESHBOOKS_* variables"
    if not file.exists():
        return f"config file not found: {path} ({hint})"
    if not file.is_file():
        return f"config file is not a file: {path} ({hint})"
    try:
        content = json.loads(file.read_text(encoding="utf-8"))
    except OSError as exc:
        return f"cannot read config file {path}: {exc.strerror or exc}"
    except ValueError as exc:
        return f"config file {path} is not valid JSON: {exc}"
    if not isinstance(content, dict):
        return f'config file {path} must hold a JSON object like {{"client_id": "..."}}'
    return None
