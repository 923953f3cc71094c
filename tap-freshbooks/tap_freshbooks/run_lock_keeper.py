"""The process that holds a pipeline lease for one run: ``python -m tap_freshbooks.run_lock_keeper``.

The tap starts it (own session, no share of the tap's stdout/stderr, which Meltano reads to EOF)
and reads one JSON line from it: ``{"status": "acquired"}``, ``{"status": "busy", "holder": ...}``
or ``{"status": "error", "message": ...}``. While the lease is held the keeper:

* renews the heartbeat every ``HEARTBEAT_SECONDS``; if the lease was taken away (only possible after
  ``ttl`` seconds without a renewal) it sends SIGTERM to the tap, so two runs never extract at once;
* holds on until the tap is gone (its stdin reaches EOF) **and** the pipeline process is gone: under
  ``meltano run`` that is Meltano itself, so the lease also covers the loader's last commit and
  Meltano's state write;
* gives the lease back;
* when Meltano is gone and left its job RUNNING (``kill -9``, OOM, runner timeout), marks that job
  failed in Meltano's system database, exactly as Meltano's own stale rule does but after
  ``MELTANO_BEAT_GRACE_SECONDS`` without a heartbeat instead of 5 minutes, so the next
  ``meltano run`` is not refused with "Another ... pipeline is already running" (after a normal
  exit there is no RUNNING job and this costs one query).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import signal
import sys
import threading
import time
import typing as t

from tap_freshbooks.errors import ConfigError
from tap_freshbooks.run_lock_lease import (
    HEARTBEAT_SECONDS,
    Holder,
    Lease,
    process_alive,
    process_started,
    store_for,
)

#: Meltano renews a running job's heartbeat every second; 3 missed beats mean its process is gone
MELTANO_BEAT_GRACE_SECONDS = 3.0
POLL_SECONDS = 0.2


def _say(message: dict[str, t.Any]) -> None:
    try:
        sys.stdout.write(json.dumps(message) + "\n")
        sys.stdout.flush()
    except (BrokenPipeError, ValueError, OSError):
        pass  # the tap is gone; nobody listens any more


def _engine_url(uri: str) -> str:
    """Meltano's ``database_uri`` as SQLAlchemy in this environment can open it."""
    if re.match(r"^postgres(ql)?://", uri):
        try:
            import psycopg  # noqa: F401, PLC0415
        except ImportError:
            return uri  # psycopg2, if installed
        return re.sub(r"^postgres(ql)?://", "postgresql+psycopg://", uri)
    return uri


def _runs_table() -> t.Any:  # sqlalchemy.TableClause; sqlalchemy is imported only when needed
    import sqlalchemy as sa  # noqa: PLC0415

    return sa.table(
        "runs",
        sa.column("id"),
        sa.column("job_name"),
        sa.column("state"),
        sa.column("last_heartbeat_at", sa.DateTime),
        sa.column("ended_at", sa.DateTime),
        sa.column("payload"),
    )


def running_jobs(database_uri: str, job_prefix: str) -> list[tuple[int, str, dt.datetime | None]]:
    """``(id, job_name, last_heartbeat_at UTC)`` of Meltano's RUNNING jobs named ``<job_prefix>*``."""
    import sqlalchemy as sa  # noqa: PLC0415

    runs = _runs_table()
    escaped = job_prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    engine = sa.create_engine(_engine_url(database_uri))
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.select(runs.c.id, runs.c.job_name, runs.c.last_heartbeat_at).where(
                    runs.c.state == "RUNNING", runs.c.job_name.like(f"{escaped}%", escape="\\")
                )
            ).all()
    finally:
        engine.dispose()
    return [(r[0], r[1], r[2].replace(tzinfo=dt.UTC) if r[2] else None) for r in rows]


def fail_jobs(database_uri: str, job_ids: t.Iterable[int], reason: str) -> None:
    """Mark these Meltano jobs failed (if still RUNNING), as Meltano's ``Job.fail_stale`` does."""
    import sqlalchemy as sa  # noqa: PLC0415

    runs = _runs_table()
    engine = sa.create_engine(_engine_url(database_uri))
    try:
        with engine.begin() as conn:
            for job_id in job_ids:
                payload = conn.execute(sa.select(runs.c.payload).where(runs.c.id == job_id)).scalar()
                try:
                    body = json.loads(payload) if payload else {}
                except ValueError:
                    body = {}
                body["error"] = reason
                conn.execute(
                    sa.update(runs)
                    .where(runs.c.id == job_id, runs.c.state == "RUNNING")
                    .values(
                        state="FAIL",
                        ended_at=dt.datetime.now(dt.UTC).replace(tzinfo=None),
                        payload=json.dumps(body),
                    )
                )
    finally:
        engine.dispose()


