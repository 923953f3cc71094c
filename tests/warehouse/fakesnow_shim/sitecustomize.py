"""Test-only: run the real target-snowflake against a fakesnow server
(tests/warehouse/test_snowflake_fakesnow.py).

That test puts this directory on the loader venv's path (a .pth line, inert without
FAKESNOW_TEST_URL); it acts only in a ``target-snowflake`` process with FAKESNOW_TEST_URL set.
It changes two things, nothing else:

1. Where the connector connects: target-snowflake has no host/port/protocol settings, and
   snowflake-sqlalchemy refuses ``host:port`` in ``account``, so ``SnowflakeConnection.connect``
   gets host, port and protocol from FAKESNOW_TEST_URL, and a current schema.
2. The user stage (``@~``), which fakesnow 0.12.1 cannot take (measured by
   test_fakesnow_refuses_the_user_stage_path): the loader's own batch files (JSON lines, gzip)
   are inserted into a staging table instead of ``PUT`` to ``@~``; the loader's own MERGE runs
   with its source ``'@~/target-snowflake/<sync>'(file_format => ...)`` replaced by that table,
   ``$1`` by the table's VARIANT column, ``SEQ8()`` by the file order, and the dedup's
   ``PARTITION BY <key aliases>`` by the aliased expressions (fakesnow turns alias references in
   QUALIFY into a LATERAL join DuckDB refuses inside MERGE); ``REMOVE`` deletes the rows;
   ``DROP FILE FORMAT`` (a sink's cleanup) is skipped. Every other statement (CREATE
   SCHEMA/TABLE, ALTER, CREATE FILE FORMAT, the MERGE's casts, dedup, ON, UPDATE and INSERT) is
   the loader's, unmodified.
"""

# A start-up hook inert in every other process: it imports only inside the target-snowflake process
# it patches (PLC0415), and it replaces the loader's private MERGE statement builder (SLF001).
# ruff: noqa: PLC0415, SLF001

import os
import sys

_URL = os.environ.get("FAKESNOW_TEST_URL")
_ARGV = getattr(sys, "orig_argv", None) or sys.argv
STAGE_TABLE = "TARGET_SNOWFLAKE_STAGE"


def _install() -> None:
    import gzip
    import json
    from urllib.parse import urlparse, urlsplit

    import snowflake.connector.connection as sf_connection
    from sqlalchemy import text
    from target_snowflake.connector import SnowflakeConnector

    parts = urlsplit(_URL)
    original_connect = sf_connection.SnowflakeConnection.connect

    def connect(self, **kwargs):
        kwargs.update(host=parts.hostname, port=parts.port, protocol=parts.scheme)
        # fakesnow's MERGE creates an unqualified helper table, so the session needs a current
        # schema (the loader's URL names only the database); Snowflake users often set one too
        kwargs.setdefault("schema", os.environ.get("FAKESNOW_TEST_SCHEMA", "FRESHBOOKS"))
        return original_connect(self, **kwargs)

    sf_connection.SnowflakeConnection.connect = connect

    def stage_table(connector: SnowflakeConnector) -> str:
        return f"{connector.config['default_target_schema']}.{STAGE_TABLE}"

    def put_batches_to_stage(self, sync_id, files):
        table = stage_table(self)
        rows = []
        for file_uri in files:
            path = urlparse(file_uri).path
            opener = gzip.open if path.endswith(".gz") else open
            with opener(path, "rt", encoding="utf-8") as fh:
                rows += [json.dumps(json.loads(line)) for line in fh if line.strip()]
        with self._connect() as conn, conn.begin():
            conn.execute(
                text(f"create table if not exists {table} (sync_id varchar, seq integer, v variant)")
            )
            for start in range(0, len(rows), 200):  # one statement per 200 rows (fakesnow parses each)
                chunk = rows[start : start + 200]
                values = ", ".join(f"(:s, {start + i + 1}, :v{i})" for i in range(len(chunk)))
                conn.execute(
                    text(
                        f"insert into {table} select column1, column2, parse_json(column3) from values {values}"
                    ),
                    {"s": sync_id, **{f"v{i}": row for i, row in enumerate(chunk)}},
                )

    def _get_merge_from_stage_statement(self, full_table_name, schema, sync_id, file_format, key_properties):
        statement, kwargs = original_merge(
            self, full_table_name, schema, sync_id, file_format, key_properties
        )
        sql = statement.text
        source = f"from '@~/target-snowflake/{sync_id}'(file_format => {file_format})"
        for old in (source, "$1:", "ORDER BY SEQ8() DESC"):
            if old not in sql:
                raise RuntimeError(
                    f"fakesnow shim: the loader's MERGE no longer contains {old!r}: {sql[:400]}"
                )
        sql = (
            sql.replace(source, f"from (select v, seq from {stage_table(self)} where sync_id = '{sync_id}')")
            .replace("$1:", "v:")
            .replace("ORDER BY SEQ8() DESC", "ORDER BY seq DESC")
        )
        # fakesnow runs QUALIFY's window on the select list's aliases as a LATERAL reference,
        # which DuckDB refuses inside MERGE ... USING: partition by the aliased expressions
        by_alias = {
            c["clean_alias"]: f"v:{c['clean_property_name']}::{c['sql_type']}"
            for c in self._get_column_selections(schema)
        }
        keys = [self.format_identifier(k, safe=True) for k in key_properties]
        partition = f"PARTITION BY {', '.join(keys)} ORDER BY"
        if partition not in sql:
            raise RuntimeError(f"fakesnow shim: the loader's MERGE no longer contains {partition!r}")
        sql = sql.replace(partition, f"PARTITION BY {', '.join(by_alias[k] for k in keys)} ORDER BY")
        return text(sql), kwargs

    def remove_staged_files(self, sync_id):
        with self._connect() as conn, conn.begin():
            conn.execute(text(f"delete from {stage_table(self)} where sync_id = :s"), {"s": sync_id})

    def drop_file_format(self, file_format):
        """fakesnow 0.12.1 cannot parse DROP FILE FORMAT: the sink's cleanup is skipped."""

    original_merge = SnowflakeConnector._get_merge_from_stage_statement
    SnowflakeConnector.drop_file_format = drop_file_format
    SnowflakeConnector.put_batches_to_stage = put_batches_to_stage
    SnowflakeConnector._get_merge_from_stage_statement = _get_merge_from_stage_statement
    SnowflakeConnector.remove_staged_files = remove_staged_files


if _URL and any(os.path.basename(arg) == "target-snowflake" for arg in _ARGV[:3]):
    _install()
