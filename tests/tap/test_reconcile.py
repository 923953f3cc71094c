"""`tap-freshbooks reconcile` against warehouses the real pipeline loaded.

One module-scoped story: the emulator's data goes through `meltano run tap-freshbooks
target-duckdb` and `... target-postgres` (embedded PostgreSQL) once; every test then reconciles
those warehouses, or a damaged copy of them (a copied DuckDB file, a copied Postgres schema).
The test that changes FreshBooks itself runs last, because it leaves the warehouses behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import types
from datetime import UTC
from decimal import Decimal
from pathlib import Path

import duckdb
import psycopg
import pytest

from conftest import ROOT, tap_config
from freshbooks_emulator import FreshBooksEmulator
from stream_names import OWN_STREAMS
from tap_freshbooks.reconcile import main as reconcile_main
from tap_freshbooks.reconcile import subcommand_args
from tap_freshbooks.reconcile_compare import StreamSpec, compare
from tap_freshbooks.reconcile_reports import matches
from warehouse.embedded_pg import EmbeddedPostgres
from warehouse.pipeline_run import Pipeline

pytestmark = pytest.mark.slow

ACCT, OTHER = "zK3pQ7", "Rt8vW2"
ALL_STREAMS = set(OWN_STREAMS)


@pytest.fixture(scope="module")
def story(tmp_path_factory):
    work: Path = tmp_path_factory.mktemp("reconcile")
    emu = FreshBooksEmulator(seed="small").start()
    pg = EmbeddedPostgres().start()
    try:
        duck = Pipeline(
            emu,
            work / "duck",
            "target-duckdb",
            {"TARGET_DUCKDB_FILEPATH": str(work / "duck" / "warehouse.duckdb")},
        )
        duck.run()
        postgres = Pipeline(
            emu,
            work / "pg",
            "target-postgres",
            {
                "TARGET_POSTGRES_HOST": pg.host,
                "TARGET_POSTGRES_PORT": str(pg.port),
                "TARGET_POSTGRES_USER": pg.user,
                "TARGET_POSTGRES_PASSWORD": "",
                "TARGET_POSTGRES_DATABASE": pg.database,
            },
        )
        postgres.run()
        config = work / "reconcile.json"
        config.write_text(json.dumps(tap_config(emu, work / "reconcile-tokens")))
        yield types.SimpleNamespace(
            emu=emu,
            pg=pg,
            work=work,
            config=config,
            duck=duck,
            duckdb_file=work / "duck" / "warehouse.duckdb",
        )
    finally:
        pg.stop()
        emu.stop()


def run(capsys, story, warehouse: str, *args: str) -> tuple[int, dict]:
    """`reconcile --format json` in-process: (exit code, the report)."""
    code = reconcile_main(
        ["--config", str(story.config), "--warehouse", warehouse, "--format", "json", *args]
    )
    out = capsys.readouterr().out
    return code, json.loads(out)


def pairs(report: dict) -> dict[tuple[str, str], dict]:
    return {(r["stream"], r["account_id"]): r for r in report["results"]}


def drifting(report: dict) -> set[tuple[str, str]]:
    return {key for key, r in pairs(report).items() if r["drift"]}


def duck_copy(story, name: str) -> tuple[Path, duckdb.DuckDBPyConnection]:
    path = story.work / f"{name}.duckdb"
    shutil.copyfile(story.duckdb_file, path)
    return path, duckdb.connect(str(path))


def ids(con, table: str, where: str = "true", account: str = ACCT) -> list[str]:
    rows = con.execute(
        f"select id from freshbooks.{table} where account_id = ? and {where} order by id", [account]
    ).fetchall()
    return [r[0] for r in rows]


# -- a clean load ----------------------------------------------------------------------------------
def test_clean_duckdb_load_has_no_drift_and_counts_every_request(capsys, story):
    story.emu.clear_log()
    code, report = run(capsys, story, f"duckdb://{story.duckdb_file}")
    log = story.emu.request_log

    assert code == 0, [r for r in report["results"] if r["drift"]]
    assert report["drift"] is False and drifting(report) == set()
    assert set(report["streams"]) == ALL_STREAMS and report["accounts"] == [ACCT, OTHER]
    assert len(report["results"]) == 2 * len(ALL_STREAMS)
    for result in report["results"]:
        assert result["freshbooks"]["records"] == result["warehouse"]["rows"] > 0, result["stream"]
        assert result["freshbooks"]["money"] == result["warehouse"]["money"]
    invoices = pairs(report)[("invoices", ACCT)]
    assert invoices["freshbooks"]["newest_updated"] == invoices["warehouse"]["newest_updated"] is not None
    assert set(invoices["freshbooks"]["money"]["amount"]) == {"USD", "CAD"}  # sums per currency
    # every HTTP request counted: the emulator saw exactly the API calls plus the token refreshes
    api = [entry for entry in log if entry[1] != "/auth/oauth/token"]
    assert report["requests"]["total"] == len(api) == 1 + sum(r["requests"] for r in report["results"])
    assert report["requests"]["token_refreshes"] == len(log) - len(api)
    assert any("invoice_lines" in note for note in report["notes"])
    assert not any("stdout" in note for note in report["notes"])  # the read never tried to write a message
    # the report check: the warehouse's own aging and P&L equal the loaded FreshBooks snapshots
    assert report["report_check"]["status"] == "match" and len(report["report_check"]["checks"]) == 4


def test_clean_postgres_load_has_no_drift_and_the_same_sums(capsys, story):
    _, from_duckdb = run(
        capsys, story, f"duckdb://{story.duckdb_file}", "--streams", "invoices,payments,bills"
    )
    code, report = run(capsys, story, story.pg.dsn, "--streams", "invoices,payments,bills")

    assert code == 0, [r for r in report["results"] if r["drift"]]
    # NUMERIC(38,27) in Postgres, text in DuckDB: the same exact sums either way
    assert [r["warehouse"]["money"] for r in report["results"]] == [
        r["warehouse"]["money"] for r in from_duckdb["results"]
    ]
    assert pairs(report)[("invoices", OTHER)]["warehouse"]["money"]["net_paid_amount"]["CAD"].count(".") == 1


# -- a damaged warehouse ---------------------------------------------------------------------------
def test_damaged_duckdb_reports_each_drift_precisely(capsys, story):
    path, con = duck_copy(story, "damaged")
    inv_deleted, inv_repriced = ids(con, "invoices", "vis_state = 0")[:2]
    payment = ids(con, "payments")[0]
    expense = ids(con, "expenses", "vis_state = 0")[0]
    con.execute("delete from freshbooks.invoices where account_id = ? and id = ?", [ACCT, inv_deleted])
    con.execute(
        "update freshbooks.invoices set amount__amount = '1000000.01' where account_id = ? and id = ?",
        [ACCT, inv_repriced],
    )
    # target-duckdb declares the key as PRIMARY KEY: a copy without it can hold a duplicate
    con.execute("create table freshbooks.payments_copy as select * from freshbooks.payments")
    con.execute("drop table freshbooks.payments")
    con.execute("alter table freshbooks.payments_copy rename to payments")
    con.execute(
        "insert into freshbooks.payments select * from freshbooks.payments where account_id = ? and id = ?",
        [ACCT, payment],
    )
    con.execute(
        "update freshbooks.expenses set vis_state = 1 where account_id = ? and id = ?", [ACCT, expense]
    )
    con.execute("insert into freshbooks.clients (account_id, id, vis_state) values (?, '999999', 0)", [OTHER])
    con.close()

    code, report = run(capsys, story, f"duckdb://{path}")

    assert code == 1
    assert drifting(report) == {
        ("invoices", ACCT),
        ("payments", ACCT),
        ("expenses", ACCT),
        ("clients", OTHER),
    }
    by = pairs(report)
    invoices = by[("invoices", ACCT)]
    assert invoices["missing_in_warehouse"] == {"count": 1, "items": [inv_deleted]}
    assert [
        (m["id"], m["field"], m["warehouse"]["amount"]) for m in invoices["money_mismatches"]["items"]
    ] == [(inv_repriced, "amount", "1000000.01")]
    assert {m["field"] for m in invoices["money_sum_mismatches"]} >= {"amount"}
    assert invoices["extra_in_warehouse"]["count"] == invoices["duplicates"]["count"] == 0
    payments = by[("payments", ACCT)]
    assert payments["duplicates"] == {"count": 1, "items": [{"id": payment, "rows": 2}]}
    assert payments["warehouse"]["rows"] == payments["freshbooks"]["records"] + 1
    assert [m["field"] for m in payments["money_sum_mismatches"]] == ["amount"]  # counted twice
    assert by[("expenses", ACCT)]["vis_state_mismatches"]["items"] == [
        {"id": expense, "freshbooks": 0, "warehouse": 1}
    ]
    assert by[("clients", OTHER)]["extra_in_warehouse"] == {"count": 1, "items": ["999999"]}
    summary = report["summary"]
    assert [
        summary[k]
        for k in (
            "missing_in_warehouse",
            "extra_in_warehouse",
            "duplicates",
            "vis_state_mismatches",
            "updated_mismatches",
            "money_mismatches",
        )
    ] == [1, 1, 1, 1, 0, 1]


def test_damaged_postgres_schema_reports_drift_and_a_missing_table(capsys, story):
    with psycopg.connect(story.pg.dsn, autocommit=True) as con:
        con.execute("DROP SCHEMA IF EXISTS damaged CASCADE")
        con.execute("CREATE SCHEMA damaged")
        for table in ("invoices", "payments"):  # the other tables do not exist in this schema
            con.execute(f"CREATE TABLE damaged.{table} AS SELECT * FROM freshbooks.{table}")
        (invoice,) = con.execute(
            "SELECT min(id) FROM damaged.invoices WHERE account_id = %s", [OTHER]
        ).fetchone()
        con.execute(
            "UPDATE damaged.invoices SET outstanding__amount = outstanding__amount + 0.005 "
            "WHERE account_id = %s AND id = %s",
            [OTHER, invoice],
        )
        (payment,) = con.execute(
            "SELECT max(id) FROM damaged.payments WHERE account_id = %s", [ACCT]
        ).fetchone()
        con.execute(
            "INSERT INTO damaged.payments SELECT * FROM damaged.payments WHERE account_id = %s AND id = %s",
            [ACCT, payment],
        )

    code, report = run(
        capsys, story, story.pg.dsn, "--schema", "damaged", "--streams", "invoices,payments,items"
    )

    assert code == 1
    assert drifting(report) == {("invoices", OTHER), ("payments", ACCT), ("items", ACCT), ("items", OTHER)}
    assert pairs(report)[("payments", ACCT)]["duplicates"]["items"] == [{"id": payment, "rows": 2}]
    mismatch = pairs(report)[("invoices", OTHER)]["money_mismatches"]["items"]
    assert [(m["id"], m["field"]) for m in mismatch] == [(invoice, "outstanding")]
    assert Decimal(mismatch[0]["warehouse"]["amount"]) - Decimal(
        mismatch[0]["freshbooks"]["amount"]
    ) == Decimal("0.005")
    items = pairs(report)[("items", ACCT)]
    assert items["warehouse"]["table_exists"] is False
    assert items["missing_in_warehouse"]["count"] == items["freshbooks"]["records"] > 0


def test_a_missing_table_is_no_drift_when_freshbooks_has_no_records_either():
    spec = StreamSpec("taxes", ("account_id", "id"), "updated", has_vis_state=False, money_fields=())
    assert compare(spec, [], None)["drift"] is False
    assert compare(spec, [], [])["drift"] is False


# -- options ---------------------------------------------------------------------------------------
def test_streams_and_since_limit_both_sides(capsys, story):
    con = duckdb.connect(str(story.duckdb_file), read_only=True)
    stamps = sorted(r[0] for r in con.execute("select updated from freshbooks.invoices").fetchall())
    since = stamps[len(stamps) // 2].replace(tzinfo=UTC)
    newer = con.execute(
        "select count(*) from freshbooks.invoices where updated >= ?", [since.replace(tzinfo=None)]
    ).fetchone()[0]
    con.close()
    path, damaged = duck_copy(story, "since")
    old = damaged.execute(
        "select account_id, id from freshbooks.invoices where updated < ? order by updated limit 1",
        [since.replace(tzinfo=None)],
    ).fetchone()
    damaged.execute(
        "update freshbooks.invoices set paid__amount = '0.01' where account_id = ? and id = ?", list(old)
    )
    damaged.close()
    since_text = since.isoformat().replace("+00:00", "Z")

    code, report = run(
        capsys,
        story,
        f"duckdb://{story.duckdb_file}",
        "--streams",
        "invoices,services",
        "--since",
        since_text,
    )
    assert code == 0
    assert report["streams"] == ["invoices", "services"] and report["since"] == since_text
    assert {r["stream"] for r in report["results"]} == {"invoices", "services"}
    invoices = [r for r in report["results"] if r["stream"] == "invoices"]
    assert (
        sum(r["freshbooks"]["records"] for r in invoices)
        == sum(r["warehouse"]["rows"] for r in invoices)
        == newer
    )
    assert 0 < newer < len(stamps)
    assert all(r["since_applied"] for r in invoices)
    services = [r for r in report["results"] if r["stream"] == "services"]
    assert not any(r["since_applied"] for r in services) and all(r["freshbooks"]["records"] for r in services)

    # a damaged record older than --since is out of scope; without --since it is drift
    assert run(capsys, story, f"duckdb://{path}", "--streams", "invoices", "--since", since_text)[0] == 0
    code, report = run(capsys, story, f"duckdb://{path}", "--streams", "invoices")
    assert code == 1
    assert [m["id"] for r in report["results"] for m in r["money_mismatches"]["items"]] == [old[1]]


def test_text_format_is_a_readable_table(capsys, story):
    code = reconcile_main(
        ["--config", str(story.config), "--warehouse", f"duckdb://{story.duckdb_file}", "--streams", "taxes"]
    )
    out = capsys.readouterr().out.splitlines()
    assert code == 0
    assert out[2].split() == [
        "stream",
        "account",
        "freshbooks",
        "warehouse",
        "missing",
        "extra",
        "dupes",
        "vis_state",
        "updated",
        "money",
        "requests",
        "status",
    ]
    assert out[3].split()[:2] == ["taxes", ACCT] and out[3].split()[-1] == "ok"
    assert out[-1].startswith("Result: no drift (2 stream/account pairs")


def test_cli_prints_one_json_document_and_changes_no_state(story):
    """The console script: stdout is the report only; Meltano's state (system DB) is untouched."""
    meltano_db = story.duck.sys_dir / "meltano.db"
    with sqlite3.connect(meltano_db) as db:
        states = db.execute("select state_id, completed_state from state").fetchall()
    assert states and all(json.loads(s[1]).get("singer_state") for s in states)  # there is state to protect
    before = hashlib.sha256(meltano_db.read_bytes()).hexdigest()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TAP_FRESHBOOKS", "MELTANO_"))}

    proc = subprocess.run(
        [
            str(ROOT / ".venv" / "bin" / "tap-freshbooks"),
            "reconcile",
            "--config",
            str(story.config),
            "--warehouse",
            f"duckdb://{story.duckdb_file}",
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )

    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)  # one document, nothing else (no Singer messages)
    assert report["drift"] is False
    assert '"type": "RECORD"' not in proc.stdout + proc.stderr and '"type": "STATE"' not in proc.stderr
    assert hashlib.sha256(meltano_db.read_bytes()).hexdigest() == before


