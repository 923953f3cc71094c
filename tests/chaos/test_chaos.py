"""Chaos suite: "exactly once" under faults, through the real pipeline (`pytest -m chaos`).

Two harnesses (tests/chaos/harness.py): one for kills, storms and tokens (110 invoices and 110
clients changed within the last day, so every poll reads a second page of each), one for webhooks (its
emulator clock jumps days ahead). After every trial, one normal ``meltano run`` and then
``reconcile`` plus the check against the emulator must find 0 missing, extra, duplicate and stale
rows; a steady-state run must re-send 0 rows. Three controls prove the checks see what a real loss
looks like: a killed run with no normal run after it, a damaged copy of the warehouse, and a bookmark
moved as a buggy webhook run would move it.

Run only these: ``.venv/bin/python -m pytest -m chaos``; everything else: ``-m "not chaos"``.

The seed is fixed (``CHAOS_SEED`` overrides it); ``benchmarks/chaos.py`` runs the same trials longer.
"""

from __future__ import annotations

import copy
import json
import os
import random
import shutil
from pathlib import Path

import duckdb
import pytest

from chaos import checks, report, trials
from chaos.harness import STREAMS, Harness

# each test runs several real pipelines; on a loaded 2-core machine one run can take 20 s or more
pytestmark = [pytest.mark.chaos, pytest.mark.slow, pytest.mark.timeout(1800)]

SEED = int(os.environ.get("CHAOS_SEED", "9"))
RESULTS: list[trials.TrialResult] = []
# In the test command the trials are few enough for CI's 15 minutes (each runs several real pipelines);
# benchmarks/chaos.py runs the same kinds as long as you like (CHAOS_KILL_TAP_TRIALS=4 here: 20 points).
KILL_TAP_TRIALS = int(os.environ.get("CHAOS_KILL_TAP_TRIALS", "1"))  # x 5 kills each


@pytest.fixture(scope="module")
def poll_harness(tmp_path_factory):
    h = Harness(tmp_path_factory.mktemp("chaos-poll"), bulk=[("invoices", 110), ("clients", 110)])
    try:
        trials.start(h)
        yield h
    finally:
        h.close()


@pytest.fixture(scope="module")
def webhook_harness(tmp_path_factory):
    h = Harness(tmp_path_factory.mktemp("chaos-webhooks"))
    try:
        trials.start(h)
        yield h
    finally:
        h.close()


def run_kind(h: Harness, kind: str, count: int) -> list[trials.TrialResult]:
    results = [trials.run_trial(h, kind, number, SEED) for number in range(count)]
    RESULTS.extend(results)
    failed = [r for r in results if not r.ok]
    how = f"CHAOS_SEED={SEED} .venv/bin/python -m pytest tests/chaos -m chaos"
    assert not failed, "\n\n".join(r.describe(how) for r in failed)
    return results


# -- the checks see a real loss ------------------------------------------------------------------------
def test_a_killed_run_leaves_drift_that_both_checks_see(poll_harness) -> None:
    """Control: changes, then the tap killed at its first request, nothing after: both checks must
    report the changes as not loaded (the next trial's normal run repairs it)."""
    h = poll_harness
    rng = random.Random(SEED)
    acct = h.emu.accounts[0]["account_id"]
    invoice = str(h.emu.store.ids("invoices", acct)[0])
    h.changes.touch(rng, "invoices", acct, invoice, "control")
    created = h.changes.apply(rng, 3, "control")
    res = trials.TrialResult("control", 0, SEED)
    trials.killed_run(h, res, "tap", 1)
    assert res.points == [("tap", "identity")]
    verdict = h.verify()
    assert verdict.stale >= 1 and not verdict.clean, verdict
    assert any(f"{acct}/{invoice}" in p for p in verdict.problems), verdict.problems
    assert verdict.reconcile_exit == 1, verdict
    assert created


# -- faults ----------------------------------------------------------------------------------------------
def test_tap_killed_at_points_across_streams_and_pages(poll_harness) -> None:
    results = run_kind(poll_harness, "kill_tap", KILL_TAP_TRIALS)
    points = {p for r in results for p in r.points}
    assert len(points) >= 5 * KILL_TAP_TRIALS, sorted(points)
    assert any(label.endswith(" p2") for _, label in points), sorted(points)  # second pages too
    assert len({label.split()[0] for _, label in points}) >= min(8, 4 * KILL_TAP_TRIALS), sorted(points)


