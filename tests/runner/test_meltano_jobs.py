"""The keeper's fix for Meltano's 5-minute refusal, on a real Meltano system database.

``meltano`` itself creates the database (its migrations), rows are Meltano ``Job`` objects saved by
Meltano's own ORM, and Meltano's own ``JobFinder`` judges the result: after the keeper's cleanup a
dead run no longer counts as running, while a run that keeps beating is left alone.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import threading
import time

import pytest
from pipeline_runner import MELTANO, ROOT

from tap_freshbooks.run_lock_keeper import fail_silent_jobs

PREFIX = "dev:tap-freshbooks-to-"


@pytest.fixture(scope="module")
def meltano_db(tmp_path_factory):
    """A Meltano system DB made by ``meltano`` itself (its migrations) and an ORM session factory."""
    tmp_path = tmp_path_factory.mktemp("meltano-db")
    from sqlalchemy import create_engine
    from sqlalchemy.orm import sessionmaker

    uri = f"sqlite:///{tmp_path / 'meltano.db'}"
    env = {
        "MELTANO_DATABASE_URI": uri,
        "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
        "MELTANO_SYS_DIR_ROOT": str(tmp_path / "sys"),
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
    }
    subprocess.run(
        [str(MELTANO), "state", "list"], cwd=ROOT, env=env, check=True, capture_output=True, timeout=120
    )
    return uri, sessionmaker(bind=create_engine(uri))


def running_job(session, name: str):
    from meltano.core.job import Job, State

    job = Job(job_name=name)
    job.start()
    job.save(session)
    assert job.state is State.RUNNING
    return job


def test_a_silent_running_job_is_failed_and_a_beating_one_is_left_alone(meltano_db):
    from meltano.core.job.finder import JobFinder

    uri, Session = meltano_db
    session = Session()
    dead = running_job(session, f"{PREFIX}target-postgres")
    live = running_job(Session(), f"{PREFIX}target-duckdb")
    other = running_job(session, "demo:tap-freshbooks-to-target-duckdb")  # another environment
    live_session = Session()
    live = live_session.merge(live)
    stop = threading.Event()

    def beat() -> None:  # what Meltano's heartbeater does every second
        while not stop.is_set():
            live.last_heartbeat_at = dt.datetime.now(dt.UTC)
            live.save(live_session)
            time.sleep(0.5)

    beater = threading.Thread(target=beat)
    beater.start()
    try:
        failed = fail_silent_jobs(uri, PREFIX, "killed: marked failed by the pipeline lock", grace=2.0)
    finally:
        stop.set()
        beater.join()
    assert failed == [f"{PREFIX}target-postgres"]
    check = Session()
    assert JobFinder(f"{PREFIX}target-postgres").latest_running(check) is None  # Meltano won't refuse
    assert JobFinder(f"{PREFIX}target-duckdb").latest_running(check) is not None
    assert JobFinder(other.job_name).latest_running(check) is not None
    refreshed = JobFinder(f"{PREFIX}target-postgres").latest(check)
    assert refreshed.state.name == "FAIL" and "pipeline lock" in refreshed.payload["error"]
    assert dead.run_id == refreshed.run_id


def test_no_running_job_costs_no_wait(meltano_db):
    uri, _ = meltano_db
    started = time.monotonic()
    assert fail_silent_jobs(uri, "prod:tap-freshbooks-to-", "unused", grace=3.0) == []
    assert time.monotonic() - started < 1.5