def test_meltano_invoke_argv_reaches_reconcile_with_its_config():
    """`meltano invoke tap-freshbooks reconcile ...` runs `tap-freshbooks --config F --catalog F
    reconcile ...`: Meltano's config file (every setting) is kept, the catalog dropped."""
    assert subcommand_args(["reconcile", "--warehouse", "w"]) == ["--warehouse", "w"]
    assert subcommand_args(
        ["--config", "m.json", "--catalog", "c.json", "reconcile", "--warehouse", "w"]
    ) == ["--config", "m.json", "--warehouse", "w"]
    assert subcommand_args(["--config", "reconcile"]) is None  # a file named reconcile
    assert subcommand_args(["--discover", "reconcile"]) is None
    assert subcommand_args(["--config", "c.json", "--discover"]) is None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--warehouse", "mysql://x/y"], "is not supported; use duckdb:///"),
        (["--warehouse", "duckdb:///nowhere/file.duckdb"], "DuckDB file not found: /nowhere/file.duckdb"),
        (["--streams", "invoice_lines"], "ride along with invoices; use --streams invoices"),
        (["--streams", "invoices,nope"], "unknown stream 'nope'"),
        (["--since", "last tuesday"], "--since 'last tuesday' is not an RFC 3339 time"),
        (["--schema", "x; drop table y"], "is not a plain SQL identifier"),
        (["--format", "xml"], "'xml' is not one of"),
        (["--report-date", "yesterday"], "--report-date 'yesterday' is not a date"),
    ],
)
def test_usage_errors_exit_2_with_one_line(capsys, story, args, message):
    warehouse = [] if "--warehouse" in args else ["--warehouse", f"duckdb://{story.duckdb_file}"]
    code = reconcile_main(["--config", str(story.config), *warehouse, *args])
    captured = capsys.readouterr()
    assert code == 2
    assert captured.out == ""
    assert len(captured.err.strip().splitlines()) == 1 and message in captured.err, captured.err


