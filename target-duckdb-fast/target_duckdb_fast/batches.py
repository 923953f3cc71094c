"""Per-stream buffer files of raw RECORD lines, and the SQL that stages and upserts them.

Python never parses a record: each RECORD line is appended, as it came, to the stream's JSON-lines file
wrapped as ``{"n": <sequence>, "m": <the message>}``. At a flush DuckDB reads the file with
``read_json`` (record properties as VARCHAR, object/array properties as JSON), casts every value to its
column's type, keeps the last record per primary key and upserts it like target-duckdb 0.8.0 does:
UPDATE the rows whose keys exist, INSERT the others.

Value rules reproduced from target-duckdb (which writes each value to a CSV file that DuckDB COPYs):
- an empty string is NULL (target-duckdb: ``value == 0 or value`` else None; 0 and false stay);
- a string in a JSON column is stored as the JSON text it holds (target-duckdb writes it unquoted),
  except where the property's type is exactly null/object/array (then it is a JSON string);
- _sdc_extracted_at = the message's time_extracted, _sdc_batched_at = one local timestamp per flush,
  _sdc_deleted_at = the record's _sdc_deleted_at.
"""

from __future__ import annotations

import os
import typing as t
from dataclasses import dataclass, field
from pathlib import Path

from target_duckdb_fast.columns import Column, quote
from target_duckdb_fast.tables import Table

#: the wrapper around each buffered RECORD line; ``line`` is the message's bytes without its newline
WRAP = b'{"n":%d,"m":%s}\n'
#: the staged batch's sequence column, dropped after the dedup (no property is likely to be named so)
SEQ = '"__target_duckdb_fast_seq"'


def sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


@dataclass
class StreamBatch:
    """The records of one stream buffered since the last flush."""

    stream: str
    path: Path
    rows: int = 0
    handle: t.BinaryIO | None = field(default=None, repr=False)

    def append(self, seq: int, line: bytes) -> None:
        if self.handle is None:
            self.handle = self.path.open("ab")
        self.handle.write(WRAP % (seq, line))
        self.rows += 1

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()
            self.handle = None

    def discard(self) -> None:
        self.close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        self.rows = 0


def _read_type(column: Column) -> str:
    return "JSON" if column.is_json else "VARCHAR"


def _value(column: Column, raw: str) -> str:
    """The SQL that turns one record value (read as VARCHAR or JSON) into the column's value."""
    if column.is_json:
        if column.dumps_strings:
            return raw
        # a JSON string: its text parsed as JSON (empty: NULL), as target-duckdb's CSV COPY does; text
        # that is no JSON (which DuckDB 1.0 stored unchecked) stays the JSON string rather than failing
        text = f"({raw} ->> '$')"
        return (
            f"CASE WHEN json_type({raw}) <> 'VARCHAR' THEN {raw} WHEN {text} = '' THEN NULL "
            f"ELSE COALESCE(TRY_CAST({text} AS JSON), {raw}) END"
        )
    if column.type == "varchar":
        return f"NULLIF({raw}, '')"
    return f"CAST(NULLIF({raw}, '') AS {column.type.upper()})"