def test_the_checks_catch_a_damaged_warehouse(poll_harness, tmp_path) -> None:
    """Control: a copy of a correct warehouse (the one the kills above left, after their normal
    runs) with one row deleted, one duplicated, one foreign row, one line dropped and one stale
    `updated` gives exactly those mismatches."""
    h = poll_harness
    if not h.verify().clean:  # run on its own (-k): the kills' normal runs did not come before
        trials.clean_run(h, trials.TrialResult("control", 1, SEED))
        assert h.verify().clean
    copy = tmp_path / "damaged.duckdb"
    shutil.copyfile(h.warehouse, copy)
    con = duckdb.connect(str(copy))
    try:
        client = con.execute("select account_id, id from freshbooks.clients order by id limit 1").fetchone()
        con.execute("delete from freshbooks.clients where account_id = ? and id = ?", list(client))
        # target-duckdb declares the key as PRIMARY KEY; a table without it (as an append-only loader
        # leaves) can hold a duplicate
        con.execute("create table freshbooks.expenses_nokey as select * from freshbooks.expenses")
        con.execute("drop table freshbooks.expenses")
        con.execute("alter table freshbooks.expenses_nokey rename to expenses")
        con.execute("insert into freshbooks.expenses select * from freshbooks.expenses order by id limit 1")
        con.execute(
            "insert into freshbooks.items select * replace ('999999' as id) from freshbooks.items limit 1"
        )
        line = con.execute(
            "select l.account_id, l.invoice_id, l.id from freshbooks.invoice_lines l join "
            "freshbooks.invoices i on i.account_id = l.account_id and i.id = l.invoice_id "
            "and i.updated = l.invoice_updated order by 1, 2, 3 limit 1"
        ).fetchone()
        con.execute(
            "delete from freshbooks.invoice_lines where account_id = ? and invoice_id = ? and id = ?",
            list(line),
        )
        con.execute(
            "update freshbooks.bills set updated_at = updated_at - interval 1 day "
            "where id = (select min(id) from freshbooks.bills)"
        )
    finally:
        con.close()
    verdict = checks.Verdict()
    checks.own_check(h.emu, copy, h.changes.marks, STREAMS, verdict)
    # own check: the client and the current line are missing, the item is extra, the expense doubled
    assert verdict.own == {"missing": 2, "extra": 1, "duplicates": 1, "stale": 0}, verdict
    report_ = checks.reconcile(h.reconcile_config, copy, verdict)
    assert verdict.reconcile_exit == 1 and report_["drift"] is True
    # reconcile compares no lines; it sees the bill's `updated` moved back as stale
    assert verdict.by_reconcile == {"missing": 1, "extra": 1, "duplicates": 1, "stale": 1}, verdict
    assert not verdict.clean


def test_loader_killed_mid_batch(poll_harness) -> None:
    run_kind(poll_harness, "kill_target", 2)


def test_loader_killed_during_a_full_refresh(poll_harness) -> None:
    """Was a known bug (a run without input state opened with no STATE, so target-duckdb's first
    "flushed" state vouched for the first stream's unflushed records); the tap now opens such a run
    with an empty STATE (tests/tap/test_state_rules.py::test_a_run_without_input_state_*)."""
    res = trials.run_trial(poll_harness, "kill_target_full_refresh", 0, SEED)
    RESULTS.append(res)
    try:
        assert res.ok, res.describe(f"CHAOS_SEED={SEED} .venv/bin/python -m pytest tests/chaos -m chaos")
    finally:  # repair for the next trials: a full refresh that no one kills loads every record again
        repair = poll_harness.meltano(
            "repair (--full-refresh)", extra_env={"MELTANO_RUN_FULL_REFRESH": "true"}
        )
        assert repair.ok and poll_harness.verify().clean, repair.tail()


def test_meltano_killed(poll_harness) -> None:
    run_kind(poll_harness, "kill_meltano", 1)


