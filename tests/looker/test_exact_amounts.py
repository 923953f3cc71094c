"""Exact money in the LookML measures (issue 12 point 7): FreshBooks amounts carry up to 27
decimals; the measures must add them without rounding, per dialect (manifest constant
DECIMAL_TYPE), on real databases.

* DuckDB: a copy of the warehouse the real pipeline loaded, plus 2,000 invoices (4,000 lines)
  inserted in the test currency XTS with 27-decimal amounts; Total Invoiced and Line Revenue are
  queried together (the lines fan out the invoices) through the LookML.
* PostgreSQL (embedded, real server): the same rows in tables typed as target-postgres types them
  (money `numeric`, ids text, timestamps `timestamp`), the same LookML queries.
* DuckDB's limit, measured: a sum is exact while its absolute value stays below about 1.7e11
  (DECIMAL(38,27) sums in a 128-bit integer), and beyond that the query fails; it never rounds.
"""

from __future__ import annotations

import random
import shutil
from decimal import Decimal, localcontext
from pathlib import Path

import duckdb
import psycopg
import pytest
from embedded_pg import EmbeddedPostgres

from freshbooks_looker.check import Checker
from freshbooks_looker.sqlgen import Dialect
from freshbooks_looker.warehouse import DuckDBWarehouse, PostgresWarehouse

LOOKER_DIR = Path(__file__).resolve().parents[2] / "looker"

INVOICES, LINES_PER_INVOICE = 2000, 2
FIELDS = ["invoices.total_invoiced", "invoice_lines.total_line_revenue"]


def amount(rng: random.Random) -> str:
    """Up to 7 integer digits and exactly 27 decimals, as FreshBooks sends them."""
    return f"{rng.randint(0, 10**7)}.{rng.randint(0, 10**27 - 1):027d}"


@pytest.fixture(scope="module")
def rows():
    rng = random.Random(27)
    invoices = [(f"xts-{i}", amount(rng)) for i in range(INVOICES)]
    lines = [
        (inv_id, f"{inv_id}-{n}", amount(rng)) for inv_id, _ in invoices for n in range(LINES_PER_INVOICE)
    ]
    with localcontext() as ctx:
        ctx.prec = 80
        expected = (sum(Decimal(a) for _, a in invoices), sum(Decimal(a) for *_, a in lines))
        rounded10 = sum(Decimal(a).quantize(Decimal("1e-10")) for _, a in invoices)
    assert rounded10 != expected[0]  # the old DECIMAL(38,10) cast would not have given this
    return invoices, lines, expected


def measures(checker: Checker, currency: str = "XTS") -> tuple[Decimal, Decimal]:
    got = checker.query("invoices", FIELDS, filters={"invoices.currency_code": currency})
    assert len(got) == 1, got
    return got[0]["invoices.total_invoiced"], got[0]["invoice_lines.total_line_revenue"]


@pytest.fixture(scope="module")
def duckdb_copy(duckdb_load, tmp_path_factory):
    path = tmp_path_factory.mktemp("exact") / "warehouse.duckdb"
    shutil.copy(duckdb_load.path, path)
    return path


def insert_duckdb(path, invoices, lines, currency="XTS") -> None:
    """Clone one loaded invoice and one loaded line per new row: every other column is real."""
    con = duckdb.connect(str(path))
    try:
        con.execute("CREATE TEMP TABLE new_invoices (id VARCHAR, amt VARCHAR)")
        con.execute("CREATE TEMP TABLE new_lines (invoice_id VARCHAR, id VARCHAR, amt VARCHAR)")
        for table, values in (("new_invoices", invoices), ("new_lines", lines)):
            if values:  # one statement: executemany costs seconds per thousand rows in DuckDB
                con.execute(
                    f"INSERT INTO {table} VALUES "
                    + ", ".join("(" + ", ".join(f"'{v}'" for v in row) + ")" for row in values)
                )
        con.execute(f"""
            INSERT INTO freshbooks.invoices BY NAME
            SELECT t.* REPLACE (n.id AS id, '{currency}' AS currency_code, n.amt AS amount__amount,
                                '{currency}' AS amount__code, 2 AS status, 0 AS vis_state)
            FROM (SELECT * FROM freshbooks.invoices WHERE status <> 1 LIMIT 1) t, new_invoices n""")
        con.execute(f"""
            INSERT INTO freshbooks.invoice_lines BY NAME
            SELECT l.* REPLACE (n.invoice_id AS invoice_id, n.id AS id, i.account_id AS account_id,
                                i.updated AS invoice_updated, n.amt AS amount__amount,
                                '{currency}' AS amount__code)
            FROM (SELECT * FROM freshbooks.invoice_lines LIMIT 1) l, new_lines n
            JOIN freshbooks.invoices i ON i.id = n.invoice_id AND i.currency_code = '{currency}'""")
    finally:
        con.close()


def test_duckdb_sums_27_decimals_exactly_across_thousands_of_rows(duckdb_copy, rows):
    invoices, lines, expected = rows
    insert_duckdb(duckdb_copy, invoices, lines)
    with DuckDBWarehouse(duckdb_copy) as wh:
        assert measures(Checker(LOOKER_DIR, wh)) == expected
    sql = Checker(LOOKER_DIR).explore_sql("invoices", Dialect("duckdb")).compile(FIELDS).sql
    assert "DECIMAL(38,27)" in sql and "NUMERIC" not in sql


