"""``tap-freshbooks reconcile``: prove the warehouse matches FreshBooks, changing no state.

    tap-freshbooks reconcile --config CONFIG --warehouse URL [--schema freshbooks]
                             [--streams a,b] [--since RFC3339] [--report-date YYYY-MM-DD]
                             [--reports-only] [--format json|text]

Reads FreshBooks fresh (a tap with no state: every current record, deleted ones included) and the
warehouse read-only, and compares per account and stream: id sets (missing / extra), duplicate
keys, ``vis_state``, the replication key (per record and the newest), money per record and summed
per field and currency. Writes no Singer message, no state and no bookmark; stdout carries the
report only.

With the report streams among those compared (the default), it also checks the warehouse's own
accounts aging and profit and loss against the FreshBooks report snapshots it loaded for the same
date (reconcile_reports.py); ``--reports-only`` does only that, from the warehouse alone.

Exit codes: 0 no drift, 1 drift, 2 usage or configuration error, 3 FreshBooks or the warehouse
could not be read (no verdict).
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import time
import typing as t

import click
import requests
from singer_sdk.exceptions import ConfigValidationError, FatalAPIError, RetriableAPIError

from tap_freshbooks.errors import ConfigError, FreshBooksError
from tap_freshbooks.reconcile_compare import ID_CAP, compare, iso
from tap_freshbooks.reconcile_reports import REPORT_TABLES, render_lines

EXIT_OK, EXIT_DRIFT, EXIT_USAGE, EXIT_UNREADABLE = 0, 1, 2, 3
LINES_NOTE = (
    "invoice_lines are not compared line by line: they ride along with their invoice, whose "
    "amount, updated and vis_state are compared"
)


class Unreadable(Exception):
    """FreshBooks or the warehouse could not be read: no verdict."""


def parse_since(value: str | None) -> dt.datetime | None:
    """``--since`` as a UTC instant (RFC 3339; a bare date is 00:00 UTC; naive times are UTC)."""
    if not value:
        return None
    try:
        moment = dt.datetime.fromisoformat(value.strip().replace("z", "Z").replace("Z", "+00:00"))
    except ValueError:
        msg = f"--since {value!r} is not an RFC 3339 time such as 2026-01-31T00:00:00Z"
        raise ConfigError(msg) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC)


def parse_report_date(value: str | None) -> dt.date | None:
    """``--report-date`` as a date (None: the latest report date of each account)."""
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value.strip())
    except ValueError:
        msg = f"--report-date {value!r} is not a date such as 2026-01-31"
        raise ConfigError(msg) from None


def check_reports(
    warehouse: t.Any, accounts: t.Sequence[str] | None, report_date: dt.date | None
) -> dict[str, t.Any]:
    """The report check on an open warehouse; Unreadable when a table could not be read."""
    from tap_freshbooks.reconcile_reports import report_check  # noqa: PLC0415
    from tap_freshbooks.reconcile_warehouse import WarehouseError  # noqa: PLC0415

    try:
        return report_check(warehouse, accounts, report_date)
    except WarehouseError as exc:
        raise Unreadable(str(exc)) from None


def reconcile_reports(
    warehouse_url: str,
    *,
    schema: str = "freshbooks",
    accounts: t.Sequence[str] | None = None,
    report_date: dt.date | None = None,
) -> dict[str, t.Any]:
    """``--reports-only``: the report check from the warehouse alone (no FreshBooks request).

    Raises Unreadable (no verdict) when the warehouse has no report rows to compare.
    """
    from tap_freshbooks.reconcile_warehouse import open_warehouse  # noqa: PLC0415

    started = time.monotonic()
    warehouse = open_warehouse(warehouse_url, schema)
    with warehouse:
        check = check_reports(warehouse, accounts, report_date)
    if check["status"] == "no_report_rows":
        raise Unreadable(check["message"])
    return {
        "drift": check["status"] != "match",
        "warehouse": warehouse.url,
        "schema": warehouse.schema,
        "accounts": check["accounts"],
        "report_check": check,
        "seconds": round(time.monotonic() - started, 2),
    }


def reconcile(
    config: t.Mapping[str, t.Any],
    warehouse_url: str,
    *,
    schema: str = "freshbooks",
    streams: t.Sequence[str] | None = None,
    since: dt.datetime | None = None,
    report_date: dt.date | None = None,
) -> dict[str, t.Any]:
    """Compare and return the report (a JSON-ready dict; ``report["drift"]`` is the verdict:
    a stream drifts or the report check found a mismatch).

    Raises ConfigError for what the user must fix, Unreadable when a side could not be read.
    """
    from tap_freshbooks.reconcile_freshbooks import build_tap, choose_streams, read_freshbooks  # noqa: PLC0415
    from tap_freshbooks.reconcile_warehouse import WarehouseError, open_warehouse, warehouse_facts  # noqa: PLC0415

    started = time.monotonic()
    warehouse = open_warehouse(warehouse_url, schema)  # checks the URL/file now, connects later
    try:
        tap = build_tap(config)
    except ConfigValidationError as exc:
        details = "; ".join(str(e) for e in (exc.errors or [])) or str(exc)
        msg = f"{details} (settings are listed by `tap-freshbooks --about`)"
        raise ConfigError(msg) from None
    names = choose_streams(tap, streams)
    try:
        specs, fresh = read_freshbooks(tap, names, since)
    except ConfigError:
        raise
    except (FreshBooksError, FatalAPIError, RetriableAPIError) as exc:
        raise Unreadable(f"reading FreshBooks failed: {exc}") from None
    except requests.RequestException as exc:
        raise Unreadable(f"reading FreshBooks failed: {type(exc).__name__}: {exc}") from None

    results: list[dict[str, t.Any]] = []
    other_accounts: set[str] = set()
    report_check: dict[str, t.Any] | None = None
    try:
        with warehouse:
            if any(name in names for name in REPORT_TABLES):
                report_check = check_reports(warehouse, fresh.accounts, report_date)
            for name in names:
                spec = specs[name]
                loaded, others = warehouse_facts(warehouse, spec, fresh.accounts, since)
                other_accounts |= others
                for account in fresh.accounts:
                    result = compare(
                        spec,
                        fresh.facts.get((name, account), []),
                        None if loaded is None else loaded.get(account, []),
                    )
                    results.append(
                        {
                            "stream": name,
                            "account_id": account,
                            **result,
                            "since_applied": since is not None and spec.replication_key is not None,
                            "requests": fresh.requests.get((name, account), 0),
                        }
                    )
    except WarehouseError as exc:
        raise Unreadable(str(exc)) from None

    drifting = [r for r in results if r["drift"]]
    reports_differ = report_check is not None and report_check["status"] == "mismatch"
    notes = []
    if "invoices" in names:
        notes.append(LINES_NOTE)
    if other_accounts:
        notes.append(
            "the warehouse also holds accounts this config does not read (not compared): "
            + ", ".join(sorted(other_accounts))
        )
    if since is not None:
        without = [n for n in names if specs[n].replication_key is None]
        if without:
            notes.append(
                "--since does not apply to streams without a replication key (compared whole): "
                + ", ".join(without)
            )
    if fresh.stray_stdout_lines:
        notes.append(f"{fresh.stray_stdout_lines} line(s) the tap wrote to stdout were discarded")
    return {
        "drift": bool(drifting) or reports_differ,
        "warehouse": warehouse.url,
        "schema": warehouse.schema,
        "since": iso(since),
        "accounts": fresh.accounts,
        "streams": names,
        "summary": {
            "pairs_compared": len(results),
            "pairs_with_drift": len(drifting),
            "freshbooks_records": sum(r["freshbooks"]["records"] for r in results),
            "warehouse_rows": sum(r["warehouse"]["rows"] for r in results),
            **{
                kind: sum(r[kind]["count"] for r in results)
                for kind in (
                    "missing_in_warehouse",
                    "extra_in_warehouse",
                    "duplicates",
                    "vis_state_mismatches",
                    "updated_mismatches",
                    "money_mismatches",
                )
            },
        },
        "requests": {
            "total": fresh.total_requests,
            "identity": fresh.identity_requests,
            "streams": sum(fresh.requests.values()),
            "token_refreshes": fresh.token_refreshes,
        },
        "seconds": round(time.monotonic() - started, 2),
        "id_list_cap": ID_CAP,
        "notes": notes,
        "results": results,
        "report_check": report_check,
    }


# -- text rendering --------------------------------------------------------------------------------
COLUMNS = (
    ("stream", "stream", "<"),
    ("account", "account_id", "<"),
    ("freshbooks", None, ">"),
    ("warehouse", None, ">"),
    ("missing", "missing_in_warehouse", ">"),
    ("extra", "extra_in_warehouse", ">"),
    ("dupes", "duplicates", ">"),
    ("vis_state", "vis_state_mismatches", ">"),
    ("updated", "updated_mismatches", ">"),
    ("money", "money_mismatches", ">"),
    ("requests", "requests", ">"),
    ("status", None, "<"),
)


def _cells(result: dict[str, t.Any]) -> list[str]:
    cells = []
    for title, key, _ in COLUMNS:
        if title == "freshbooks":
            cells.append(str(result["freshbooks"]["records"]))
        elif title == "warehouse":
            wh = result["warehouse"]
            cells.append(str(wh["rows"]) if wh["table_exists"] else "no table")
        elif title == "status":
            cells.append("DRIFT" if result["drift"] else "ok")
        elif key is not None and isinstance(result[key], dict):
            cells.append(str(result[key]["count"]))
        elif key is not None:
            cells.append(str(result[key]))
    return cells


def _ids(block: dict[str, t.Any], show: t.Callable[[t.Any], str] = str) -> str:
    shown = ", ".join(show(item) for item in block["items"])
    more = block["count"] - len(block["items"])
    return shown + (f" (+{more} more)" if more > 0 else "")


def _money(value: dict[str, t.Any] | None) -> str:
    return "null" if value is None else f"{value['amount']} {value['code']}"


def details(result: dict[str, t.Any]) -> list[str]:
    """Readable lines for one drifting (stream, account)."""
    out = [f"{result['stream']} / account {result['account_id']}:"]
    if not result["warehouse"]["table_exists"]:
        out.append("  table does not exist in the warehouse")
    for key, label in (
        ("missing_in_warehouse", "missing in warehouse"),
        ("extra_in_warehouse", "extra in warehouse"),
    ):
        if result[key]["count"]:
            out.append(f"  {label} ({result[key]['count']}): {_ids(result[key])}")
    if result["duplicates"]["count"]:
        out.append(
            f"  duplicate keys ({result['duplicates']['count']}): "
            + _ids(result["duplicates"], lambda d: f"{d['id']} x{d['rows']}")
        )
    if result["vis_state_mismatches"]["count"]:
        out.append(
            f"  vis_state ({result['vis_state_mismatches']['count']}): "
            + _ids(
                result["vis_state_mismatches"],
                lambda d: f"{d['id']} FreshBooks {d['freshbooks']} warehouse {d['warehouse']}",
            )
        )
    if result["updated_mismatches"]["count"]:
        out.append(
            f"  updated ({result['updated_mismatches']['count']}): "
            + _ids(
                result["updated_mismatches"],
                lambda d: f"{d['id']} FreshBooks {d['freshbooks']} warehouse {d['warehouse']}",
            )
        )
    if result["money_mismatches"]["count"]:
        out.append(
            f"  money ({result['money_mismatches']['count']}): "
            + _ids(
                result["money_mismatches"],
                lambda d: (
                    f"{d['id']} {d['field']} FreshBooks {_money(d['freshbooks'])} "
                    f"warehouse {_money(d['warehouse'])}"
                ),
            )
        )
    for row in result["money_sum_mismatches"]:
        out.append(
            f"  sum of {row['field']} in {row['currency']}: FreshBooks {row['freshbooks']} "
            f"warehouse {row['warehouse']}"
        )
    if result["newest_updated_differs"]:
        out.append(
            f"  newest updated: FreshBooks {result['freshbooks']['newest_updated']} "
            f"warehouse {result['warehouse']['newest_updated']}"
        )
    return out


def render_text(report: dict[str, t.Any]) -> str:
    rows = [[title for title, _, _ in COLUMNS]] + [_cells(r) for r in report["results"]]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = [
        f"Reconcile FreshBooks accounts {', '.join(report['accounts'])} with {report['warehouse']} "
        f"(schema {report['schema']})"
        + (f", records updated since {report['since']}" if report["since"] else ""),
        "",
    ]
    for row in rows:
        lines.append(
            "  ".join(
                cell.ljust(width) if align == "<" else cell.rjust(width)
                for cell, width, (_, _, align) in zip(row, widths, COLUMNS, strict=True)
            ).rstrip()
        )
    drifting = [r for r in report["results"] if r["drift"]]
    if drifting:
        lines.append("")
        for result in drifting:
            lines.extend(details(result))
    if report["report_check"] is not None:
        lines.append("")
        lines.extend(render_lines(report["report_check"]))
    lines.append("")
    lines.extend(f"Note: {note}" for note in report["notes"])
    req = report["requests"]
    lines.append(
        f"Requests: {req['total']} to the FreshBooks API (identity {req['identity']}, streams "
        f"{req['streams']}), token refreshes {req['token_refreshes']}; {report['seconds']} s"
    )
    summary = report["summary"]
    reports = _reports_verdict(report["report_check"])
    if summary["pairs_with_drift"]:
        lines.append(
            f"Result: DRIFT in {summary['pairs_with_drift']} of {summary['pairs_compared']} "
            f"stream/account pairs{reports}"
        )
    elif report["drift"]:
        lines.append(f"Result: no stream drift ({summary['pairs_compared']} stream/account pairs){reports}")
    else:
        lines.append(
            f"Result: no drift ({summary['pairs_compared']} stream/account pairs, "
            f"{summary['freshbooks_records']} FreshBooks records){reports}"
        )
    return "\n".join(lines)


def _reports_verdict(check: dict[str, t.Any] | None) -> str:
    if check is None or check["status"] == "no_report_rows":
        return ""
    if check["status"] == "match":
        return "; reports match"
    failing = sum(not c["match"] for c in check["checks"])
    return f"; reports MISMATCH in {failing} of {len(check['checks'])} account reports"


def render_reports_only(report: dict[str, t.Any]) -> str:
    lines = [f"Reconcile report snapshots with {report['warehouse']} (schema {report['schema']})", ""]
    lines.extend(render_lines(report["report_check"]))
    verdict = _reports_verdict(report["report_check"]).removeprefix("; ")
    lines.append(f"Result: {verdict}; {report['seconds']} s")
    return "\n".join(lines)


# -- command line ----------------------------------------------------------------------------------
@click.command(
    name="reconcile",
    help="Compare the warehouse with a fresh read of FreshBooks (changes no state), and its own aging "
    "and P&L with the FreshBooks report snapshots it loaded. "
    "Exit 0: no drift, 1: drift or a report mismatch, 2: usage/config error, 3: a side could not be read.",
)
@click.option("--config", "config_paths", multiple=True, help="Config JSON file(s), or ENV (repeatable).")
@click.option(
    "--warehouse",
    "warehouse_url",
    required=True,
    help="duckdb:///path/to/file.duckdb or postgresql://user:pass@host:port/db",
)
@click.option("--schema", default="freshbooks", show_default=True, help="Schema holding the stream tables.")
@click.option("--streams", default=None, help="Comma-separated stream names (default: all).")
@click.option("--since", default=None, help="Only records whose replication key is >= this RFC 3339 time.")
@click.option(
    "--report-date",
    default=None,
    help="Report check: the report snapshots of this day (default: each account's latest).",
)
@click.option(
    "--reports-only",
    is_flag=True,
    help="Only the report check: the warehouse's own aging and P&L against its FreshBooks report "
    "snapshots (reads the warehouse alone, no FreshBooks request).",
)
@click.option(
    "--format", "output_format", type=click.Choice(["json", "text"]), default="text", show_default=True
)
def reconcile_command(
    config_paths: tuple[str, ...],
    warehouse_url: str,
    schema: str,
    streams: str | None,
    since: str | None,
    report_date: str | None,
    reports_only: bool,
    output_format: str,
) -> int:
    from tap_freshbooks.tap import read_cli_config  # noqa: PLC0415  (singer-sdk loads only when needed)

    day = parse_report_date(report_date)
    if reports_only:
        accounts = read_cli_config(config_paths).get("account_ids") if config_paths else None
        report = reconcile_reports(warehouse_url, schema=schema, accounts=accounts, report_date=day)
        text = render_reports_only
    else:
        config = read_cli_config(config_paths)
        wanted = [s.strip() for s in streams.split(",") if s.strip()] if streams else None
        report = reconcile(
            config, warehouse_url, schema=schema, streams=wanted, since=parse_since(since), report_date=day
        )
        text = render_text
    click.echo(json.dumps(report, indent=2) if output_format == "json" else text(report))
    return EXIT_DRIFT if report["drift"] else EXIT_OK


def subcommand_args(argv: t.Sequence[str]) -> list[str] | None:
    """The arguments for ``reconcile`` if ``argv`` asks for it, else None.

    ``tap-freshbooks reconcile ...``, and also ``tap-freshbooks --config F --catalog F reconcile
    ...``: ``meltano invoke tap-freshbooks reconcile ...`` puts its generated config (every setting,
    secrets from ``.env`` included) and catalog first. The config is kept, the catalog dropped.
    """
    if "reconcile" not in argv:
        return None
    at = list(argv).index("reconcile")
    prefix, passed = list(argv[:at]), []
    while prefix:
        if len(prefix) < 2 or prefix[0] not in {"--config", "--catalog", "--state"}:
            return None
        option, value, prefix = prefix[0], prefix[1], prefix[2:]
        if option == "--config":
            passed += [option, value]
    return passed + list(argv[at + 1 :])


def main(args: t.Sequence[str]) -> int:
    """Run the subcommand; every failure is one line on stderr and an exit code."""

    def fail(message: str, code: int) -> int:
        click.echo(f"tap-freshbooks reconcile: {' '.join(message.split())}", err=True)
        return code

    try:
        code = reconcile_command.main(
            args=list(args), prog_name="tap-freshbooks reconcile", standalone_mode=False
        )
    except click.exceptions.Exit as exc:  # --help
        return int(exc.exit_code)
    except click.UsageError as exc:
        return fail(f"{exc.format_message()} (see --help)", EXIT_USAGE)
    except click.Abort:
        return fail("aborted", EXIT_UNREADABLE)
    except ConfigError as exc:
        return fail(f"configuration error: {exc}", EXIT_USAGE)
    except Unreadable as exc:
        return fail(str(exc), EXIT_UNREADABLE)
    except FreshBooksError as exc:
        return fail(str(exc), EXIT_UNREADABLE)
    except SystemExit as exc:  # read_cli_config's one-line failure already went to stderr
        return int(exc.code) if isinstance(exc.code, int) else EXIT_USAGE
    except Exception as exc:  # noqa: BLE001  (one line, never a bare traceback)
        return fail(f"unexpected error: {type(exc).__name__}: {exc}", EXIT_UNREADABLE)
    return int(code or 0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
