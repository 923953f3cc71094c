"""Connections to the warehouses the checker and the drift report read (DuckDB file, PostgreSQL
DSN), and the PostgreSQL ``timestamptz`` conversion. The drivers are optional extras
(``freshbooks-looker[duckdb]`` / ``[postgres]``), imported only when a warehouse of that kind is
given.

DuckDB is opened read-only through ``ATTACH ... AS fbwh``: the pipeline writes
a file named like ``freshbooks.duckdb`` has a catalog also called ``freshbooks``, and ``freshbooks.invoices``
would otherwise be ambiguous between the catalog and the schema of the same name.
"""

from __future__ import annotations

import types
import typing as t
from pathlib import Path

from .dialects import Dialect
from .extras import needs

Row = tuple[t.Any, ...]


class Warehouse:
    engine: str
    dialect: Dialect

    def query(self, sql: str) -> list[Row]:
        raise NotImplementedError

    def columns(self, schema: str) -> dict[str, dict[str, str]]:
        """{table: {column: data_type}} for every table in the schema."""
        rows = self.query(
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            f"WHERE table_schema = '{schema}'" + self._catalog_filter()
        )
        out: dict[str, dict[str, str]] = {}
        for table, column, dtype in rows:
            out.setdefault(table, {})[column] = dtype
        return out

    def _catalog_filter(self) -> str:
        return ""

    def close(self) -> None:
        pass

    def __enter__(self) -> Warehouse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class DuckDBWarehouse(Warehouse):
    engine = "duckdb"

    def __init__(self, path: str | Path):
        with needs("duckdb", "a DuckDB warehouse (--duckdb)"):
            import duckdb  # noqa: PLC0415 - optional extra, only when a DuckDB file is given

        self.path = str(path)
        self.dialect = Dialect("duckdb")
        self.con = duckdb.connect()
        self.con.execute(f"ATTACH '{self.path}' AS fbwh (READ_ONLY)")
        self.con.execute("USE fbwh")
        self.con.execute("SET TimeZone = 'UTC'")

    def _catalog_filter(self) -> str:
        return " AND table_catalog = 'fbwh'"

    def query(self, sql: str) -> list[Row]:
        return self.con.execute(sql).fetchall()

    def close(self) -> None:
        self.con.close()


class PostgresWarehouse(Warehouse):
    engine = "postgres"

    def __init__(self, dsn: str):
        psycopg = _psycopg()

        self.dsn = dsn
        self.dialect = Dialect("postgres")
        self.con = psycopg.connect(dsn, autocommit=True)
        self.con.execute("SET TIME ZONE 'UTC'")
        self.con.execute("SET statement_timeout = '60s'")

    def query(self, sql: str) -> list[Row]:
        with self.con.cursor() as cur:
            cur.execute(sql)
            return cur.fetchall() if cur.description else []

    def close(self) -> None:
        self.con.close()


def connect(duckdb: str | Path | None = None, postgres: str | None = None) -> Warehouse:
    if duckdb:
        return DuckDBWarehouse(duckdb)
    if postgres:
        return PostgresWarehouse(postgres)
    raise ValueError("give a DuckDB file or a PostgreSQL DSN")


def convert_timestamps_to_timestamptz(
    dsn: str, schema: str = "freshbooks", log: t.Callable[[str], None] = print
) -> list[str]:
    """Turn every ``timestamp without time zone`` column of the schema into ``timestamptz``.

    target-postgres 0.8.1 creates ``date-time`` columns as ``timestamp without time zone``; the
    values are UTC (the tap emits UTC). Run after each load (idempotent; it only touches columns
    a run created): ``ALTER COLUMN ... TYPE timestamptz USING col AT TIME ZONE 'UTC'``.
    target-postgres leaves an existing timestamptz column alone (SQLAlchemy compares both as
    TIMESTAMP) and keeps inserting UTC values into it, provided the loader's session time zone is
    UTC (the PostgreSQL default on managed services; set it with
    ``ALTER ROLE <loader> SET timezone = 'UTC'`` otherwise). Redshift cannot alter column types:
    there, keep the connection's Database Time Zone at UTC instead.
    """
    changed = []
    with _psycopg().connect(dsn, autocommit=True) as con:
        con.execute("SET TIME ZONE 'UTC'")
        rows = con.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = %s AND data_type = 'timestamp without time zone' "
            "ORDER BY table_name, ordinal_position",
            (schema,),
        ).fetchall()
        by_table: dict[str, list[str]] = {}
        for table, column in rows:
            by_table.setdefault(table, []).append(column)
        for table, cols in by_table.items():
            alters = ", ".join(
                f'ALTER COLUMN "{c}" TYPE timestamptz USING "{c}" AT TIME ZONE \'UTC\'' for c in cols
            )
            con.execute(f'ALTER TABLE "{schema}"."{table}" {alters}')
            changed += [f"{table}.{c}" for c in cols]
            log(f"timestamptz: {schema}.{table}: {', '.join(cols)}")
    return changed


def postgres_dialect(dsn: str) -> Dialect:
    """PostgreSQL or Redshift (which speaks its protocol), from the server's ``version()``."""
    with _psycopg().connect(dsn, autocommit=True, connect_timeout=30) as con:
        row = con.execute("SELECT version()").fetchone()
    return Dialect("redshift" if row and "redshift" in str(row[0]).lower() else "postgres")


def is_transient(exc: BaseException) -> bool:
    """A PostgreSQL error that can pass (server unreachable, connection lost): worth a retry."""
    try:
        psycopg = _psycopg()
    except ImportError:  # no postgres extra: the error is not psycopg's
        return False
    return isinstance(exc, psycopg.OperationalError)


def _psycopg() -> types.ModuleType:
    with needs("postgres", "a PostgreSQL warehouse (--postgres / postgres_dsn)"):
        import psycopg  # noqa: PLC0415 - optional extra, only when a PostgreSQL DSN is given
    return psycopg