@dataclass(frozen=True)
class Upsert:
    """The statements that load one stream's staged batch into its table."""

    table: Table
    columns: list[Column]
    keys: list[str]
    metadata: bool
    hard_delete: bool

    def _record_columns(self) -> list[Column]:
        """The columns read from the record itself (metadata columns but _sdc_deleted_at come from elsewhere)."""
        skip = {"_sdc_extracted_at", "_sdc_batched_at"} if self.metadata else set()
        return [column for column in self.columns if column.prop not in skip]

    def _select(self, source: str, batched_at: str) -> str:
        """Cast one staged source (n: order, te: time_extracted, r: the record struct) to the columns."""
        values = []
        for column in self.columns:
            if self.metadata and column.prop == "_sdc_extracted_at":
                expr = "CAST(NULLIF(te, '') AS TIMESTAMP)"
            elif self.metadata and column.prop == "_sdc_batched_at":
                expr = f"CAST({sql_string(batched_at)} AS TIMESTAMP)"
            else:
                expr = _value(column, f"r.{quote(column.prop)}")
            values.append(f"{expr} AS {column.sql}")
        typed = f"SELECT {', '.join(values)}, n AS {SEQ} FROM ({source}) AS src"
        if not self.keys:
            return f"SELECT * EXCLUDE ({SEQ}) FROM ({typed}) AS typed"
        keys = ", ".join(quote(key.lower()) for key in self.keys)
        return (
            f"SELECT * EXCLUDE ({SEQ}) FROM ({typed}) AS typed "
            f"QUALIFY row_number() OVER (PARTITION BY {keys} ORDER BY {SEQ} DESC) = 1"
        )

    def _struct(self) -> str:
        fields = ", ".join(f"{quote(c.prop)} {_read_type(c)}" for c in self._record_columns())
        return f"STRUCT({fields})" if fields else "STRUCT(_sdc_none VARCHAR)"

    def stage_messages_sql(self, stage: str, path: Path, batched_at: str) -> str:
        """Stage a buffer file of wrapped RECORD messages."""
        columns = {"n": "BIGINT", "m": f"STRUCT(record {self._struct()}, time_extracted VARCHAR)"}
        source = (
            f"SELECT n, m.record AS r, m.time_extracted AS te FROM read_json({sql_string(str(path))}, "
            f"format = 'newline_delimited', columns = {_struct_literal(columns)})"
        )
        select = self._select(source, batched_at)
        return f"CREATE OR REPLACE TEMP TABLE {quote(stage)} AS {select}"

    def stage_files_sql(self, stage: str, files: list[str], compression: str, batched_at: str) -> str:
        """Stage Singer SDK BATCH files: JSON lines of bare records (no time_extracted), in file order."""
        fields = {c.prop: _read_type(c) for c in self._record_columns()} or {"_sdc_none": "VARCHAR"}
        file_list = "[" + ", ".join(sql_string(f) for f in files) + "]"
        source = (
            f"SELECT row_number() OVER () AS n, CAST(NULL AS VARCHAR) AS te, rec AS r FROM read_json({file_list}, "
            f"format = 'newline_delimited', compression = {sql_string(compression)}, "
            f"columns = {_struct_literal(fields)}) AS rec"
        )
        select = self._select(source, batched_at)
        return f"CREATE OR REPLACE TEMP TABLE {quote(stage)} AS {select}"

    def load_sql(self, stage: str) -> list[str]:
        """UPDATE existing keys, INSERT the rest (no keys: INSERT all), then hard-delete if asked."""
        table = self.table.sql
        names = ", ".join(c.sql for c in self.columns)
        statements = []
        if self.keys:
            key_names = [quote(key.lower()) for key in self.keys]
            match = " AND ".join(f"t.{k} = s.{k}" for k in key_names)
            others = [c.sql for c in self.columns if c.name not in {k.lower() for k in self.keys}]
            if others:
                sets = ", ".join(f"{c} = s.{c}" for c in others)
                statements.append(f"UPDATE {table} AS t SET {sets} FROM {quote(stage)} AS s WHERE {match}")
            statements.append(
                f"INSERT INTO {table} ({names}) SELECT {names} FROM {quote(stage)} AS s "
                f"WHERE NOT EXISTS (SELECT 1 FROM {table} AS t WHERE {match})"
            )
        else:
            statements.append(f"INSERT INTO {table} ({names}) SELECT {names} FROM {quote(stage)}")
        if self.hard_delete:
            statements.append(f"DELETE FROM {table} WHERE _sdc_deleted_at IS NOT NULL")
        statements.append(f"DROP TABLE {quote(stage)}")
        return statements


def _struct_literal(fields: dict[str, str]) -> str:
    """A DuckDB struct literal {'name': 'TYPE', ...} for read_json's columns parameter."""
    return "{" + ", ".join(f"{sql_string(name)}: {sql_string(kind)}" for name, kind in fields.items()) + "}"
