"""The tap owns its state: each bookmark rule of state.py, odd records, honest replication methods.

Each test here failed on the tap before it owned its state (singer-sdk moved bookmarks on its own,
and one record without its replication key ended the run).
"""

from __future__ import annotations

import gzip
import json
import logging
from collections import Counter
from urllib.parse import urlparse

import pytest

from conftest import run_tap, tap_config
from tap_freshbooks.state import STATE_KEY, STATE_VERSION
from tap_freshbooks.streams import STREAM_TYPES
from tap_freshbooks.tap import RIDES_ALONG, TapFreshBooks

KEYS = {cls.name: cls.primary_keys for cls in STREAM_TYPES}

DAY = 24 * 3600


def partition(state: dict, stream: str, account_id: str) -> dict:
    for part in state["bookmarks"][stream]["partitions"]:
        if part["context"].get("account_id") == account_id:
            return part
    raise AssertionError(f"no {stream} partition for {account_id}")


def bookmark(state: dict, stream: str, account_id: str) -> str | None:
    return partition(state, stream, account_id)[STATE_KEY]["bookmark"]


def active_invoices(run, account_id: str) -> list[dict]:
    rows = [r for r in run.records["invoices"] if r["account_id"] == account_id and r.get("vis_state") == 0]
    return sorted(rows, key=lambda r: r["updated"])


@pytest.fixture
def one_account(emulator, tmp_path):
    account_id = emulator.accounts[0]["account_id"]
    return account_id, tap_config(emulator, tmp_path, account_ids=[account_id])


def test_webhook_run_never_moves_a_bookmark_so_a_dropped_webhook_is_caught(emulator, one_account) -> None:
    account_id, config = one_account
    first = run_tap(config)
    before = {s: bookmark(first.state, s, account_id) for s in ("invoices", "expenses")}
    a, b = active_invoices(first, account_id)[:2]

    emulator.advance(DAY)
    emulator.update("invoices", account_id, int(a["id"]), notes="A changed; its webhook was dropped")
    emulator.advance(3 * DAY)  # B's change is days later: outside any overlap after B's time
    emulator.update("invoices", account_id, int(b["id"]), notes="B changed")
    expense = next(r for r in first.records["expenses"] if r["account_id"] == account_id)
    emulator.update("expenses", account_id, int(expense["id"]), notes="expense changed")

    hook = run_tap(
        {**config, "record_ids": {"invoices": [b["id"]], "expenses": [expense["id"]]}}, state=first.state
    )
    assert hook.ids("invoices") == [b["id"]]
    assert {s: bookmark(hook.state, s, account_id) for s in before} == before  # rule 3

    poll = run_tap(config, state=hook.state)
    assert poll.ids("invoices") == [a["id"]]  # A caught; B not re-sent (its ledger entry)
    assert poll.ids("expenses") == []
    assert bookmark(poll.state, "invoices", account_id) > before["invoices"]


def test_bookmark_never_moves_backwards(emulator, one_account) -> None:
    account_id, config = one_account
    emulator.configure(delete_bumps_updated=False)
    first = run_tap(config)
    before = bookmark(first.state, "invoices", account_id)
    oldest = active_invoices(first, account_id)[0]
    assert oldest["updated"] < before

    emulator.delete("invoices", account_id, int(oldest["id"]))  # `updated` stays old
    second = run_tap(config, state=first.state)
    assert [(r["id"], r["vis_state"]) for r in second.records["invoices"]] == [(oldest["id"], 1)]
    assert bookmark(second.state, "invoices", account_id) == before  # rule 1
    assert run_tap(config, state=second.state).count == 0  # nothing re-sent


