"""After a trial: does the warehouse hold every FreshBooks record exactly once, in its current version?

Two independent checks, both must be clean:

* ``reconcile``: the product's own ``tap-freshbooks reconcile --format json`` (a fresh, state-free
  read of FreshBooks against the DuckDB file): missing, extra, duplicate keys, and stale rows
  (vis_state, updated or money that differ).
* ``own_check``: the emulator's internal store (not the API, not the tap) against DuckDB, for every
  stream including ``invoice_lines`` (which reconcile does not compare line by line): missing, extra
  and duplicate keys, vis_state, the current line set of each invoice, and the marker the newest
  change wrote into each changed record.

``load_marks`` / ``resent`` count rows a run re-sent: a row whose ``_sdc_batched_at`` or
``_fb_extracted_at`` changed was loaded again.
"""

from __future__ import annotations

import dataclasses
import json
import typing as t
from pathlib import Path

import duckdb

from tap_freshbooks.reconcile import details as reconcile_details
from tap_freshbooks.reconcile import reconcile as reconcile_report

SCHEMA = "freshbooks"
LINE_KEY = ("account_id", "invoice_id", "id")
KEY = ("account_id", "id")
#: reconcile summary field -> our bucket
RECONCILE_BUCKETS = {
    "missing_in_warehouse": "missing",
    "extra_in_warehouse": "extra",
    "duplicates": "duplicates",
    "vis_state_mismatches": "stale",
    "updated_mismatches": "stale",
    "money_mismatches": "stale",
}


BUCKETS = ("missing", "extra", "duplicates", "stale")


@dataclasses.dataclass
class Verdict:
    """Mismatches found after a trial (0 everywhere = exactly once held).

    ``own`` and ``by_reconcile`` count each bucket as each check saw it; the properties give the
    larger of the two (each check is a complete count of its own).
    """

    compared: int = 0
    own: dict[str, int] = dataclasses.field(default_factory=lambda: dict.fromkeys(BUCKETS, 0))
    by_reconcile: dict[str, int] = dataclasses.field(default_factory=lambda: dict.fromkeys(BUCKETS, 0))
    reconcile_exit: int | None = None
    problems: list[str] = dataclasses.field(default_factory=list)

    def _worst(self, bucket: str) -> int:
        return max(self.own[bucket], self.by_reconcile[bucket])

    missing = property(lambda self: self._worst("missing"))
    extra = property(lambda self: self._worst("extra"))
    duplicates = property(lambda self: self._worst("duplicates"))
    stale = property(lambda self: self._worst("stale"))

    @property
    def clean(self) -> bool:
        return not (any(self.own.values()) or any(self.by_reconcile.values()) or self.problems)

    def add(self, bucket: str, count: int, line: str, *, check: str = "own") -> None:
        if count:
            counts = self.own if check == "own" else self.by_reconcile
            counts[bucket] += count
            self.problems.append(line)

    def __str__(self) -> str:
        return (
            f"compared {self.compared}; own check {self.own}; reconcile {self.by_reconcile} "
            f"(exit {self.reconcile_exit})" + "".join(f"\n  {p}" for p in self.problems)
        )


def connect(path: Path) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(str(path), read_only=True)


def tables(con: duckdb.DuckDBPyConnection) -> dict[str, set[str]]:
    rows = con.execute(
        "select table_name, column_name from information_schema.columns where table_schema = ?", [SCHEMA]
    ).fetchall()
    out: dict[str, set[str]] = {}
    for table, column in rows:
        out.setdefault(table, set()).add(column)
    return out


# -- reconcile ---------------------------------------------------------------------------------------
def reconcile(config_path: Path, warehouse: Path, verdict: Verdict) -> dict:
    """What ``tap-freshbooks reconcile --config C --warehouse duckdb:///W --format json`` reports
    (its ``reconcile()`` function, run in this process to save a Python start-up per trial; the
    console script itself runs at the end of the suite)."""
    try:
        report = reconcile_report(json.loads(config_path.read_text()), f"duckdb://{warehouse}")
    except Exception as exc:  # noqa: BLE001  (no verdict: say why)
        verdict.problems.append(f"reconcile could not compare: {type(exc).__name__}: {exc}")
        return {}
    verdict.reconcile_exit = 1 if report["drift"] else 0
    summary = report["summary"]
    for field, bucket in RECONCILE_BUCKETS.items():
        verdict.add(
            bucket,
            int(summary.get(field) or 0),
            f"reconcile: {summary.get(field)} {field}",
            check="reconcile",
        )
    for result in report["results"]:
        if result["drift"]:
            verdict.problems.extend("reconcile: " + line for line in reconcile_details(result))
    if report["drift"] and not any(verdict.by_reconcile.values()):
        verdict.problems.append("reconcile: drift (sums or newest updated), see its report")
    return report


# -- own check against the emulator's store ----------------------------------------------------------
def _truth(emu, stream: str) -> dict[tuple[str, str], dict]:
    """(account_id, id) -> internal record, every record the store holds (deleted included)."""
    spec = emu.spec(stream)
    out = {}
    for account in emu.accounts:
        acct = account["account_id"]
        for pk in emu.store.ids(stream, acct):
            rec = emu.get(stream, acct, pk)
            if rec is not None:
                out[(acct, str(rec[spec.pk]))] = rec
    return out


def _keys(con, table: str, key: tuple[str, ...]) -> dict[tuple, int]:
    cols = ", ".join(key)
    rows = con.execute(f"select {cols}, count(*) from {SCHEMA}.{table} group by {cols}").fetchall()
    return {tuple(str(v) for v in row[:-1]): int(row[-1]) for row in rows}