def fail_silent_jobs(
    database_uri: str, job_prefix: str, reason: str, grace: float = MELTANO_BEAT_GRACE_SECONDS
) -> list[str]:
    """After a pipeline process died: fail its job if Meltano did not end it.

    A live Meltano moves its job's heartbeat every second; a RUNNING job of this pipeline whose
    heartbeat does not move for ``grace`` seconds is the dead run's. Jobs that beat belong to live
    runs and are left alone. With no RUNNING job (Meltano ended it itself) this returns at once.
    """
    first_seen = {i: (name, beat) for i, name, beat in running_jobs(database_uri, job_prefix)}
    deadline = time.monotonic() + grace
    while first_seen and time.monotonic() < deadline:
        time.sleep(POLL_SECONDS)
        now = {i: beat for i, _, beat in running_jobs(database_uri, job_prefix)}
        first_seen = {i: v for i, v in first_seen.items() if i in now and now[i] == v[1]}
    if first_seen:
        fail_jobs(database_uri, list(first_seen), reason)
    return [name for name, _ in first_seen.values()]


class Keeper:
    def __init__(self, params: dict[str, t.Any]) -> None:
        self.params = params
        self.tap_pid = os.getppid()
        self.pipeline_pid: int | None = params.get("pipeline_pid")
        self.pipeline_started = process_started(self.pipeline_pid) if self.pipeline_pid else None
        self.tap_gone = threading.Event()

    def _watch_stdin(self) -> None:
        """The tap holds the other end: EOF means it closed it (done) or died."""
        for _ in sys.stdin:
            pass
        self.tap_gone.set()

    def _pipeline_alive(self) -> bool:
        return self.pipeline_pid is not None and process_alive(self.pipeline_pid, self.pipeline_started)

    def run(self) -> int:
        params = self.params
        try:
            store = store_for(params["url"], params["key"])
            lease = Lease(store, Holder.for_this_process(params.get("what", "")))
            busy = lease.try_acquire()
        except Exception as exc:  # noqa: BLE001  (reported to the tap as one line)
            text = str(exc) if isinstance(exc, ConfigError) else f"{type(exc).__name__}: {exc}"
            _say({"status": "error", "message": " ".join(text.split())[:500]})
            return 1
        if busy is not None:
            _say({"status": "busy", "holder": busy.describe(), "where": store.where})
            return 0
        _say(
            {
                "status": "acquired",
                "where": store.where,
                "took_over": lease.took_over.describe() if lease.took_over else None,
            }
        )
        threading.Thread(target=self._watch_stdin, daemon=True).start()
        renewed_at = time.monotonic()
        while not (self.tap_gone.is_set() and not self._pipeline_alive()):
            time.sleep(POLL_SECONDS)
            if time.monotonic() - renewed_at < HEARTBEAT_SECONDS:
                continue
            try:
                ours = lease.renew()
            except Exception:  # noqa: BLE001  (backend hiccup: retried at the next beat)
                ours = time.monotonic() - renewed_at < lease.holder.ttl - HEARTBEAT_SECONDS
            else:
                renewed_at = time.monotonic() if ours else renewed_at
            if not ours:
                _say({"status": "lost", "where": store.where})
                if not self.tap_gone.is_set():
                    os.kill(self.tap_pid, signal.SIGTERM)
                return 1
        try:
            lease.release()
        except Exception:  # noqa: BLE001  (the lease then frees itself: dead pid / expired heartbeat)
            pass
        if params.get("meltano_database_uri") and params.get("job_prefix"):
            self._fail_dead_meltano_run()  # after the release: the next run's tap need not wait for it
        return 0

    def _fail_dead_meltano_run(self) -> None:
        reason = (
            f"The run's process (pid {self.pipeline_pid or self.tap_pid}) died without ending "
            "its job: marked failed by the tap-freshbooks pipeline lock."
        )
        try:
            fail_silent_jobs(self.params["meltano_database_uri"], self.params["job_prefix"], reason)
        except Exception:  # noqa: BLE001  (then Meltano's own 5-minute stale rule applies)
            pass


def main() -> int:
    params = json.loads(sys.argv[1])
    return Keeper(params).run()


if __name__ == "__main__":
    sys.exit(main())