def test_storms_of_429_5xx_resets_timeouts_truncated_and_garbage_bodies(poll_harness) -> None:
    results = run_kind(poll_harness, "storm", 2)
    assert all(r.steady for r in results)
    assert sum(r.faults for r in results) >= 15


def test_access_token_expires_mid_run(poll_harness) -> None:
    run_kind(poll_harness, "token_expiry", 1)


def test_two_runs_race_for_one_token_store(poll_harness) -> None:
    run_kind(poll_harness, "token_race", 1)


def test_duplicate_and_out_of_order_webhooks_while_a_poll_runs(webhook_harness) -> None:
    run_kind(webhook_harness, "webhooks_during_poll", 1)


def test_record_ids_runs_between_polls_with_webhooks_dropped(webhook_harness) -> None:
    results = run_kind(webhook_harness, "webhooks_dropped", 1)
    assert all(r.steady for r in results)


def test_a_bookmark_moved_by_a_webhook_run_would_lose_the_dropped_change(webhook_harness) -> None:
    """Control for the trial above: if a record_ids run moved the invoices bookmark to the change it
    delivered (issue 9, bug 1), the poll would miss the older change whose webhook was dropped; the
    checks must see that. Simulated by moving the bookmark in Meltano's state by hand."""
    h = webhook_harness
    rng = random.Random(SEED)
    acct = h.emu.accounts[0]["account_id"]
    first, second = (str(i) for i in h.emu.store.ids("invoices", acct)[:2])
    h.changes.touch(rng, "invoices", acct, first, "dropped")  # its webhook is dropped
    h.emu.advance(3 * trials.DAY)
    h.changes.touch(rng, "invoices", acct, second, "delivered")
    res = trials.TrialResult("control", 2, SEED)
    ids = {"invoices": [second]}
    run = h.meltano("record_ids (control)", extra_env=trials._webhook_env(ids, {}))
    assert run.ok, run.tail()
    saved = h.state_get()
    # the real rule first: the record_ids run left the bookmark before the dropped change
    dropped_at = h.emu.get("invoices", acct, int(first))["updated"].strftime("%Y-%m-%dT%H:%M:%SZ")
    assert _bookmark(saved, acct) < dropped_at
    moved = _moved_bookmark(saved, acct, h.emu.get("invoices", acct, int(second))["updated"])
    h.state_set(moved)
    trials.clean_run(h, res)
    verdict = h.verify()
    assert not verdict.clean
    assert any(f"{acct}/{first}" in p for p in verdict.problems), verdict.problems
    assert not any(f"{acct}/{second}" in p for p in verdict.problems), verdict.problems
    # (the harness is left with this broken state: no test uses it after this one)


def _bookmark(state: dict, account_id: str) -> str:
    for part in state["bookmarks"]["invoices"]["partitions"]:
        if part["context"]["account_id"] == account_id:
            return part["fb_state"]["bookmark"]
    raise AssertionError(f"no invoices partition for {account_id}")


def _moved_bookmark(state: dict, account_id: str, updated) -> dict:
    moved = copy.deepcopy(state)
    value = updated.strftime("%Y-%m-%dT%H:%M:%SZ")
    for part in moved["bookmarks"]["invoices"]["partitions"]:
        if part["context"]["account_id"] == account_id:
            part["fb_state"]["bookmark"] = value
            part["replication_key_value"] = value
    return moved


# -- the product's own command, and the table --------------------------------------------------------------
def test_reconcile_command_agrees_and_the_table(poll_harness, capsys) -> None:
    """`tap-freshbooks reconcile` (the console script) on the warehouse all the kills went through."""
    proc = poll_harness.reconcile_cli()
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads(proc.stdout)["summary"]
    assert summary["missing_in_warehouse"] == summary["extra_in_warehouse"] == summary["duplicates"] == 0
    assert all(r.ok for r in RESULTS)
    if {r.kind for r in RESULTS} != set(trials.KINDS) - set(trials.KNOWN_BUGS):
        return  # only some trial kinds were selected (-k): no table
    with capsys.disabled():
        print("\n" + report.render(RESULTS))
    Path(os.environ.get("CHAOS_TABLE", os.devnull)).write_text(report.render(RESULTS) + "\n")