def _sample(keys: t.Iterable[tuple], n: int = 6) -> str:
    keys = sorted(keys)
    shown = ", ".join("/".join(k) for k in keys[:n])
    return shown + (f" (+{len(keys) - n} more)" if len(keys) > n else "")


def own_check(
    emu,
    warehouse: Path,
    marks: dict[tuple[str, str, str], tuple[str, str]],
    streams: t.Iterable[str],
    verdict: Verdict,
) -> None:
    con = connect(warehouse)
    try:
        have = tables(con)
        for stream in streams:
            truth = _truth(emu, stream)
            if stream not in have:
                verdict.add("missing", len(truth), f"{stream}: no table, {len(truth)} records missing")
                continue
            loaded = _keys(con, stream, KEY)
            verdict.compared += len(truth)
            missing = truth.keys() - loaded.keys()
            extra = loaded.keys() - truth.keys()
            dupes = {k: n for k, n in loaded.items() if n > 1}
            verdict.add("missing", len(missing), f"{stream}: missing {_sample(missing)}")
            verdict.add("extra", len(extra), f"{stream}: extra {_sample(extra)}")
            verdict.add(
                "duplicates", sum(n - 1 for n in dupes.values()), f"{stream}: duplicate keys {_sample(dupes)}"
            )
            if "vis_state" in have[stream]:
                vis = dict(
                    ((str(a), str(i)), v)
                    for a, i, v in con.execute(
                        f"select account_id, id, vis_state from {SCHEMA}.{stream}"
                    ).fetchall()
                )
                wrong = [
                    k
                    for k, rec in truth.items()
                    if "vis_state" in rec and k in vis and vis[k] != int(rec["vis_state"] or 0)
                ]
                verdict.add("stale", len(wrong), f"{stream}: vis_state differs for {_sample(wrong)}")
        if "invoices" in streams:
            _check_lines(emu, con, have, verdict)
        _check_marks(con, have, marks, verdict)
    finally:
        con.close()


def _check_lines(emu, con, have: dict[str, set[str]], verdict: Verdict) -> None:
    """Every line of every invoice once; the current set = lines read with the invoice's `updated`."""
    truth = {
        (acct, inv_id, str(line["lineid"]))
        for (acct, inv_id), inv in _truth(emu, "invoices").items()
        for line in inv.get("lines") or []
    }
    if "invoice_lines" not in have:
        verdict.add("missing", len(truth), f"invoice_lines: no table, {len(truth)} lines missing")
        return
    verdict.compared += len(truth)
    loaded = _keys(con, "invoice_lines", LINE_KEY)
    dupes = {k: n for k, n in loaded.items() if n > 1}
    verdict.add(
        "duplicates", sum(n - 1 for n in dupes.values()), f"invoice_lines: duplicate keys {_sample(dupes)}"
    )
    current = {
        tuple(str(v) for v in row)
        for row in con.execute(
            f"select l.account_id, l.invoice_id, l.id from {SCHEMA}.invoice_lines l "
            f"join {SCHEMA}.invoices i on i.account_id = l.account_id and i.id = l.invoice_id "
            "and i.updated = l.invoice_updated"
        ).fetchall()
    }
    missing, extra = truth - current, current - truth
    verdict.add("missing", len(missing), f"invoice_lines: current line missing {_sample(missing)}")
    verdict.add(
        "extra", len(extra), f"invoice_lines: line no longer on its invoice still current {_sample(extra)}"
    )


def _check_marks(con, have: dict[str, set[str]], marks: dict, verdict: Verdict) -> None:
    """The newest marker each changed record got is the value in the warehouse."""
    by_stream: dict[str, list[tuple[str, str, str, str]]] = {}
    for (stream, acct, rid), (field, marker) in marks.items():
        if stream in have and field in have[stream]:
            by_stream.setdefault(stream, []).append((acct, rid, field, marker))
    for stream, wanted in by_stream.items():
        fields = sorted({w[2] for w in wanted})
        rows = con.execute(f"select account_id, id, {', '.join(fields)} from {SCHEMA}.{stream}").fetchall()
        values = {(str(r[0]), str(r[1])): dict(zip(fields, r[2:], strict=True)) for r in rows}
        stale = [(a, i) for a, i, f, m in wanted if (a, i) in values and values[(a, i)][f] != m]
        verdict.add("stale", len(stale), f"{stream}: an older version is loaded for {_sample(stale)}")


# -- re-sends ------------------------------------------------------------------------------------------
def load_marks(warehouse: Path) -> dict[tuple[str, tuple], tuple]:
    """(table, key) -> (_sdc_batched_at, _fb_extracted_at) of every loaded row."""
    con = connect(warehouse)
    try:
        out = {}
        for table, columns in tables(con).items():
            key = LINE_KEY if table == "invoice_lines" else KEY
            stamps = [c for c in ("_sdc_batched_at", "_fb_extracted_at") if c in columns]
            if not stamps:
                continue
            for row in con.execute(
                f"select {', '.join(key + tuple(stamps))} from {SCHEMA}.{table}"
            ).fetchall():
                out[(table, tuple(str(v) for v in row[: len(key)]))] = tuple(row[len(key) :])
        return out
    finally:
        con.close()


def resent(before: dict, after: dict) -> dict[str, int]:
    """Rows loaded again between two ``load_marks`` snapshots, per table."""
    out: dict[str, int] = {}
    for key, stamps in after.items():
        if key in before and before[key] != stamps:
            out[key[0]] = out.get(key[0], 0) + 1
    return out