def test_a_poll_moves_the_bookmark_to_the_newest_change_it_read(emulator, one_account) -> None:
    account_id, config = one_account
    first = run_tap(config)
    newest = max(r["updated"] for r in first.records["invoices"] if r["account_id"] == account_id)
    assert bookmark(first.state, "invoices", account_id) == newest  # rule 2
    part = partition(first.state, "invoices", account_id)
    assert part["replication_key_value"] == newest  # mirrored for `meltano state get`
    # rule 4: nothing of the SDK's own bookkeeping in the state
    for stream_state in first.state["bookmarks"].values():
        for part in stream_state.get("partitions", [stream_state]):
            assert not {"progress_markers", "starting_replication_value", "replication_key_signpost"} & set(
                part
            )


def test_server_since_and_date_window_bookmarks_are_poll_start_times(emulator, one_account) -> None:
    account_id, config = one_account
    first = run_tap(config)
    for stream in ("time_entries", "journal_entry_details"):
        part = partition(first.state, stream, account_id)
        assert part[STATE_KEY]["bookmark"], stream
        hook = run_tap({**config, "record_ids": {"time_entries": ["1"]}}, state=first.state)
        assert (
            partition(hook.state, stream, account_id)[STATE_KEY] == part[STATE_KEY]
            or stream == "time_entries"
        )
        assert partition(hook.state, stream, account_id)[STATE_KEY]["bookmark"] == part[STATE_KEY]["bookmark"]


def test_version_1_state_is_migrated_without_resending(emulator, one_account) -> None:
    account_id, config = one_account
    first = run_tap(config)
    # Rewrite the state as version 1 wrote it.
    v1 = json.loads(json.dumps(first.state))
    for stream_state in v1["bookmarks"].values():
        for part in stream_state.get("partitions", []):
            own = part.pop(STATE_KEY)
            part["fb_ledger"] = {"v": 1, "seen": own["seen"], "deleted": own["deleted"]}
            if own["strategy"] in {"server_since", "date_window"}:
                part["fb_since"] = own["bookmark"]
                part.pop("replication_key_value", None)
    again = run_tap(config, state=v1)
    assert again.count == 0
    part = partition(again.state, "invoices", account_id)
    assert part[STATE_KEY]["version"] == STATE_VERSION
    assert "fb_ledger" not in part and "fb_since" not in part
    assert part[STATE_KEY]["bookmark"] == bookmark(first.state, "invoices", account_id)


def test_newer_state_version_is_refused_with_one_clear_message(emulator, one_account) -> None:
    account_id, config = one_account
    first = run_tap(config)
    partition(first.state, "invoices", account_id)[STATE_KEY]["version"] = STATE_VERSION + 1
    with pytest.raises(Exception, match="newer tap-freshbooks"):
        run_tap(config, state=first.state)


def test_record_without_its_replication_key_loads_and_is_not_resent(emulator, one_account) -> None:
    """Credit notes as FreshBooks documents them: no `updated` field at all."""
    account_id, config = one_account
    emulator.configure(omit_fields={"credit_notes": ["updated"]})
    first = run_tap(config)
    want = {str(r["id"]) for r in emulator.truth("credit_notes", account_id)}
    assert set(first.ids("credit_notes", account_id)) == want and want
    assert all(r.get("updated") is None for r in first.records["credit_notes"])
    assert "invoices" in first.records and "other_incomes" in first.records  # the run went on

    second = run_tap(config, state=first.state)
    assert second.count == 0
    changed = sorted(want)[0]
    emulator.update("credit_notes", account_id, int(changed), notes="changed")
    assert run_tap(config, state=second.state).ids("credit_notes") == [changed]


def test_values_of_the_wrong_type_are_set_aside_and_named_once(emulator, one_account, caplog) -> None:
    account_id, config = one_account
    first = run_tap(config)
    a, b = active_invoices(first, account_id)[:2]
    emulator.update("invoices", account_id, int(a["id"]), customerid="not-a-number", discount_value="12,5")
    emulator.update("invoices", account_id, int(b["id"]), ownerid="77", due_date="0000-00-00")
    with caplog.at_level(logging.WARNING):
        second = run_tap(config, state=first.state)
    got = {r["id"]: r for r in second.records["invoices"]}
    assert got[a["id"]]["customerid"] is None
    assert got[a["id"]]["discount_value"] is None
    assert got[a["id"]]["_fb_unparsed"] == {"customerid": "not-a-number", "discount_value": "12,5"}
    assert got[b["id"]]["ownerid"] == 77  # lossless fix
    assert got[b["id"]]["due_date"] is None
    assert got[b["id"]]["_fb_unparsed"] == {"due_date": "0000-00-00"}
    warnings = [
        r.getMessage() for r in caplog.records if "do not match their declared type" in r.getMessage()
    ]
    assert len(warnings) == 1
    assert "Stream invoices" in warnings[0] and a["id"] in warnings[0] and b["id"] in warnings[0]
    assert "customerid" in warnings[0] and "due_date" in warnings[0]


