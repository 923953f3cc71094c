"""Snowflake (issue 12): the real pipeline ``meltano run tap-freshbooks target-snowflake``
(meltanolabs-target-snowflake 0.20.4, as pinned in meltano.yml) loads a fakesnow server (a
Snowflake stand-in on DuckDB, run out of process as ``fakesnow -s``), twice, with FreshBooks
changes in between; then the warehouse is compared with the emulator's truth, the column types are
checked, and every LookML explore, measure and tile is run against it in the Snowflake dialect.

What is NOT Snowflake's behaviour here (see fakesnow_shim/sitecustomize.py and the README table):
fakesnow 0.12.1 cannot take the loader's user-stage path (PUT to ``@~``, SELECT from the staged
files, REMOVE, DROP FILE FORMAT: test_fakesnow_refuses_the_user_stage_path), so the batch files
reach the loader's own MERGE through a staging table. The DDL, the MERGE's casts
(``$1:col::NUMBER(38,27)``), dedup, ON, UPDATE and INSERT are the loader's own. The server is
started by fakesnow_server.py, which keeps SUMs over NUMBER exact as Snowflake does (fakesnow
casts aggregate arguments to DOUBLE).
"""

from __future__ import annotations

import datetime as dt
import json
import socket
import subprocess
import time
from decimal import Decimal
from pathlib import Path

import pytest
import test_postgres_pipeline as story_parts
import truth
from pipeline_run import ROOT, Pipeline

from freshbooks_emulator import FreshBooksEmulator
from freshbooks_looker.check import Checker, parameter_variants
from freshbooks_looker.lookml import Explore
from freshbooks_looker.sqlgen import Dialect, ExploreSQL
from freshbooks_looker.warehouse import Warehouse

pytestmark = pytest.mark.slow
HERE = Path(__file__).resolve().parent
FAKESNOW_BIN = ROOT / ".venv" / "fakesnow" / "bin"
DATABASE = "ANALYTICS"
STREAMS = story_parts.STREAMS


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _decode(value):
    if isinstance(value, dict):
        ((kind, text),) = value.items()
        return {"decimal": Decimal, "datetime": dt.datetime.fromisoformat, "date": dt.date.fromisoformat}[
            kind
        ](text)
    return value


