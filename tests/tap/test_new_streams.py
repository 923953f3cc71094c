"""Estimates, recurring invoice profiles (each with lines), tasks and team members.

The same guarantees as every stream, shown on a real load (emulator -> tap -> target-duckdb through
`meltano run`): keys, audit columns, exact decimals, UTC timestamps, deletes kept, and an
incremental second run that re-sends only what changed. Plus, in-process: the team-members
envelope's paging (no ``pages`` in its ``meta``), webhook runs for the new streams, and the bridge's
event -> stream mapping.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import duckdb
import pytest
import test_meltano_duckdb as pipeline  # meltano_env / meltano_run (module import: nothing re-collected)

from conftest import run_tap, tap_config
from freshbooks_emulator import FreshBooksEmulator
from freshbooks_emulator.streams import LINE_RIDERS
from tap_freshbooks.streams import STREAM_TYPES
from tap_freshbooks.tap import RIDES_ALONG
from tap_freshbooks.timezones import eastern_to_utc, naive_utc_to_utc
from webhook_bridge.events import stream_for
from webhook_bridge.freshbooks import DEFAULT_EVENTS

NEW = ["estimates", "estimate_lines", "invoice_profiles", "invoice_profile_lines", "tasks", "team_members"]
KEYS = {cls.name: cls.primary_keys for cls in STREAM_TYPES}
#: the emulator's id field where it is not ``id``
ID_FIELD = {"team_members": "uuid"}
#: money columns (flattened) per table, compared exactly with the API's decimal strings
MONEY = {
    "estimates": ["amount", "discount_total"],
    "invoice_profiles": ["amount", "discount_total"],
    "tasks": ["rate"],
    "estimate_lines": ["unit_cost", "amount"],
    "invoice_profile_lines": ["unit_cost", "amount"],
}
#: change-time column and how FreshBooks sends it (accounting: naive US/Eastern; team: RFC 3339 UTC)
UPDATED = {
    "estimates": ("updated", eastern_to_utc),
    "invoice_profiles": ("updated", eastern_to_utc),
    "tasks": ("updated", eastern_to_utc),
    "team_members": ("updated_at", naive_utc_to_utc),
}


def truth_rows(emu, stream: str) -> dict[tuple, dict]:
    """Every record FreshBooks holds (deleted ones too), by the tap's key."""
    out = {}
    for account in emu.accounts:
        acct = account["account_id"]
        if stream in LINE_RIDERS:
            parent_key = {"estimates": "estimateid", "invoice_profiles": "profileid"}[LINE_RIDERS[stream]]
            for line in emu.truth(stream, acct):
                out[acct, str(line[parent_key]), str(line["lineid"])] = line
        else:
            for record in emu.truth(stream, acct):
                out[acct, str(record[ID_FIELD.get(stream, "id")])] = record
    return out


def warehouse_rows(con, table: str) -> dict[tuple, dict]:
    cursor = con.execute(f"select * from freshbooks.{table}")
    names = [d[0] for d in cursor.description]
    rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    keys = KEYS[table]
    out = {tuple(row[k] for k in keys): row for row in rows}
    assert len(out) == len(rows), f"{table}: a key loaded twice"
    return out