def test_unparseable_timestamp_is_set_aside(emulator, one_account) -> None:
    account_id, config = one_account
    first = run_tap(config)
    invoice = active_invoices(first, account_id)[0]
    emulator.update("invoices", account_id, int(invoice["id"]), created_at="yesterday-ish")
    second = run_tap(config, state=first.state)
    got = next(r for r in second.records["invoices"] if r["id"] == invoice["id"])
    assert got["created_at"] is None and got["_fb_unparsed"] == {"created_at": "yesterday-ish"}
    assert got["updated"] > invoice["updated"]


def test_every_stream_is_declared_incremental(emulator, tmp_path) -> None:
    catalog = TapFreshBooks(config=tap_config(emulator, tmp_path), parse_env_config=False).catalog_dict
    for entry in catalog["streams"]:
        root = next(m["metadata"] for m in entry["metadata"] if m["breadcrumb"] == [])
        assert root["forced-replication-method"] == "INCREMENTAL", entry["tap_stream_id"]


def test_forced_full_table_sends_a_full_snapshot_every_run(emulator, one_account) -> None:
    account_id, config = one_account
    catalog = TapFreshBooks(config=config, parse_env_config=False).catalog_dict
    for entry in catalog["streams"]:
        selected = entry["tap_stream_id"] in {"bill_payments", "services", "invoices"}
        for m in entry["metadata"]:
            if m["breadcrumb"] == []:
                m["metadata"]["selected"] = selected
                if selected:
                    m["metadata"]["forced-replication-method"] = "FULL_TABLE"
        if entry["tap_stream_id"] in {"bill_payments", "services", "invoices"}:
            entry["replication_method"] = "FULL_TABLE"
    first = run_tap(config, catalog=catalog)
    second = run_tap(config, state=first.state, catalog=catalog)
    for stream in ("bill_payments", "services", "invoices"):
        truth = {str(r["id"]) for r in emulator.truth(stream, account_id)}
        assert set(first.ids(stream)) == truth and truth, stream
        assert sorted(second.ids(stream)) == sorted(first.ids(stream)), stream


def test_full_refresh_resends_everything_exactly_once(emulator, one_account) -> None:
    account_id, config = one_account
    first = run_tap(config)
    emulator.update("invoices", account_id, int(active_invoices(first, account_id)[0]["id"]), notes="x")
    run_tap(config, state=first.state)
    full = run_tap(config)  # --full-refresh: Meltano runs the tap without state
    for stream, records in full.records.items():
        keys = Counter(tuple(r[k] for k in KEYS[stream]) for r in records)
        assert max(keys.values()) == 1, stream
    assert set(full.ids("invoices")) == {str(r["id"]) for r in emulator.truth("invoices", account_id)}


