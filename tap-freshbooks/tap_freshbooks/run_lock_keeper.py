"""The process that holds a pipeline lease for one run: ``python -m tap_freshbooks.run_lock_keeper``.

The tap starts it (own session, no share of the tap's stdout/stderr, which Meltano reads to EOF)
and reads one JSON line from it: ``{"status": "acquired"}``, ``{"status": "busy", "holder": ...}``
or ``{"status": "error", "message": ...}``. While the lease is held the keeper:

* renews the heartbeat every ``HEARTBEAT_SECONDS``; if the lease was taken away (only possible after
  ``ttl`` seconds without a renewal) it sends SIGTERM to the tap, so two runs never extract at once;
* holds on until the tap is gone (its stdin reaches EOF) **and** the pipeline process is gone: under
  ``meltano run`` that is Meltano itself, so the lease also covers the loader's last commit and
  Meltano's state write;
* when the pipeline died without the tap saying goodbye (``kill -9``, OOM, runner timeout), marks
  Meltano's job of that run failed in Meltano's system database, exactly as Meltano's own stale rule
  does but after ``MELTANO_BEAT_GRACE_SECONDS`` without a heartbeat instead of 5 minutes, so the
  next ``meltano run`` is not refused with "Another ... pipeline is already running";
* then gives the lease back.
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
from tap_freshbooks.run_lock_lease import HEARTBEAT_SECONDS, Holder, Lease, process_alive, process_started, store_for

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


def fail_dead_meltano_runs(database_uri: str, job_prefix: str, silent_since: dt.datetime,
                           reason: str) -> list[str]:
    """Mark RUNNING jobs ``<job_prefix>*`` whose heartbeat stopped before ``silent_since`` failed.

    Returns the job names it marked. A live Meltano beats every second, so after the grace period
    only dead runs match.
    """
    import sqlalchemy as sa  # noqa: PLC0415

    runs = sa.table("runs", sa.column("id"), sa.column("job_name"), sa.column("state"),
                    sa.column("last_heartbeat_at", sa.DateTime), sa.column("ended_at", sa.DateTime),
                    sa.column("payload"))
    naive_utc = silent_since.astimezone(dt.timezone.utc).replace(tzinfo=None)
    escaped = job_prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    engine = sa.create_engine(_engine_url(database_uri))
    marked: list[str] = []
    try:
        with engine.begin() as conn:
            rows = conn.execute(
                sa.select(runs.c.id, runs.c.job_name, runs.c.payload).where(
                    runs.c.state == "RUNNING",
                    runs.c.job_name.like(f"{escaped}%", escape="\\"),
                    runs.c.last_heartbeat_at < naive_utc,
                )
            ).all()
            for run_id, job_name, payload in rows:
                try:
                    body = json.loads(payload) if payload else {}
                except ValueError:
                    body = {}
                body["error"] = reason
                conn.execute(
                    sa.update(runs).where(runs.c.id == run_id, runs.c.state == "RUNNING").values(
                        state="FAIL", ended_at=dt.datetime.now(dt.timezone.utc).replace(tzinfo=None),
                        payload=json.dumps(body))
                )
                marked.append(job_name)
    finally:
        engine.dispose()
    return marked


class Keeper:
    def __init__(self, params: dict[str, t.Any]) -> None:
        self.params = params
        self.tap_pid = os.getppid()
        self.pipeline_pid: int | None = params.get("pipeline_pid")
        self.pipeline_started = process_started(self.pipeline_pid) if self.pipeline_pid else None
        self.tap_gone = threading.Event()
        self.goodbye = threading.Event()

    def _watch_stdin(self) -> None:
        for line in sys.stdin:
            if line.strip() == "bye":
                self.goodbye.set()
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
        _say({"status": "acquired", "where": store.where,
              "took_over": lease.took_over.describe() if lease.took_over else None})
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
        if not self.goodbye.is_set() and params.get("meltano_database_uri") and params.get("job_prefix"):
            self._fail_dead_meltano_run()
        try:
            lease.release()
        except Exception:  # noqa: BLE001  (the lease then frees itself: dead pid / expired heartbeat)
            return 1
        return 0

    def _fail_dead_meltano_run(self) -> None:
        silent_since = dt.datetime.now(dt.timezone.utc)
        time.sleep(MELTANO_BEAT_GRACE_SECONDS)
        reason = (f"The run's process (pid {self.pipeline_pid or self.tap_pid}) died without ending "
                  "its job: marked failed by the tap-freshbooks pipeline lock.")
        try:
            fail_dead_meltano_runs(self.params["meltano_database_uri"], self.params["job_prefix"],
                                   silent_since, reason)
        except Exception:  # noqa: BLE001, S110  (then Meltano's own 5-minute stale rule applies)
            pass


def main() -> int:
    params = json.loads(sys.argv[1])
    return Keeper(params).run()


if __name__ == "__main__":
    sys.exit(main())
