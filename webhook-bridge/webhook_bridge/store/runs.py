"""Run records: every Meltano run the bridge started (webhook or poll), its outcome and its holder."""

from __future__ import annotations

import json
import time
import typing as t

from webhook_bridge.store.records import RunRecord

if t.TYPE_CHECKING:
    from collections.abc import Sequence

    from webhook_bridge.store.account_locks import AccountLocks
    from webhook_bridge.store.database import Database

MAX_ERROR_CHARS = 2000
UPDATABLE_FIELDS = frozenset({"pid", "log_path", "status", "exit_code", "error", "finished_ts", "forced"})


class RunLog:
    """The ``runs`` table."""

    def __init__(self, db: Database, locks: AccountLocks) -> None:
        self.db = db
        self.locks = locks

    def create(
        self,
        kind: str,
        *,
        account_id: str | None,
        streams: Sequence[str],
        started_ts: float,
        record_count: int = 0,
        event_count: int = 0,
    ) -> int:
        """Insert a ``running`` row held by this store (call inside the caller's transaction)."""
        return int(
            self.db.value(
                "INSERT INTO runs (kind, account_id, streams, record_count, event_count, started_ts,"
                " status, holder) VALUES (?, ?, ?, ?, ?, ?, 'running', ?) RETURNING id",
                (
                    kind,
                    account_id,
                    json.dumps(list(streams)),
                    record_count,
                    event_count,
                    started_ts,
                    self.locks.holder,
                ),
            )
        )

    def start_run(self, kind: str, *, account_id: str | None = None, streams: Sequence[str] = ()) -> int:
        """Record a run that is not tied to events (polls)."""
        with self.db.tx():
            return self.create(kind, account_id=account_id, streams=streams, started_ts=time.time())

    def update_run(self, run_id: int, **fields: object) -> None:
        """Set columns of a run row (pid, log_path, status, exit_code, error, finished_ts, forced)."""
        unknown = set(fields) - UPDATABLE_FIELDS
        if unknown:
            raise ValueError(f"unknown run fields {sorted(unknown)}")
        if "error" in fields and isinstance(fields["error"], str):
            fields["error"] = fields["error"][-MAX_ERROR_CHARS:]
        assignments = ", ".join(f"{k} = ?" for k in fields)  # names checked against UPDATABLE_FIELDS
        with self.db.tx():
            self.db.run(f"UPDATE runs SET {assignments} WHERE id = ?", (*fields.values(), run_id))

    def dead_run_ids(self) -> list[int]:
        """``running`` rows whose holder is gone (on SQLite: all of them, see AccountLocks)."""
        rows = self.db.all("SELECT id, holder FROM runs WHERE status = 'running'")
        return [int(row["id"]) for row in rows if not self.locks.holder_alive(row["holder"])]

    def mark_interrupted(self, run_ids: Sequence[int], *, now: float) -> None:
        """Runs ``run_ids``: ``interrupted`` (in the caller's transaction)."""
        if run_ids:
            self.db.run(
                "UPDATE runs SET status = 'interrupted',"
                " finished_ts = CASE WHEN finished_ts IS NULL THEN ? ELSE finished_ts END"
                f" WHERE status = 'running' AND id IN ({placeholders(run_ids)})",
                (now, *run_ids),
            )

    def prune(self, *, cutoff: float) -> None:
        """Finished runs older than ``cutoff``; the latest of each (kind, account) stays."""
        self.db.run(
            "DELETE FROM runs WHERE finished_ts IS NOT NULL AND finished_ts < ?"
            " AND id NOT IN (SELECT max(id) FROM runs GROUP BY kind, account_id)",
            (cutoff,),
        )

    def runs(self, *, limit: int = 100, kind: str | None = None) -> list[RunRecord]:
        """Most recent runs first."""
        if kind:
            rows = self.db.all("SELECT * FROM runs WHERE kind = ? ORDER BY id DESC LIMIT ?", (kind, limit))
        else:
            rows = self.db.all("SELECT * FROM runs ORDER BY id DESC LIMIT ?", (limit,))
        return [RunRecord.from_row(r) for r in rows]

    def last_run(self, kind: str | None = None) -> RunRecord | None:
        runs = self.runs(limit=1, kind=kind)
        return runs[0] if runs else None

    def last_runs_by_account(self) -> list[RunRecord]:
        """The latest run of each (kind, account)."""
        rows = self.db.all(
            "SELECT * FROM runs WHERE id IN (SELECT max(id) FROM runs GROUP BY kind, account_id)"
            " ORDER BY account_id, kind"
        )
        return [RunRecord.from_row(r) for r in rows]


def placeholders(values: Sequence[object]) -> str:
    """``?, ?, ?`` for ``values`` (non-empty)."""
    return ", ".join("?" * len(values))