def as_utc(value) -> dt.datetime:
    """A loaded timestamp (DuckDB gives naive UTC) or the tap's RFC 3339 text, as an aware instant."""
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def check_table(con, emu, table: str) -> dict[tuple, dict]:
    """The warehouse table equals FreshBooks: keys, audit columns, exact money, UTC, deletes.

    Lines removed from their parent stay loaded (with an older ``<parent>_updated``): for line
    tables every current line must be there, and the test checks which ones are current.
    """
    loaded, truth = warehouse_rows(con, table), truth_rows(emu, table)
    if table in LINE_RIDERS:
        assert set(truth) <= set(loaded), table
    else:
        assert set(loaded) == set(truth), table
    for key, want in truth.items():
        row = loaded[key]
        assert row["account_id"] == key[0] and row["id"] == key[-1], table
        assert row["_fb_trigger"] == "poll" and row["_fb_event_received_at"] is None, table
        assert as_utc(row["_fb_extracted_at"]) <= dt.datetime.now(dt.UTC), table
        for money in MONEY.get(table, []):
            # exact text, same digits (target-duckdb stores x-singer.decimal as text)
            assert row[f"{money}__amount"] == want[money]["amount"], (table, money, key)
            assert row[f"{money}__code"] == want[money]["code"], (table, money, key)
        if table in UPDATED:
            column, convert = UPDATED[table]
            assert as_utc(row[column]) == as_utc(convert(want[column])), (table, key)
        if "vis_state" in want:
            assert row["vis_state"] == want["vis_state"], (table, key)
    return loaded


@pytest.mark.slow
def test_new_streams_load_exactly_once_and_incrementally(emulator, tmp_path) -> None:
    select = json.dumps([f"{name}.*" for name in NEW])
    env = pipeline.meltano_env(emulator, tmp_path, TAP_FRESHBOOKS__SELECT=select)
    pipeline.meltano_run(env)
    database = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(database), read_only=True) as con:
        first = {table: check_table(con, emulator, table) for table in NEW}
        for table in LINE_RIDERS.keys() & set(NEW):  # no stale line yet
            assert set(first[table]) == set(truth_rows(emulator, table)), table
        first_extracted = max(as_utc(r["_fb_extracted_at"]) for rows in first.values() for r in rows.values())
    for table in ("estimates", "invoice_profiles", "tasks"):  # deletes are kept, with their vis_state
        assert any(row["vis_state"] == 1 for row in first[table].values()), table
    assert any(row["vis_state"] == 2 for row in first["estimates"].values())
    assert any(row["active"] is False for row in first["team_members"].values())
    assert all(len(rows) > 0 for rows in first.values())

    # changes: an estimate re-priced (its lines change), a profile deleted, a task created,
    # a team member deactivated, in both accounts
    acct, other = (a["account_id"] for a in emulator.accounts)
    emulator.advance(3600)
    estimate = next(r for r in emulator.truth("estimates", acct) if r["vis_state"] == 0)
    emulator.update(
        "estimates",
        acct,
        estimate["id"],
        lines=[{"name": "Design", "qty": "3", "unit_cost": "0.333333333333333333333333333"}],
    )
    profile = next(r for r in emulator.truth("invoice_profiles", other) if r["vis_state"] == 0)
    emulator.delete("invoice_profiles", other, profile["id"])
    task = emulator.create("tasks", other, name="Bookkeeping", rate="95.50")
    member = next(r for r in emulator.truth("team_members", acct) if r["active"])
    emulator.update("team_members", acct, member["uuid"], active=False)

    pipeline.meltano_run(env)  # Meltano keeps the state between runs (environment dev)
    with duckdb.connect(str(database), read_only=True) as con:
        second = {table: check_table(con, emulator, table) for table in NEW}
    resent = {
        (table, key)
        for table, rows in second.items()
        for key, row in rows.items()
        if as_utc(row["_fb_extracted_at"]) > first_extracted
    }
    assert resent == {
        ("estimates", (acct, str(estimate["id"]))),
        ("estimate_lines", (acct, str(estimate["id"]), "1")),
        ("invoice_profiles", (other, str(profile["id"]))),
        # the deleted profile's lines come again with it, carrying its vis_state
        *(
            ("invoice_profile_lines", (other, str(profile["id"]), str(line["lineid"])))
            for line in profile["lines"]
        ),
        ("tasks", (other, str(task["id"]))),
        ("team_members", (acct, member["uuid"])),
    }
    assert {
        r["invoice_profile_vis_state"]
        for k, r in second["invoice_profile_lines"].items()
        if k[1] == str(profile["id"])
    } == {1}
    line = second["estimate_lines"][acct, str(estimate["id"]), "1"]
    assert line["unit_cost__amount"] == "0.333333333333333333333333333"  # 27 decimals, untouched
    assert Decimal(line["qty"]) == 3 and line["amount__amount"] == "1.00"
    assert second["estimates"][acct, str(estimate["id"])]["amount__amount"] == "1.00"
    # the estimate's old lines 2.. stay loaded with the older estimate_updated: current = matching
    current = [
        k
        for k, r in second["estimate_lines"].items()
        if k[1] == str(estimate["id"])
        and r["estimate_updated"] == second["estimates"][acct, str(estimate["id"])]["updated"]
    ]
    assert current == [(acct, str(estimate["id"]), "1")]
    assert second["invoice_profiles"][other, str(profile["id"])]["vis_state"] == 1


