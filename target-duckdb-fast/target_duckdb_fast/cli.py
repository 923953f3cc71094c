"""`target-duckdb-fast --config FILE < singer-messages`: errors end as one line on stderr and exit 1."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import typing as t

import duckdb

from target_duckdb_fast import __version__
from target_duckdb_fast.loader import Loader, LoaderError, connect, first_line
from target_duckdb_fast.settings import ConfigError, load_settings, read_config_file

LOG = logging.getLogger("target_duckdb_fast")

ABOUT = {
    "name": "target-duckdb-fast",
    "version": __version__,
    "description": "Singer target for DuckDB: the tables target-duckdb 0.8.0 makes, loaded by DuckDB itself",
    "settings": [
        "filepath",
        "path",
        "default_target_schema",
        "schema_mapping",
        "add_metadata_columns",
        "hard_delete",
        "batch_size_rows",
        "primary_key_required",
        "temp_dir",
        "settings",
        "token",
        "database",
        "dbname",
        "data_flattening_max_level",
        "validate_records",
        "max_batch_age_seconds",
    ],
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="target-duckdb-fast", description=__doc__)
    parser.add_argument("-c", "--config", help="JSON config file (target-duckdb's settings)")
    parser.add_argument("--about", action="store_true", help="print what this target is and its settings")
    parser.add_argument("--format", default="json", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.about:
        print(json.dumps(ABOUT, indent=2))
        return
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    secrets: list[str] = []
    try:
        _load(args.config, secrets)
    except ConfigError as exc:
        _fail(f"{exc} (fix the --config file)", secrets)
    except LoaderError as exc:
        _fail(str(exc), secrets)
    except duckdb.Error as exc:
        _fail(f"DuckDB failed: {first_line(exc)}", secrets)
    except OSError as exc:
        _fail(f"{exc} (check temp_dir and the database path)", secrets)


def _load(config_path: str | None, secrets: list[str]) -> None:
    settings = load_settings(read_config_file(config_path))
    if settings.token:
        secrets.append(settings.token)
    try:
        conn = connect(settings)
    except duckdb.Error as exc:
        raise LoaderError(f"cannot open the DuckDB database {settings.path}: {first_line(exc)}") from None
    try:
        Loader(settings, conn, sys.stdout.buffer).run(sys.stdin.buffer)
    finally:
        conn.close()


def _fail(message: str, secrets: list[str]) -> t.NoReturn:
    """One line on stderr (the MotherDuck token, which DuckDB may quote with the path, masked); exit 1."""
    for secret in secrets:
        message = message.replace(secret, "<token>")
    sys.stderr.write(f"target-duckdb-fast: {message}\n")
    sys.exit(1)


if __name__ == "__main__":
    main()