def test_batch_mode_sends_invoice_lines_as_batches_only(emulator, one_account, tmp_path) -> None:
    account_id, config = one_account
    config = {
        **config,
        "batch_config": {
            "encoding": {"format": "jsonl", "compression": "gzip"},
            "storage": {"root": f"file://{tmp_path / 'batches'}", "prefix": "fb-"},
        },
    }
    run = run_tap(config)
    assert not [m for m in run.messages if m["type"] == "RECORD"]
    batches = [m for m in run.messages if m["type"] == "BATCH"]
    line_batches = [b for b in batches if b["stream"] == "invoice_lines"]
    assert line_batches
    lines = []
    for batch in line_batches:
        for url in batch["manifest"]:
            with gzip.open(urlparse(url).path, "rt") as handle:
                lines += [json.loads(row) for row in handle]
    want = sum(len(i.get("lines") or []) for i in emulator.truth("invoices", account_id))
    assert len(lines) == want
    # lines go out before the batch of their invoices, which goes out before the STATE
    kinds = [(m["type"], m.get("stream")) for m in run.messages if m["type"] in {"BATCH", "STATE"}]
    first_invoice = kinds.index(("BATCH", "invoices"))
    assert ("BATCH", "invoice_lines") in kinds[:first_invoice]


def test_state_matches_its_documented_schema(emulator, one_account) -> None:
    import jsonschema

    from conftest import ROOT

    account_id, config = one_account
    first = run_tap(config)
    hook = run_tap(
        {**config, "record_ids": {"invoices": [active_invoices(first, account_id)[0]["id"]]}},
        state=first.state,
    )
    schema = json.loads((ROOT / "docs" / "state.schema.json").read_text())
    for state in (first.state, hook.state):
        jsonschema.validate(state, schema, cls=jsonschema.Draft202012Validator)
        strategies = {
            part["fb_state"]["strategy"]
            for stream_state in state["bookmarks"].values()
            for part in stream_state.get("partitions", [])
        }
        assert strategies == {"updated", "server_since", "date_window", "snapshot"}


def test_no_state_inside_the_invoices_stream_so_lines_cannot_lag_their_ledger(
    emulator, one_account, monkeypatch
) -> None:
    """A STATE amid invoices would vouch for lines a per-stream loader may not have flushed yet."""
    from tap_freshbooks.streams.base import FreshBooksStream

    _, config = one_account
    monkeypatch.setattr(FreshBooksStream, "STATE_MSG_FREQUENCY", 3)  # every other stream: often
    run = run_tap(config)
    kinds = [(m["type"], m.get("stream")) for m in run.messages if m["type"] in {"RECORD", "STATE"}]
    invoice_at = [
        i for i, k in enumerate(kinds) if k in {("RECORD", "invoices"), ("RECORD", "invoice_lines")}
    ]
    assert len(invoice_at) > 6
    assert ("STATE", None) not in kinds[invoice_at[0] : invoice_at[-1]]
    client_at = [i for i, k in enumerate(kinds) if k == ("RECORD", "clients")]
    assert ("STATE", None) in kinds[client_at[0] : client_at[-1]]  # the knob works elsewhere


@pytest.mark.parametrize("input_state", [None, {}], ids=["first-run", "full-refresh"])
def test_a_run_without_input_state_opens_with_an_empty_state(emulator, one_account, input_state) -> None:
    """target-duckdb keeps the first STATE it sees as its "flushed" state and emits it on its next
    per-stream flush: that first STATE must vouch for no stream yet, or a loader crash after that
    flush loses the first stream's unflushed records for good (chaos: kill_target_full_refresh)."""
    _, config = one_account
    run = run_tap(config, state=input_state)
    first = next(m for m in run.messages if m["type"] in {"RECORD", "STATE"})
    assert first == {"type": "STATE", "value": {"bookmarks": {}}}
    assert run.state["bookmarks"]  # and the run still ends with every stream's bookmark


def test_a_run_with_input_state_opens_with_that_state(emulator, one_account) -> None:
    _, config = one_account
    first_run = run_tap(config)
    run = run_tap(config, state=json.loads(json.dumps(first_run.state)))  # the tap updates its input
    first = next(m for m in run.messages if m["type"] in {"RECORD", "STATE"})
    assert first["type"] == "STATE"  # the input state, before any record: it vouches for nothing new
    account_id = one_account[0]
    opened = {
        s: bookmark(first["value"], s, account_id)
        for s in first_run.state["bookmarks"]
        if s not in RIDES_ALONG
    }
    assert opened == {s: bookmark(first_run.state, s, account_id) for s in opened}