BIG = "60000000000.000000000000000000000000001"


def test_duckdb_sums_past_eleven_integer_digits_exactly_up_to_its_hugeint(duckdb_copy):
    """Two amounts of 6e10 with a 27th decimal add up exactly (1.2e11, above DECIMAL(38,27)'s
    11 integer digits): DuckDB sums DECIMAL(38,27) in a 128-bit integer (about 1.7e11 here)."""
    insert_duckdb(duckdb_copy, [("big-1", BIG), ("big-2", BIG)], [], currency="XTO")
    with DuckDBWarehouse(duckdb_copy) as wh:
        got = Checker(LOOKER_DIR, wh).query(
            "invoices", ["invoices.total_invoiced"], filters={"invoices.currency_code": "XTO"}
        )
        assert got[0]["invoices.total_invoiced"] == Decimal("120000000000.000000000000000000000000002")
        # a plain SUM past that limit fails loudly (measured on DuckDB 1.2.2)
        with pytest.raises(duckdb.Error, match=r"(?i)overflow"):
            wh.query(
                f"SELECT SUM(CAST(v AS DECIMAL(38,27))) FROM (VALUES ('{BIG}'), ('{BIG}'), ('{BIG}')) t(v)"
            )


#: what DuckDB 1.2.2's 128-bit sum of three BIG amounts wraps around to
WRAPPED = Decimal("-160282366920.938463463374607431768211453")


def test_duckdb_measure_past_its_sum_limit_is_never_silently_right(duckdb_copy):
    """DuckDB 1.2.2 BUG, measured: past ~1.7e11 the fan-out-safe shape the checker compiles measures
    to (SUM(CASE WHEN rn = 1 THEN x END) over a windowed subquery) either fails with an overflow
    error or, in some multi-threaded runs, wraps its 128-bit sum around silently (three amounts of
    6e10 give -160282366920.93...; 3 runs of 20 with 4 threads, none with 1 thread). Which one is
    not deterministic, so each run must be one of the two; looker/README.md 'Exact amounts' says so."""
    insert_duckdb(duckdb_copy, [("big-3", BIG), ("big-4", BIG), ("big-5", BIG)], [], currency="XTP")
    outcomes = []
    with DuckDBWarehouse(duckdb_copy) as wh:
        checker = Checker(LOOKER_DIR, wh)
        for _ in range(10):
            try:
                got = checker.query(
                    "invoices", ["invoices.total_invoiced"], filters={"invoices.currency_code": "XTP"}
                )
            except duckdb.Error as exc:
                assert "overflow" in str(exc).lower(), exc
                outcomes.append("overflow")
            else:
                assert got[0]["invoices.total_invoiced"] == WRAPPED
                outcomes.append("wrapped")
    print("DuckDB past its sum limit, 10 runs:", {o: outcomes.count(o) for o in set(outcomes)})


@pytest.fixture(scope="module")
def postgres():
    with EmbeddedPostgres() as pg:
        yield pg


PG_DDL = """
CREATE SCHEMA freshbooks;
CREATE TABLE freshbooks.invoices (account_id text, id text, invoiceid bigint, status bigint,
    vis_state bigint, currency_code text, amount__amount numeric, amount__code text,
    updated timestamp, PRIMARY KEY (account_id, id));
CREATE TABLE freshbooks.invoice_lines (account_id text, invoice_id text, id text,
    invoice_updated timestamp, amount__amount numeric, amount__code text,
    PRIMARY KEY (account_id, invoice_id, id));
"""


def test_postgres_sums_27_decimals_exactly_across_thousands_of_rows(postgres, rows):
    invoices, lines, expected = rows
    with psycopg.connect(postgres.dsn, autocommit=True) as con:
        con.execute(PG_DDL)
        with con.cursor() as cur:
            cur.executemany(
                "INSERT INTO freshbooks.invoices VALUES ('1', %s, 1, 2, 0, 'XTS', %s, 'XTS', "
                "'2026-01-05 10:00:00')",
                invoices,
            )
            cur.executemany(
                "INSERT INTO freshbooks.invoice_lines VALUES ('1', %s, %s, '2026-01-05 10:00:00', %s, 'XTS')",
                lines,
            )
    with PostgresWarehouse(postgres.dsn) as wh:
        assert measures(Checker(LOOKER_DIR, wh)) == expected
        # arbitrary precision: far past DuckDB's and Snowflake's 38 digits, still exact
        with psycopg.connect(postgres.dsn, autocommit=True) as con:
            con.execute(
                "UPDATE freshbooks.invoices SET amount__amount = amount__amount + 1000000000000000 "
                "WHERE id = 'xts-0'"
            )
        with localcontext() as ctx:
            ctx.prec = 80
            assert measures(Checker(LOOKER_DIR, wh))[0] == expected[0] + 10**15


def test_each_dialect_casts_to_a_type_that_keeps_27_decimals():
    checker = Checker(LOOKER_DIR)
    want = {
        "postgres": "NUMERIC)",
        "redshift": "DECIMAL(38,27)",
        "snowflake": "NUMBER(38,27)",
        "bigquery_standard_sql": "BIGNUMERIC",
    }
    for dialect, cast in want.items():
        sql = checker.explore_sql("invoices", Dialect(dialect)).compile(FIELDS).sql
        assert f"CAST(invoices.amount__amount AS {cast}" in sql, (dialect, sql[:400])