def test_team_members_page_by_total_and_per_page(tmp_path) -> None:
    """The auth envelope has no ``pages``: 205 members come in 3 pages worked out from ``total``."""
    emu = FreshBooksEmulator(seed="empty").start()
    try:
        acct = emu.accounts[0]["account_id"]
        made = {emu.create("team_members", acct, first_name=f"M{i}")["uuid"] for i in range(205)}
        run = run_tap(tap_config(emu, tmp_path, account_ids=[acct]))
        assert sorted(run.ids("team_members")) == sorted(made)
        pages = [p for _m, p, _s in emu.request_log if "/team_members" in p]
        assert len(pages) == 3 and all("per_page=100" in p for p in pages), pages
    finally:
        emu.stop()


def test_webhook_runs_fetch_estimates_and_profiles_with_their_lines(emulator, tmp_path) -> None:
    config = tap_config(emulator, tmp_path)
    first = run_tap(config)
    acct = emulator.accounts[0]["account_id"]
    estimate = next(r for r in emulator.truth("estimates", acct) if r["vis_state"] == 0)
    profile = next(r for r in emulator.truth("invoice_profiles", acct) if r["vis_state"] == 0)
    emulator.advance(60)
    emulator.update("estimates", acct, estimate["id"], notes="accepted by phone")

    # what the bridge turns the events into: only the stream fetched by id; the tap adds the riders
    assert (
        stream_for("estimate.update") == "estimates" and stream_for("recurring.create") == "invoice_profiles"
    )
    assert {RIDES_ALONG["estimate_lines"], RIDES_ALONG["invoice_profile_lines"]} == {
        "estimates",
        "invoice_profiles",
    }
    assert {"estimate.create", "recurring.delete"} <= set(DEFAULT_EVENTS)

    hook = run_tap(
        {
            **config,
            "account_ids": [acct],
            "record_ids": {"estimates": [estimate["id"]], "invoice_profiles": [profile["id"]]},
            "event_received_at": {"estimates": {str(estimate["id"]): "2026-12-01T10:00:00Z"}},
        },
        state=first.state,
    )
    assert hook.ids("estimates") == [str(estimate["id"])]
    assert hook.ids("invoice_profiles") == [str(profile["id"])]
    assert {r["estimate_id"] for r in hook.records["estimate_lines"]} == {str(estimate["id"])}
    assert {r["invoice_profile_id"] for r in hook.records["invoice_profile_lines"]} == {str(profile["id"])}
    for records in hook.records.values():
        assert {r["_fb_trigger"] for r in records} == {"webhook"}
    assert hook.records["estimates"][0]["_fb_event_received_at"] == "2026-12-01T10:00:00Z"
    assert {r["_fb_event_received_at"] for r in hook.records["estimate_lines"]} == {"2026-12-01T10:00:00Z"}
    # the next poll does not re-send what the webhook run delivered
    poll = run_tap(config, state=hook.state)
    assert str(estimate["id"]) not in poll.ids("estimates")
    assert not poll.records.get("estimate_lines")


