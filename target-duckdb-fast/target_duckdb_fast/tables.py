"""Where a stream's table lives and how its DDL follows the stream's schema (target-duckdb 0.8.0's rules).

- Stream name ``a-b``: schema part ``a``, table ``b``; ``a-b-c-d``: catalog part ``a`` (ignored), schema
  part ``b``, table ``c_d``; no dash: the whole name is the table. The schema part picks the target schema
  through ``schema_mapping``; otherwise ``default_target_schema``.
- The table name is lower-cased with ``.`` and ``-`` turned into ``_``; it lives in
  ``"<catalog>"."<schema>"`` (catalog: the file's name without extension, or database/dbname).
- A new table: every column, then ``PRIMARY KEY (<key_properties lower-cased>)`` if there are keys.
- An existing table: missing columns are added at the end (in column order); a column whose type
  changed is renamed ``<name>_<YYYYmmdd_HHMM>`` (local time) and added again at the end with the new
  type. Columns the schema no longer has stay.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import duckdb

from target_duckdb_fast.columns import Column, quote
from target_duckdb_fast.settings import Settings

LOG = logging.getLogger("target_duckdb_fast")


class TableError(Exception):
    """The stream cannot be given a table (no target schema for it)."""


@dataclass(frozen=True)
class Table:
    catalog: str
    schema: str
    name: str

    @property
    def sql(self) -> str:
        parts = [self.catalog, self.schema, self.name] if self.catalog else [self.schema, self.name]
        return ".".join(quote(part) for part in parts)

    @property
    def schema_sql(self) -> str:
        return f"{quote(self.catalog)}.{quote(self.schema)}" if self.catalog else quote(self.schema)


def split_stream_name(stream: str) -> tuple[str | None, str]:
    """(schema part, table part) of a stream name, as target-duckdb's stream_name_to_dict splits it."""
    parts = stream.split("-")
    if len(parts) == 2:
        return parts[0], parts[1]
    if len(parts) > 2:
        return parts[1], "_".join(parts[2:])
    return None, stream


def stream_table(settings: Settings, stream: str) -> Table:
    schema_part, table_part = split_stream_name(stream)
    schema = settings.target_schema(schema_part)
    if not schema:
        raise TableError(
            f"no target schema for stream {stream!r}: set 'default_target_schema' or map "
            f"{schema_part!r} in 'schema_mapping'"
        )
    name = table_part.replace(".", "_").replace("-", "_").lower()
    return Table(settings.catalog, schema, name)


def _existing_columns(conn: duckdb.DuckDBPyConnection, table: Table) -> dict[str, str] | None:
    """{lower-cased column name: lower-cased type} of the table, or None when it does not exist."""
    found = conn.execute(
        "SELECT count(*) FROM information_schema.tables "
        "WHERE table_catalog = ? AND table_schema = ? AND lower(table_name) = ?",
        [table.catalog, table.schema, table.name],
    ).fetchone()
    if not found or not found[0]:
        return None
    rows = conn.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_catalog = ? AND lower(table_schema) = ? AND lower(table_name) = ? "
        "ORDER BY ordinal_position",
        [table.catalog, table.schema.lower(), table.name],
    ).fetchall()
    return {str(name).lower(): str(kind).lower() for name, kind in rows}


def create_table_sql(table: Table, columns: list[Column], keys: list[str]) -> str:
    parts = [f"{column.sql} {column.type}" for column in columns]
    if keys:
        parts.append("PRIMARY KEY ({})".format(", ".join(quote(key.lower()) for key in keys)))
    return f"CREATE TABLE IF NOT EXISTS {table.sql} ({', '.join(parts)})"


def sync_table(conn: duckdb.DuckDBPyConnection, table: Table, columns: list[Column], keys: list[str]) -> None:
    """Create the schema and the table, or bring an existing table's columns up to the stream's schema."""
    conn.execute(f"CREATE SCHEMA IF NOT EXISTS {table.schema_sql}")
    existing = _existing_columns(conn, table)
    if existing is None:
        sql = create_table_sql(table, columns, keys)
        LOG.info("creating table %s", table.sql)
        conn.execute(sql)
        return
    for column in columns:
        if column.name not in existing:
            LOG.info("adding column %s %s to %s", column.sql, column.type, table.sql)
            conn.execute(f"ALTER TABLE {table.sql} ADD COLUMN {column.sql} {column.type}")
    for column in columns:
        if column.name in existing and existing[column.name] != column.type:
            versioned = f"{column.name}_{time.strftime('%Y%m%d_%H%M')}"
            LOG.info(
                "column %s of %s changes type %s -> %s: renaming the old one to %s",
                column.sql,
                table.sql,
                existing[column.name],
                column.type,
                quote(versioned),
            )
            conn.execute(f"ALTER TABLE {table.sql} RENAME COLUMN {column.sql} TO {quote(versioned)}")
            conn.execute(f"ALTER TABLE {table.sql} ADD COLUMN {column.sql} {column.type}")
