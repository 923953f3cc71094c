"""Load the cost-center mapping (a CSV finance keeps) into the warehouse as ``<schema>.cost_centers``.

    freshbooks-looker cost-centers --csv cost_centers.csv --duckdb output/warehouse.duckdb
    freshbooks-looker cost-centers --csv cost_centers.csv --postgres "$DSN"

The CSV has a header and four columns (any order, more columns are an error):

``account_id``   FreshBooks account id the key belongs to
``source``       ``client``, ``project`` or ``service``
``source_key``   client id (userid), project id, or item / service name (as on the invoice line)
``cost_center``  the cost center's name

The LookML reads it when the manifest constant ``COST_CENTER_TABLE`` is ``cost_centers``, taking
the rows whose ``source`` is ``COST_CENTER_SOURCE``. Each load replaces the table in one
transaction (the CSV is the source of truth); a table of that name with other columns is not
ours and is left alone (error). A key mapped twice, an unknown source or an empty field fails
the load with the line numbers, and nothing is written.
"""

from __future__ import annotations

import argparse
import csv
import re
from pathlib import Path

from .extras import needs

COLUMNS = ("account_id", "source", "source_key", "cost_center")
SOURCES = ("client", "project", "service")
TABLE = "cost_centers"
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class MappingError(Exception):
    pass


def read_csv(path: Path | str) -> list[tuple[str, str, str, str]]:
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        header = [h.strip() for h in reader.fieldnames or []]
        if sorted(header) != sorted(COLUMNS):
            raise MappingError(
                f"{path}: the header must be exactly {', '.join(COLUMNS)} (got {', '.join(header) or 'nothing'})"
            )
        rows: list[tuple[str, str, str, str]] = []
        problems: list[str] = []
        seen: dict[tuple[str, str, str], int] = {}
        for line, raw in enumerate(reader, start=2):
            rec = {k.strip(): (v or "").strip() for k, v in raw.items() if k is not None}
            if None in raw:
                problems.append(f"line {line}: more fields than the header")
                continue
            empty = [c for c in COLUMNS if not rec.get(c)]
            if empty:
                problems.append(f"line {line}: empty {', '.join(empty)}")
                continue
            source = rec["source"].lower()
            if source not in SOURCES:
                problems.append(f"line {line}: source {rec['source']!r} is not one of {', '.join(SOURCES)}")
                continue
            key = (rec["account_id"], source, rec["source_key"])
            if key in seen:
                problems.append(
                    f"line {line}: {source} {rec['source_key']!r} of account {rec['account_id']} "
                    f"is already mapped on line {seen[key]}"
                )
                continue
            seen[key] = line
            rows.append((rec["account_id"], source, rec["source_key"], rec["cost_center"]))
    if problems:
        shown = "; ".join(problems[:10]) + (f"; and {len(problems) - 10} more" if len(problems) > 10 else "")
        raise MappingError(f"{path}: {shown}. Nothing was loaded.")
    return rows


def _ddl(schema: str) -> str:
    return (
        f"CREATE TABLE {schema}.{TABLE} (account_id VARCHAR NOT NULL, source VARCHAR NOT NULL, "
        "source_key VARCHAR NOT NULL, cost_center VARCHAR NOT NULL, "
        "PRIMARY KEY (account_id, source, source_key))"
    )


def _refuse_foreign(existing: list[str], schema: str) -> None:
    if existing and sorted(existing) != sorted(COLUMNS):
        raise MappingError(
            f"{schema}.{TABLE} exists with other columns ({', '.join(existing)}): "
            "not replacing a table this command did not create"
        )


def load(
    rows: list[tuple[str, str, str, str]],
    *,
    duckdb: str | None = None,
    postgres: str | None = None,
    schema: str = "freshbooks",
) -> int:
    """Replace ``<schema>.cost_centers`` with ``rows`` in one transaction; returns the row count."""
    if not _IDENT.match(schema):
        raise MappingError(f"schema {schema!r} is not a plain identifier")
    columns_sql = (
        "SELECT column_name FROM information_schema.columns "
        f"WHERE table_schema = '{schema}' AND table_name = '{TABLE}'"
    )
    if duckdb:
        with needs("duckdb", "cost-centers --duckdb"):
            import duckdb as ddb  # noqa: PLC0415 - optional extra, only when a DuckDB file is given

        con = ddb.connect(str(duckdb))
        try:
            con.execute("BEGIN")
            _refuse_foreign([r[0] for r in con.execute(columns_sql).fetchall()], schema)
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
            con.execute(f"DROP TABLE IF EXISTS {schema}.{TABLE}")
            con.execute(_ddl(schema))
            if rows:
                con.executemany(f"INSERT INTO {schema}.{TABLE} VALUES (?, ?, ?, ?)", rows)
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise
        finally:
            con.close()
        return len(rows)
    if postgres:
        with needs("postgres", "cost-centers --postgres"):
            import psycopg  # noqa: PLC0415 - optional extra, only when a PostgreSQL DSN is given

        with psycopg.connect(postgres) as pg:  # one transaction: committed on success only
            _refuse_foreign([r[0] for r in pg.execute(columns_sql).fetchall()], schema)
            pg.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
            pg.execute(f"DROP TABLE IF EXISTS {schema}.{TABLE}")
            pg.execute(_ddl(schema))
            with pg.cursor() as cur, cur.copy(f"COPY {schema}.{TABLE} FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        return len(rows)
    raise MappingError("give --duckdb FILE or --postgres DSN")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--csv", required=True, help="mapping CSV: account_id, source, source_key, cost_center"
    )
    parser.add_argument("--duckdb", help="DuckDB warehouse file")
    parser.add_argument("--postgres", help="PostgreSQL DSN")
    parser.add_argument("--schema", default="freshbooks")


def run(args: argparse.Namespace) -> int:
    try:
        n = load(read_csv(args.csv), duckdb=args.duckdb, postgres=args.postgres, schema=args.schema)
    except (MappingError, OSError) as exc:
        print(f"cost-centers: {exc}")
        return 2
    print(
        f"cost-centers: {n} mapping(s) loaded into {args.schema}.{TABLE}; set the LookML constant "
        f"COST_CENTER_TABLE to {TABLE} (and COST_CENTER_SOURCE to the source you mapped)"
    )
    return 0