REPORTS = ["report_profit_loss", "report_tax_summary", "report_accounts_aging"]


def report_rows(con, table: str) -> dict[str, dict]:
    """{account_id: row} of today's snapshot; one row per account and report date."""
    rows = warehouse_rows(con, table)
    return {key[0]: row for key, row in rows.items()}


@pytest.mark.slow
def test_reports_load_as_dated_snapshots(emulator, tmp_path) -> None:
    """One row per account and report date; a change later that day replaces that day's row (only
    where the report changed), exact to the cent as FreshBooks computed it."""
    env = pipeline.meltano_env(
        emulator, tmp_path, TAP_FRESHBOOKS__SELECT=json.dumps([f"{r}.*" for r in REPORTS])
    )
    pipeline.meltano_run(env)
    database = tmp_path / "warehouse.duckdb"
    today = dt.datetime.now(dt.UTC).date().isoformat()
    acct, other = (a["account_id"] for a in emulator.accounts)
    with duckdb.connect(str(database), read_only=True) as con:
        first = {table: report_rows(con, table) for table in REPORTS}
    for table, rows in first.items():
        assert set(rows) == {acct, other}, table
        for account_id, row in rows.items():
            [want] = emulator.truth(table, account_id)
            assert row["id"] == today and str(row["report_date"]) == today, table
            assert json.loads(row["report"]) == want["report"], (table, account_id)  # exact decimal strings
            assert row["_fb_trigger"] == "poll" and row["_fb_extracted_at"] is not None
    assert str(first["report_profit_loss"][acct]["start_date"]) == today[:4] + "-01-01"
    assert first["report_accounts_aging"][acct]["start_date"] is None  # as of the report date

    # later that day: a sent invoice with a taxed line, due long ago, in the first account only
    client = next(
        r for r in emulator.truth("clients", acct) if r["vis_state"] == 0 and r["currency_code"] == "USD"
    )
    emulator.create(
        "invoices",
        acct,
        customerid=client["id"],
        status=2,
        currency_code="USD",
        paid="0.00",
        create_date=today,
        due_date="2020-01-01",
        lines=[{"name": "Audit", "qty": "1", "unit_cost": "1000.005", "taxName1": "HST", "taxAmount1": "13"}],
    )
    pipeline.meltano_run(env)
    with duckdb.connect(str(database), read_only=True) as con:
        second = {table: report_rows(con, table) for table in REPORTS}
    for table in REPORTS:
        assert set(second[table]) == {acct, other}, table  # replaced, not added: same day
        [want] = emulator.truth(table, acct)
        assert (
            json.loads(second[table][acct]["report"])
            == want["report"]
            != json.loads(first[table][acct]["report"])
        )
        assert second[table][acct]["_fb_extracted_at"] > first[table][acct]["_fb_extracted_at"], table
        assert second[table][other]["_fb_extracted_at"] == first[table][other]["_fb_extracted_at"], table


def test_a_new_day_adds_a_snapshot(emulator, tmp_path, monkeypatch) -> None:
    from tap_freshbooks.streams import reports

    config = tap_config(emulator, tmp_path)
    first = run_tap(config)
    same_day = run_tap(config, state=first.state)
    assert not any(same_day.records.get(r) for r in REPORTS)  # nothing changed: nothing re-sent
    tomorrow = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    monkeypatch.setattr(reports, "utc_now", lambda: tomorrow)
    next_day = run_tap(config, state=same_day.state)
    for table in REPORTS:
        assert {r["id"] for r in next_day.records[table]} == {tomorrow.date().isoformat()}, table
        assert len(next_day.records[table]) == len(emulator.accounts)
        for entry in next_day.state["bookmarks"][table]["partitions"]:  # one day's fingerprint kept
            assert set(entry["fb_state"]["seen"]) == {tomorrow.date().isoformat()}, table