def test_config_errors_exit_2_and_an_unreachable_warehouse_exits_3(capsys, story, tmp_path):
    assert reconcile_main(["--config", str(story.config)]) == 2
    assert "Missing option '--warehouse'" in capsys.readouterr().err
    incomplete = tmp_path / "incomplete.json"
    incomplete.write_text(json.dumps({"client_id": "x"}))
    assert reconcile_main(["--config", str(incomplete), "--warehouse", f"duckdb://{story.duckdb_file}"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tap-freshbooks reconcile: configuration error:") and len(err.splitlines()) == 1

    code = reconcile_main(
        [
            "--config",
            str(story.config),
            "--streams",
            "taxes",
            "--warehouse",
            "postgresql://reader:s3cret-pw@127.0.0.1:1/nowhere",
        ]
    )
    captured = capsys.readouterr()
    assert code == 3 and captured.out == ""
    assert "cannot connect to postgresql://reader:***@127.0.0.1:1/nowhere" in captured.err
    assert "s3cret-pw" not in captured.err and len(captured.err.strip().splitlines()) == 1


# -- the report check: the warehouse's own aging and P&L against FreshBooks' report snapshots ---------
def test_report_check_matches_on_postgres_from_the_warehouse_alone(capsys, story):
    """--reports-only reads no FreshBooks API; PostgreSQL types (jsonb report, numeric money, date
    columns) give the same verdict and the same exact figures as DuckDB's text columns."""
    story.emu.clear_log()
    code, report = run(capsys, story, story.pg.dsn, "--reports-only")
    assert code == 0 and report["drift"] is False, report["report_check"]
    assert story.emu.request_log == []
    _, duck = run(capsys, story, f"duckdb://{story.duckdb_file}", "--reports-only")
    assert [c["totals"] for c in report["report_check"]["checks"]] == [
        c["totals"] for c in duck["report_check"]["checks"]
    ]
    aging = [c for c in duck["report_check"]["checks"] if c["report"] == "report_accounts_aging"]
    assert all(Decimal(c["totals"]["warehouse"]) > 0 for c in aging)


def test_report_check_reads_the_basis_from_the_snapshot(capsys, story):
    """A snapshot that says cash_based: Sales are the payments dated in its period, not invoices."""
    path, con = duck_copy(story, "cash")
    report, start, end = con.execute(
        "select report, start_date, end_date from freshbooks.report_profit_loss where account_id = ?", [ACCT]
    ).fetchone()
    con.execute(
        "update freshbooks.report_profit_loss set report = ? where account_id = ?",
        [json.dumps({**json.loads(report), "cash_based": True}), ACCT],
    )
    (payments,) = con.execute(
        "select sum(cast(amount__amount as decimal(38, 10))) from freshbooks.payments where account_id = ? "
        "and vis_state <> 1 and amount__code = 'USD' and cast(date as date) between ? and ?",
        [ACCT, start, end],
    ).fetchone()
    con.close()

    code, out = run(capsys, story, f"duckdb://{path}", "--reports-only")

    check = {(c["account_id"], c["report"]): c for c in out["report_check"]["checks"]}
    pl = check[(ACCT, "report_profit_loss")]
    assert code == 1 and pl["basis"] == "cash" and not pl["match"]
    sales = next(d for d in pl["differences"] if d["line"] == "Income / Sales")
    assert Decimal(sales["warehouse"]) == payments != Decimal(sales["freshbooks"])
    assert check[(OTHER, "report_profit_loss")]["match"] and check[(ACCT, "report_accounts_aging")]["match"]


def test_no_report_rows_is_one_line(capsys, story):
    path, con = duck_copy(story, "no_reports")
    con.execute("delete from freshbooks.report_accounts_aging")
    con.execute("delete from freshbooks.report_profit_loss")
    con.close()

    code = reconcile_main(["--warehouse", f"duckdb://{path}", "--reports-only"])
    captured = capsys.readouterr()
    assert code == 3 and captured.out == ""
    assert len(captured.err.strip().splitlines()) == 1
    assert (
        "the warehouse has no report rows" in captured.err and "run the report streams first" in captured.err
    )
    code = reconcile_main(
        ["--warehouse", f"duckdb://{story.duckdb_file}", "--reports-only", "--report-date", "2001-01-01"]
    )
    captured = capsys.readouterr()
    assert (
        code == 3
        and "no report rows (report_accounts_aging, report_profit_loss dated 2001-01-01)" in captured.err
    )

    # in a full run it is one line of the text report, and the missing rows are stream drift
    code = reconcile_main(
        [
            "--config",
            str(story.config),
            "--warehouse",
            f"duckdb://{path}",
            "--streams",
            "report_profit_loss,report_accounts_aging",
        ]
    )
    out = capsys.readouterr().out
    assert code == 1
    assert [line for line in out.splitlines() if "run the report streams first" in line] == [
        f"Reports: the warehouse has no report rows (report_accounts_aging, report_profit_loss) for account(s) "
        f"{ACCT}, {OTHER}: run the report streams first (select report_accounts_aging and report_profit_loss "
        "and run the pipeline)"
    ]


def test_a_rounded_figure_matches_its_exact_sum():
    """FreshBooks prints cents; the warehouse sums exactly. Either rounding of a tie matches."""
    assert matches(Decimal("1.00"), Decimal("1.005")) and matches(Decimal("1.01"), Decimal("1.005"))
    assert matches(Decimal("7.60"), Decimal("7.60133524082021936099189318"))
    assert not matches(Decimal("1.00"), Decimal("1.0051")) and not matches(Decimal("1.00"), Decimal("1.01"))
    assert matches(None, Decimal(0)) and not matches(None, Decimal("0.01"))


# -- FreshBooks moves on (keep last: it leaves both warehouses behind FreshBooks) --------------------
def test_freshbooks_changes_not_yet_loaded_are_drift(capsys, story):
    emu = story.emu
    con = duckdb.connect(str(story.duckdb_file), read_only=True)
    invoice = ids(con, "invoices", "vis_state = 0 and status <> 1")[0]
    expense = ids(con, "expenses", "vis_state = 0")[-1]
    con.close()
    emu.advance(60)
    updated_before = emu.get("invoices", ACCT, int(invoice))["updated"]
    emu.update("invoices", ACCT, int(invoice), notes="changed after the load")
    client = emu.create("clients", OTHER, organization="Not Loaded Yet Ltd")
    emu.delete("expenses", ACCT, int(expense))
    assert emu.get("invoices", ACCT, int(invoice))["updated"] > updated_before

    for warehouse in (f"duckdb://{story.duckdb_file}", story.pg.dsn):
        code, report = run(capsys, story, warehouse, "--streams", "invoices,clients,expenses")
        assert code == 1, warehouse
        assert drifting(report) == {("invoices", ACCT), ("clients", OTHER), ("expenses", ACCT)}
        by = pairs(report)
        stale = by[("invoices", ACCT)]
        assert [m["id"] for m in stale["updated_mismatches"]["items"]] == [invoice]
        assert stale["newest_updated_differs"] is True
        assert stale["freshbooks"]["newest_updated"] > stale["warehouse"]["newest_updated"]
        assert by[("clients", OTHER)]["missing_in_warehouse"]["items"] == [str(client["id"])]
        assert by[("expenses", ACCT)]["vis_state_mismatches"]["items"] == [
            {"id": expense, "freshbooks": 1, "warehouse": 0}
        ]
