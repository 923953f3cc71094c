"""The tap against the FreshBooks emulator: full extraction, exactly-once increments, DST, 429s."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import Decimal

import pytest

from conftest import run_tap, tap_config
from freshbooks_emulator import FreshBooksEmulator
from freshbooks_emulator.reports import REPORT_STREAMS
from freshbooks_emulator.streams import LINE_RIDERS
from tap_freshbooks.streams import STREAM_TYPES
from tap_freshbooks.tap import TapFreshBooks
from tap_freshbooks.timezones import eastern_to_utc

ALL_STREAMS = [s.name for s in STREAM_TYPES]
ID_FIELDS = {
    "bill_vendors": "vendorid",
    "other_incomes": "incomeid",
    "chart_of_accounts": "uuid",
    "team_members": "uuid",
}


def truth_ids(emu, stream: str, account_id: str) -> list[str]:
    if stream in LINE_RIDERS:  # invoice_lines, estimate_lines, invoice_profile_lines
        return sorted(str(line["lineid"]) for line in emu.truth(stream, account_id))
    field = ID_FIELDS.get(stream, "id")
    return sorted(str(r.get(field, r.get("id"))) for r in emu.truth(stream, account_id))


def test_full_extraction_equals_the_emulator_truth(emulator, tmp_path) -> None:
    run = run_tap(tap_config(emulator, tmp_path))
    for account in emulator.accounts:
        account_id = account["account_id"]
        for stream in ALL_STREAMS:
            got = run.ids(stream, account_id)
            want = truth_ids(emulator, stream, account_id)
            assert got == want, f"{stream} / {account_id}"
    # every stream really has data, deleted rows are kept with their vis_state
    assert all(run.records.get(s) for s in ALL_STREAMS), [s for s in ALL_STREAMS if not run.records.get(s)]
    for stream in ("clients", "invoices", "expenses"):
        assert any(r["vis_state"] == 1 for r in run.records[stream]), stream
        assert any(r["vis_state"] == 2 for r in run.records[stream]), stream


def test_money_is_exact_and_keeps_its_currency(emulator, tmp_path) -> None:
    run = run_tap(tap_config(emulator, tmp_path))
    got: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for inv in run.records["invoices"]:
        got[inv["account_id"], inv["amount"]["code"]] += Decimal(inv["amount"]["amount"])
        assert isinstance(inv["amount"]["amount"], str)
    want: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for account in emulator.accounts:
        for inv in emulator.truth("invoices", account["account_id"]):
            want[account["account_id"], inv["amount"]["code"]] += Decimal(inv["amount"]["amount"])
    assert got == want
    assert len({code for _, code in got}) >= 2  # multi-currency really exercised
    # long decimals survive untouched
    amounts = [r["net_paid_amount"]["amount"] for r in run.records["invoices"] if r.get("net_paid_amount")]
    assert any(len(a.split(".")[-1]) > 20 for a in amounts)


def test_audit_columns_on_every_record(emulator, tmp_path) -> None:
    run = run_tap(tap_config(emulator, tmp_path))
    for stream, records in run.records.items():
        for record in records:
            assert record["account_id"] and record["id"], stream
            assert record["_fb_trigger"] == "poll"
            assert record["_fb_event_received_at"] is None
            assert record["_fb_extracted_at"].endswith("Z")


def test_timestamps_leave_as_utc(emulator, tmp_path) -> None:
    run = run_tap(tap_config(emulator, tmp_path))
    account_id = emulator.accounts[0]["account_id"]
    truth = {str(r["id"]): r for r in emulator.truth("invoices", account_id)}
    for inv in run.records["invoices"]:
        if inv["account_id"] == account_id:
            assert inv["updated"] == eastern_to_utc(truth[inv["id"]]["updated"])


def emitted(run) -> dict[str, list[str]]:
    return {s: sorted(r["id"] for r in recs) for s, recs in run.records.items() if recs}


def test_incremental_runs_emit_exactly_the_changes(emulator, tmp_path) -> None:
    config = tap_config(emulator, tmp_path)
    first = run_tap(config)
    assert first.count > 0
    account_id = emulator.accounts[0]["account_id"]
    other = emulator.accounts[1]["account_id"]

    reports_before = {
        (a["account_id"], s): emulator.truth(s, a["account_id"])
        for a in emulator.accounts
        for s in REPORT_STREAMS
    }
    emulator.advance(3600)
    invoice = next(r for r in emulator.truth("invoices", account_id) if r["vis_state"] == 0)
    emulator.update("invoices", account_id, invoice["id"], notes="changed by the test")
    client = emulator.create("clients", other, organization="New Client Ltd", currency_code="CAD")
    expense = next(r for r in emulator.truth("expenses", account_id) if r["vis_state"] == 0)
    emulator.delete("expenses", account_id, expense["id"])

    second = run_tap(config, state=first.state)
    got = {
        (r["account_id"], s, r["id"])
        for s, recs in second.records.items()
        for r in recs
        if s != "invoice_lines"
    }
    want = {
        (account_id, "invoices", str(invoice["id"])),
        (other, "clients", str(client["id"])),
        (account_id, "expenses", str(expense["id"])),
        # today's report snapshots that these changes changed (e.g. P&L when the expense is this year's)
        *(
            (acct, stream, report["id"])
            for (acct, stream), before in reports_before.items()
            for report in emulator.truth(stream, acct)
            if [report] != before
        ),
    }
    # snapshot streams (no change timestamp) may legitimately add nothing here either
    assert got == want
    deleted = next(r for r in second.records["expenses"])
    assert deleted["vis_state"] == 1
    lines = second.records.get("invoice_lines", [])
    assert lines and {line["invoice_id"] for line in lines} == {str(invoice["id"])}

    third = run_tap(config, state=second.state)
    assert third.count == 0, emitted(third)


def test_same_second_changes_and_ignored_filters_stay_exact(emulator, tmp_path) -> None:
    """The ledger compares content, so an API that ignores updated_min re-reads but never re-sends."""
    emulator.honour_updated_filter = False
    config = tap_config(emulator, tmp_path)
    first = run_tap(config)
    account_id = emulator.accounts[0]["account_id"]
    emulator.set_clock(emulator.now())  # freeze: two changes inside one second
    client = next(r for r in emulator.truth("clients", account_id) if r["vis_state"] == 0)
    second_base = run_tap(config, state=first.state)
    assert second_base.count == 0
    emulator.update("clients", account_id, client["id"], note="first edit")
    second = run_tap(config, state=second_base.state)
    emulator.update("clients", account_id, client["id"], note="second edit, same second")
    third = run_tap(config, state=second.state)
    assert emitted(second) == {"clients": [str(client["id"])]}
    assert emitted(third) == {"clients": [str(client["id"])]}
    assert third.records["clients"][0]["note"] == "second edit, same second"
    assert run_tap(config, state=third.state).count == 0


@pytest.mark.parametrize(
    "moment",
    [
        pytest.param(dt.datetime(2025, 3, 9, 6, 59, 30, tzinfo=dt.UTC), id="just-before-spring-forward"),
        pytest.param(dt.datetime(2025, 3, 9, 7, 0, 30, tzinfo=dt.UTC), id="just-after-spring-forward"),
        pytest.param(dt.datetime(2025, 11, 2, 5, 30, 0, tzinfo=dt.UTC), id="repeated-hour-edt"),
        pytest.param(dt.datetime(2025, 11, 2, 6, 30, 0, tzinfo=dt.UTC), id="repeated-hour-est"),
        pytest.param(dt.datetime(2025, 11, 2, 7, 0, 30, tzinfo=dt.UTC), id="after-fall-back"),
    ],
)
def test_dst_changes_lose_nothing_and_convert_right(tmp_path, moment) -> None:
    # an empty account, so that nothing in the data is later than the DST moment
    emulator = FreshBooksEmulator(seed="empty", now=moment - dt.timedelta(days=2)).start()
    try:
        _dst_case(emulator, tmp_path, moment)
    finally:
        emulator.stop()


def _dst_case(emulator, tmp_path, moment) -> None:
    emulator.set_clock(moment - dt.timedelta(days=2))
    account_id = emulator.accounts[0]["account_id"]
    payment = emulator.create("payments", account_id, note="before")
    emulator.create("payments", account_id, note="untouched")
    config = tap_config(emulator, tmp_path)
    first = run_tap(config)
    assert len(first.records["payments"]) == 2
    emulator.set_clock(moment)
    emulator.update("payments", account_id, payment["id"], note="dst")
    emulator.advance(7200)
    second = run_tap(config, state=first.state)
    assert emitted(second) == {"payments": [str(payment["id"])]}
    updated = second.records["payments"][0]["updated"]
    if moment.hour == 6 and moment.month == 11:
        # 01:30 EST is on the wire as "01:30:00", the same as 01:30 EDT: the first reading wins
        # (documented); what matters is that the change was not missed.
        assert updated == "2025-11-02T05:30:00Z"
    else:
        assert updated == moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert run_tap(config, state=second.state).count == 0


@pytest.mark.parametrize(("fault", "status"), [("rate_limit_every", 429), ("server_error_every", 503)])
def test_error_storms_lose_nothing(emulator, tmp_path, fault, status) -> None:
    """1 request in 5 fails (429 with Retry-After, or 503): retries lose nothing, duplicate nothing."""
    setattr(emulator.faults, fault, 5)
    run = run_tap(tap_config(emulator, tmp_path))
    statuses = [code for _method, _path, code in emulator.request_log]
    assert statuses.count(status) >= 5
    for account in emulator.accounts:
        for stream in ALL_STREAMS:
            ids = run.ids(stream, account["account_id"])
            assert ids == truth_ids(emulator, stream, account["account_id"])
            if stream not in LINE_RIDERS:  # line ids repeat across parents
                assert len(ids) == len(set(ids)), stream


def test_record_ids_fetches_exactly_those_and_keeps_bookmarks(emulator, tmp_path) -> None:
    config = tap_config(emulator, tmp_path)
    first = run_tap(config)
    account_id = emulator.accounts[0]["account_id"]
    invoices = [r for r in emulator.truth("invoices", account_id) if r["vis_state"] == 0][:2]
    emulator.advance(60)
    emulator.update("invoices", account_id, invoices[0]["id"], notes="webhook-driven change")
    received = "2026-11-25T12:00:00Z"
    webhook_config = {
        **config,
        "account_ids": [account_id],
        "record_ids": {"invoices": [invoices[0]["id"]]},
        "event_received_at": {"invoices": {str(invoices[0]["id"]): received}},
    }
    hook = run_tap(webhook_config, state=first.state)
    assert emitted(hook)["invoices"] == [str(invoices[0]["id"])]
    record = hook.records["invoices"][0]
    assert record["_fb_trigger"] == "webhook"
    assert record["_fb_event_received_at"] == received
    assert {r["_fb_trigger"] for r in hook.records["invoice_lines"]} == {"webhook"}

    def bookmarks(state):
        out = {}
        for name, stream_state in state["bookmarks"].items():
            for part in stream_state.get("partitions", []):
                out[name, part["context"].get("account_id")] = part.get("replication_key_value")
        return out

    assert bookmarks(hook.state) == bookmarks(first.state)
    # the next poll does not send the webhook-fetched version again ...
    poll = run_tap(config, state=hook.state)
    assert poll.count == 0, emitted(poll)
    # ... but a further change is sent
    emulator.advance(60)
    emulator.update("invoices", account_id, invoices[0]["id"], notes="changed again")
    poll2 = run_tap(config, state=poll.state)
    assert emitted(poll2)["invoices"] == [str(invoices[0]["id"])]


def test_a_webhook_run_adds_what_rides_along_and_keeps_the_project_selection(emulator, tmp_path) -> None:
    """The bridge sends only record_ids: the tap narrows the run to those streams plus the streams
    riding along with them (RIDES_ALONG), and a rider the catalog deselects stays out."""
    config = tap_config(emulator, tmp_path)
    account_id = emulator.accounts[0]["account_id"]
    invoice = next(
        r for r in emulator.truth("invoices", account_id) if r["vis_state"] == 0 and r.get("lines")
    )
    hook_config = {**config, "account_ids": [account_id], "record_ids": {"invoices": [invoice["id"]]}}

    hook = run_tap(hook_config)
    assert {m["stream"] for m in hook.messages if m["type"] == "SCHEMA"} == {"invoices", "invoice_lines"}
    assert set(hook.records) == {"invoices", "invoice_lines"}
    assert {r["invoice_id"] for r in hook.records["invoice_lines"]} == {str(invoice["id"])}

    catalog = TapFreshBooks(config=config, parse_env_config=False).catalog_dict
    for stream in catalog["streams"]:
        for entry in stream["metadata"]:
            if entry["breadcrumb"] == [] and stream["tap_stream_id"] == "invoice_lines":
                entry["metadata"]["selected"] = False
    assert set(run_tap(hook_config, catalog=catalog).records) == {"invoices"}


def test_webhook_arriving_after_the_poll_sends_nothing(emulator, tmp_path) -> None:
    """FreshBooks webhooks can arrive minutes late: when the poll already delivered the change,
    the webhook run finds the same version in the ledger and sends nothing.

    (A webhook for a record whose last change is older than the overlap window is fetched and
    sent again: the ledger no longer holds it, and sending is the safe side; the target upserts.)
    """
    config = tap_config(emulator, tmp_path)
    first = run_tap(config)
    account_id = emulator.accounts[0]["account_id"]
    client = next(r for r in emulator.truth("clients", account_id) if r["vis_state"] == 0)
    emulator.advance(60)
    emulator.update("clients", account_id, client["id"], note="changed")
    poll = run_tap(config, state=first.state)
    assert emitted(poll) == {"clients": [str(client["id"])]}
    hook = run_tap(
        {**config, "account_ids": [account_id], "record_ids": {"clients": [client["id"]]}}, state=poll.state
    )
    assert hook.count == 0, emitted(hook)