class SnowflakeWarehouse(Warehouse):
    """The checker's warehouse interface over snowflake-connector-python talking to the fakesnow
    server (the client runs in the fakesnow venv: snowflake_client.py)."""

    engine = "snowflake"

    def __init__(self, url: str):
        self.dialect = Dialect("snowflake")
        self.proc = subprocess.Popen(
            [str(FAKESNOW_BIN / "python"), str(HERE / "snowflake_client.py"), url, DATABASE],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def query(self, sql: str) -> list[tuple]:
        self.proc.stdin.write(json.dumps(sql) + "\n")
        self.proc.stdin.flush()
        answer = json.loads(self.proc.stdout.readline() or '{"error": "snowflake client exited"}')
        if "error" in answer:
            raise RuntimeError(answer["error"])
        return [tuple(_decode(v) for v in row) for row in answer["rows"]]

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


class _Rows:
    def __init__(self, rows: list[tuple]):
        self.rows = rows

    def fetchall(self) -> list[tuple]:
        return self.rows

    def fetchone(self) -> tuple | None:
        return self.rows[0] if self.rows else None


class PsycopgStyle:
    """The PostgreSQL story's comparisons (written for psycopg and a lower-case ``freshbooks``
    schema) on Snowflake, where target-snowflake created upper-case, unquoted names: double
    quotes are dropped (unquoted names resolve case-insensitively) and catalog names lower-cased."""

    def __init__(self, wh: SnowflakeWarehouse):
        self.wh = wh

    def execute(self, sql: str) -> _Rows:
        sql = sql.replace('"', "").replace("table_schema = 'freshbooks'", "table_schema = 'FRESHBOOKS'")
        rows = self.wh.query(sql)
        if "information_schema" in sql:
            rows = [(r[0].lower(), r[1].lower(), *r[2:]) for r in rows]
        return _Rows(rows)


def snowflake_types(wh: SnowflakeWarehouse) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for table, column, dtype, precision, scale in wh.query(
        "SELECT table_name, column_name, data_type, numeric_precision, numeric_scale "
        "FROM information_schema.columns WHERE table_schema = 'FRESHBOOKS'"
    ):
        out.setdefault(table.lower(), {})[column.lower()] = (
            f"{dtype}({precision},{scale})" if dtype == "NUMBER" else dtype
        )
    return out


def install_shim() -> None:
    """Meltano drops PYTHONPATH from a plugin's environment, so the shim is put on the loader's
    path by a .pth file in its venv (site runs .pth lines, then imports sitecustomize). The line is
    inert unless FAKESNOW_TEST_URL is set, so a real `meltano run` is unaffected; it is left in
    place (idempotent) so that concurrent test sessions never see it half-removed."""
    venv = ROOT / ".meltano" / "loaders" / "target-snowflake" / "venv"
    if not venv.is_dir():
        pytest.fail(
            "target-snowflake is not installed: run scripts/setup (meltano install loader target-snowflake)"
        )
    site_packages = next(venv.glob("lib/python3*/site-packages"))
    line = (
        f"import os, sys; os.environ.get('FAKESNOW_TEST_URL') and "
        f"sys.path.insert(0, {str(HERE / 'fakesnow_shim')!r})\n"
    )
    pth = site_packages / "freshbooks_fakesnow_test.pth"
    if not pth.exists() or pth.read_text() != line:
        pth.write_text(line)


@pytest.fixture(scope="module")
def fakesnow_url():
    exe = FAKESNOW_BIN / "fakesnow"
    if not exe.exists():
        pytest.fail(
            f"{exe} is missing: run scripts/setup (it installs tests/warehouse/requirements-fakesnow.txt)"
        )
    install_shim()
    port = _free_port()
    proc = subprocess.Popen(
        [str(FAKESNOW_BIN / "python"), str(HERE / "fakesnow_server.py"), "-s", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail("fakesnow server did not start")
            time.sleep(0.1)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture(scope="module")
def story(fakesnow_url, tmp_path_factory):
    work: Path = tmp_path_factory.mktemp("sf_story")
    emu = FreshBooksEmulator(seed="small").start()
    obs: dict = {}
    try:
        pipeline = Pipeline(
            emu,
            work,
            "target-snowflake",
            {
                "TARGET_SNOWFLAKE_ACCOUNT": "acme-xy12345",
                "TARGET_SNOWFLAKE_USER": "LOADER",
                "TARGET_SNOWFLAKE_PASSWORD": "not-a-secret",
                "TARGET_SNOWFLAKE_DATABASE": DATABASE,
                "TARGET_SNOWFLAKE_WAREHOUSE": "LOADING",
                "TARGET_SNOWFLAKE_ROLE": "LOADER",
                "FAKESNOW_TEST_URL": fakesnow_url,
            },
        )
        with SnowflakeWarehouse(fakesnow_url) as wh:
            con = PsycopgStyle(wh)
            pipeline.run()
            obs |= story_parts.observe_load(1, snowflake_types(wh), con, emu)
            obs["mutations"] = story_parts.mutate(emu)
            pipeline.run()
            obs |= story_parts.observe_load(2, snowflake_types(wh), con, emu)
            obs["rows_2"] = {s: wh.query(f"SELECT COUNT(*) FROM freshbooks.{s}")[0][0] for s in STREAMS}
            obs["staged_left"] = wh.query("SELECT COUNT(*) FROM freshbooks.target_snowflake_stage")[0][0]
        obs["durations"] = pipeline.durations
        yield obs, emu, fakesnow_url
    finally:
        emu.stop()


def test_first_load_equals_freshbooks(story):
    obs, _, _ = story
    assert obs["problems_1"] == []
    assert obs["dupes_1"] == dict.fromkeys(STREAMS, 0)


def test_second_load_merges_the_changes_without_duplicates(story):
    obs, emu, _ = story
    assert obs["problems_2"] == []
    assert obs["dupes_2"] == dict.fromkeys(STREAMS, 0)
    for stream in STREAMS:
        # line streams are checked through their parents; reports are computed, not stored records
        if not stream.endswith("_lines") and stream not in story_parts.REPORTS:
            assert obs["rows_2"][stream] == len(truth.records(emu, stream)), stream
    assert emu.get("invoices", "zK3pQ7", obs["mutations"]["deleted_invoice"])["vis_state"] == 1
    assert obs["staged_left"] == 0  # every batch went through the MERGE and was removed


def test_money_is_number_38_27_and_timestamps_timestamp_tz(story):
    obs, _, _ = story
    for run in ("types_1", "types_2"):
        types = obs[run]
        assert set(STREAMS) <= set(types)
        amounts = [(t, c, d) for t, cols in types.items() for c, d in cols.items() if c.endswith("__amount")]
        assert len(amounts) > 20 and all(d == "NUMBER(38,27)" for _, _, d in amounts), amounts
        assert types["invoice_lines"]["qty"] == "NUMBER(38,27)"
        assert types["invoices"]["updated"] == "TIMESTAMP_TZ"
        assert types["invoices"]["_sdc_batched_at"] == "TIMESTAMP_TZ"
        assert types["invoices"]["due_date"] == "DATE"
        assert types["bills"]["lines"] == "TEXT"  # JSON text (flattened), Snowflake VARCHAR holds 16 MB


def test_27_decimal_places_survive_the_merge_cast_and_sums(fakesnow_url, story):
    """The emulator's amounts have 2 decimals; the columns keep 27. A value with 27 places goes
    through the loader's MERGE cast (VARIANT -> NUMBER(38,27)) unchanged, and sums stay exact."""
    big = "12345678901.123456789012345678901234567"
    with SnowflakeWarehouse(fakesnow_url) as wh:
        ((value,),) = wh.query(f'SELECT PARSE_JSON(\'{{"a": "{big}"}}\'):a::DECIMAL(38, 27)')
        ((tiny,),) = wh.query(
            "SELECT SUM(CASE WHEN x > 0 THEN x END) FROM (SELECT CAST('0.000000000000000000000000001' "
            "AS NUMBER(38,27)) AS x UNION ALL SELECT CAST('0.1' AS NUMBER(38,27)))"
        )
        ((total,),) = wh.query("SELECT SUM(amount__amount) FROM freshbooks.invoice_lines")
    assert value == Decimal(big)
    assert tiny == Decimal("0.100000000000000000000000001")
    assert isinstance(total, Decimal)


def test_every_explore_and_tile_runs_on_snowflake(story):
    """Every explore (all dimensions, all joins, every parameter variant), every dashboard tile
    (the measures finance reads) and the datagroup trigger, rendered for Snowflake and run on the
    loaded warehouse. The full checker (one query per measure, ~400 queries) takes ~160 s through
    fakesnow, and one query with every measure of an explore takes minutes; the PostgreSQL and
    DuckDB stories run every measure, test_cloud_targets parses every measure for Snowflake."""
    _, _, url = story
    failed, ran = [], 0
    with SnowflakeWarehouse(url) as wh:
        ck = Checker(ROOT / "looker", wh)
        queries = []
        for name, explore in ck.project.explores.items():
            for params in parameter_variants(ck.project, explore):
                xs = ExploreSQL(ck.project, explore, wh.dialect, params)
                dims, _ = ck._all_fields(xs)
                queries.append((f"explore {name} {params}", xs.compile(dims, all_joins=True, limit=1000).sql))
        for dname, el, explore, fields, filters, sorts, limit in ck.dashboard_tiles():
            queries.append(
                (
                    f"tile {dname}/{el['name']}",
                    ck.explore_sql(explore).compile(fields, filters, sorts, limit).sql,
                )
            )
        for name, dg in ck.project.datagroups.items():
            fake = Explore(f"(datagroup {name})", "", "", {}, "_", next(iter(ck.project.views)))
            queries.append(
                (
                    f"datagroup {name}",
                    ExploreSQL(ck.project, fake, wh.dialect).render(dg["sql_trigger"], name),
                )
            )
        for where, sql in queries:
            try:
                rows = wh.query(sql)
                ran += 1
                if where.startswith("datagroup"):
                    assert len(rows) == 1 and rows[0][0] is not None, (where, rows)
            except RuntimeError as exc:
                failed.append(f"{where}: {str(exc).splitlines()[0]}")
    assert failed == []
    assert ran == len(queries) and ran >= 20 + len(ck.project.explores)


def test_key_measures_on_snowflake_equal_freshbooks(story):
    _, emu, url = story
    with SnowflakeWarehouse(url) as wh:
        ck = Checker(ROOT / "looker", wh)
        ar = ck.query("invoices", ["invoices.total_outstanding"])
        months = ck.query("invoices", ["invoices.created_on_month", "invoices.total_invoiced"])
    assert truth.nonzero(
        {r["invoices.currency_code"]: r["invoices.total_outstanding"] for r in ar}
    ) == truth.open_ar_by_currency(emu)
    assert {
        (r["invoices.created_on_month"], r["invoices.currency_code"]): r["invoices.total_invoiced"]
        for r in months
    } == truth.invoiced_by_month(emu)


def test_fakesnow_refuses_the_user_stage_path(fakesnow_url, story):
    """Why the shim exists, measured: the loader's stage statements, verbatim, against fakesnow.
    When a fakesnow release takes them, this fails: drop the shim's stage part then."""
    refused = {}
    with SnowflakeWarehouse(fakesnow_url) as wh:
        wh.query("use schema freshbooks")
        for name, sql in {
            "put": "put 'file:///tmp/x.json.gz' '@~/target-snowflake/probe'",
            "select from stage": "select $1:id::VARCHAR as id from '@~/target-snowflake/probe'(file_format => ff)",
            "remove": "remove '@~/target-snowflake/probe/'",
            "drop file format": "drop file format if exists freshbooks.ff",
        }.items():
            try:
                wh.query(sql)
            except RuntimeError as exc:
                refused[name] = " ".join(str(exc).split())
    assert set(refused) == {"put", "select from stage", "remove", "drop file format"}, refused
    assert "'@~/target-snowflake/probe' does not start with @" in refused["put"], refused
    assert 'syntax error at or near "("' in refused["select from stage"], refused
    assert 'syntax error at or near "REMOVE"' in refused["remove"], refused
    assert 'syntax error at or near "FILE"' in refused["drop file format"], refused
