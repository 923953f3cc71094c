"""Direct mode's pieces (webhook_bridge.direct, meltano_pipeline) and the post-load steps in meltano mode.

The whole direct path (Meltano helper, real tap and target-duckdb, state through Meltano's state
backend) runs in test_e2e.py; here each piece runs for real on its own: the run supervisor with small
Singer programs, the run files on disk, the settings, and the post-load command through the fake
`meltano` of the runner tests.
"""

from __future__ import annotations

import asyncio
import json
import os
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from bridge.helpers import BRIDGE_SRC, make_settings, open_store, read_records
from bridge.test_runner import Env, ev, run_until
from webhook_bridge import direct
from webhook_bridge.settings import SettingsError

CATALOG = {
    "streams": [
        {
            "tap_stream_id": name,
            "stream": name,
            "schema": {},
            "metadata": [{"breadcrumb": [], "metadata": {"selected": True}}],
        }
        for name in ("invoices", "invoice_lines", "clients")
    ]
}


def resolved(tmp_path: Path, **extra_config) -> direct.Resolved:
    (tmp_path / "meltano.yml").write_text("project_id: x\n")
    data = {
        "state_id": "dev:tap-freshbooks-to-target-duckdb",
        "project_root": str(tmp_path),
        "watch": [str(tmp_path / "meltano.yml"), str(tmp_path / ".env")],
        "extractor": {
            "name": "tap-freshbooks",
            "executable": "/venv/bin/tap-freshbooks",
            "config": {"client_id": "c", "record_ids": {"stale": [1]}, **extra_config},
            "env": {
                "MELTANO_PROJECT_ROOT": str(tmp_path),
                "WEBHOOK_BRIDGE_X": "no",
                "SINGER_SDK_LOG_CONFIG": "/gone/by/now.json",
            },
            "catalog": CATALOG,
            "files": {"LOGGING_CONF_FILE": "[loggers]\n"},
        },
        "loader": {
            "name": "target-duckdb",
            "executable": "/venv/bin/target-duckdb",
            "config": {"filepath": "w.duckdb"},
            "env": {},
            "files": {},
        },
    }
    return direct.Resolved(data, direct._stamp(data["watch"]), time.time())


def selected(catalog: dict) -> dict[str, bool]:
    return {
        s["tap_stream_id"]: next(m for m in s["metadata"] if not m["breadcrumb"])["metadata"]["selected"]
        for s in catalog["streams"]
    }


def test_select_filter_like_meltano():
    out = direct.select_streams(CATALOG, ["invoices", "invoice_lines"])
    assert selected(out) == {"invoices": True, "invoice_lines": True, "clients": False}
    assert selected(CATALOG)["clients"] is True  # the cached catalog is not touched
    assert direct.select_streams(CATALOG, None) is CATALOG  # a poll: the project's selection


def test_run_files_are_private_and_carry_the_run(tmp_path):
    r = resolved(tmp_path)
    run_dir = tmp_path / "data" / "direct" / "run-00000007"
    args = direct.write_run_files(
        run_dir,
        r,
        state={"singer_state": {"bookmarks": {"invoices": {}}}},
        record_ids={"invoices": [5]},
        event_received_at={"invoices": {"5": "t"}},
        select=["invoices", "invoice_lines"],
        account_ids=["ABC123"],
    )
    assert stat.S_IMODE(run_dir.stat().st_mode) == 0o700
    assert {stat.S_IMODE(p.stat().st_mode) for p in run_dir.iterdir()} == {0o600}
    tap = args["tap"]
    config = json.loads(Path(tap[tap.index("--config") + 1]).read_text())
    assert config["record_ids"] == {"invoices": [5]} and config["account_ids"] == ["ABC123"]
    assert config["event_received_at"] == {"invoices": {"5": "t"}} and config["client_id"] == "c"
    assert json.loads(Path(tap[tap.index("--state") + 1]).read_text()) == {"bookmarks": {"invoices": {}}}
    assert selected(json.loads(Path(tap[tap.index("--catalog") + 1]).read_text()))["clients"] is False
    assert json.loads(Path(args["target"][1]).read_text()) == {"filepath": "w.duckdb"}
    # a poll: none of a webhook run's settings, even if Meltano's config had them; no state yet
    poll = direct.write_run_files(tmp_path / "poll", r, state={})
    assert "--state" not in poll["tap"]
    poll_config = json.loads(Path(poll["tap"][1]).read_text())
    assert "record_ids" not in poll_config and "account_ids" not in poll_config


def test_supervisor_spec_per_resolution(tmp_path):
    r = resolved(tmp_path)
    for kind in ("extractor", "loader"):  # real console scripts of this interpreter
        script = tmp_path / f"{kind}-script"
        script.write_text(f"#!{sys.executable}\nimport sys\n")
        r.data[kind]["executable"] = str(script)
    spec_path = direct.write_warm_spec(
        tmp_path / "resolved-1",
        r,
        {"PYTHONPATH": "/x", "WEBHOOK_BRIDGE_TOKEN_ENCRYPTION_KEY": "secret"},
        pass_fd=9,
    )
    assert stat.S_IMODE(spec_path.parent.stat().st_mode) == 0o700
    assert {stat.S_IMODE(p.stat().st_mode) for p in spec_path.parent.iterdir()} == {0o600}
    spec = json.loads(spec_path.read_text())
    assert spec["pass_fd"] == 9 and spec["cwd"] == str(tmp_path)
    assert spec["tap"]["python"] == sys.executable and spec["tap"]["bootstrap"].endswith("warm_start.py")
    tap_env = spec["tap"]["env"]
    assert "WEBHOOK_BRIDGE_X" not in tap_env and "WEBHOOK_BRIDGE_TOKEN_ENCRYPTION_KEY" not in tap_env
    assert tap_env["MELTANO_JOB_TRIGGER"] == "webhook-bridge" and tap_env["PYTHONPATH"] == "/x"
    assert Path(tap_env["LOGGING_CONF_FILE"]).read_text() == "[loggers]\n"
    assert "SINGER_SDK_LOG_CONFIG" not in tap_env  # Meltano's copy is gone: the plugin's default logging


def test_resolution_goes_stale_when_the_project_changes(tmp_path):
    r = resolved(tmp_path)
    assert r.fresh()
    time.sleep(0.01)
    (tmp_path / ".env").write_text("TAP_FRESHBOOKS_START_DATE=2026-01-01\n")
    assert not r.fresh()


def test_meltano_interpreter_from_the_shebang(tmp_path):
    script = tmp_path / "meltano"
    script.write_text(f"#!{sys.executable}\nimport sys\n")
    assert direct.meltano_python(str(script)) == sys.executable
    script.write_text("#!/usr/bin/env python3\n")
    assert direct.meltano_python(str(script)) == "python3"
    script.write_text("#!/bin/sh\nexec something\n")
    with pytest.raises(direct.DirectUnavailable, match="not run by Python"):
        direct.meltano_python(str(script))


def test_post_load_command_declared_in_the_project(tmp_path):
    (tmp_path / "meltano.yml").write_text(
        textwrap.dedent("""\
        include_paths: ["./more/*.meltano.yml"]
        plugins:
          utilities:
          - name: freshbooks-looker
            commands: {post_load: {args: post-load}, refresh: {args: refresh}}
        """)
    )
    (tmp_path / "more").mkdir()
    (tmp_path / "more" / "x.meltano.yml").write_text("plugins:\n  utilities:\n  - name: hub-plugin\n")
    assert direct.undeclared_command(tmp_path, "freshbooks-looker", "post_load") is None
    assert direct.undeclared_command(tmp_path, "hub-plugin", "anything") is None
    assert "no command 'nope'" in direct.undeclared_command(tmp_path, "freshbooks-looker", "nope")
    assert "no plugin 'other'" in direct.undeclared_command(tmp_path, "other", "post_load")


def test_settings(tmp_path):
    s = make_settings(tmp_path)
    assert s.run_mode == "direct" and s.post_load_command == "freshbooks-looker:post_load"
    assert s.coalesce_window_seconds == 0.2  # the tests' own window (default 0.25)
    assert make_settings(tmp_path, run_mode="MELTANO").run_mode == "meltano"
    assert make_settings(tmp_path, post_load_command="").post_load_command is None
    assert make_settings(tmp_path, post_load_command="off").post_load_command is None
    assert make_settings(tmp_path, post_load_command="my-util:after").post_load_command == "my-util:after"
    with pytest.raises(SettingsError, match="WEBHOOK_BRIDGE_POST_LOAD_COMMAND"):
        make_settings(tmp_path, post_load_command="rm -rf /")
    with pytest.raises(SettingsError, match="WEBHOOK_BRIDGE_RUN_MODE"):
        make_settings(tmp_path, run_mode="docker")


# ------------------------------------------------------------------------------------------------
# the run supervisor, with two small Singer programs

# shaped like console scripts: imports at the top, the work under __main__
TAP = """\
import json, os, sys
def main():
    marker = os.environ.get("MARKER")
    if marker:
        open(marker, "w").close()
    print(json.dumps({"type": "SCHEMA", "stream": "s", "schema": {}, "key_properties": ["id"]}))
    print(json.dumps({"type": "RECORD", "stream": "s", "record": {"id": 1}}))
    print(json.dumps({"type": "STATE", "value": {"n": 1, "argv": sys.argv[1:]}}))
    return int(os.environ.get("TAP_EXIT", "0"))
if __name__ == "__main__":
    sys.exit(main())
"""
TARGET = """\
import json, sys
def main():
    for line in sys.stdin:
        msg = json.loads(line)
        if msg["type"] == "STATE":
            print(json.dumps(msg["value"]), flush=True)
    print("", flush=True)
    print("{}", flush=True)  # an empty state is not a state (Meltano ignores it too)
if __name__ == "__main__":
    sys.exit(main())
"""


def write_spec(tmp_path: Path, env: dict[str, str], script: str | None = None) -> Path:
    """The supervisor's spec file: tap and target run ``script`` in ``tmp_path`` (by default their own
    ``tap.py`` / ``target.py``) with ``env``, warm-started."""
    spec = tmp_path / "spec.json"
    spec.write_text(
        json.dumps(
            {
                "cwd": str(tmp_path),
                "pass_fd": None,
                **{
                    kind: {
                        "python": sys.executable,
                        "script": str(tmp_path / (script or f"{kind}.py")),
                        "bootstrap": str(direct.WARM_START),
                        "env": env,
                    }
                    for kind in ("tap", "target")
                },
            }
        )
    )
    return spec


def supervise(tmp_path: Path, answer: str, tap_exit: int = 0) -> tuple[dict, int]:
    (tmp_path / "tap.py").write_text(f"#!{sys.executable}\n" + TAP)
    (tmp_path / "target.py").write_text(f"#!{sys.executable}\n" + TARGET)
    spec = write_spec(tmp_path, {"TAP_EXIT": str(tap_exit)})
    proc = subprocess.Popen(
        [sys.executable, "-m", "webhook_bridge.meltano_pipeline", str(spec)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(BRIDGE_SRC)},
    )
    time.sleep(0.3)  # parked: the plugins imported themselves and wait
    proc.stdin.write(json.dumps({"tap": ["--x"], "target": ["--y"]}) + "\n")
    proc.stdin.flush()
    result = json.loads(proc.stdout.readline())
    proc.stdin.write(answer + "\n")
    proc.stdin.close()
    return result, proc.wait(30)


def test_supervisor_reports_the_last_state_and_waits_for_the_save(tmp_path):
    result, code = supervise(tmp_path, "saved")
    assert result == {"tap": 0, "target": 0, "state": {"n": 1, "argv": ["--x"]}} and code == 0


def test_supervisor_fails_when_the_state_was_not_saved_or_the_tap_failed(tmp_path):
    assert supervise(tmp_path, "failed")[1] == 1
    result, code = supervise(tmp_path, "saved", tap_exit=3)
    assert result["tap"] == 3 and result["state"]["n"] == 1 and code == 1  # the state still reported


def test_parked_supervisor_not_needed_ends_without_running_the_plugins(tmp_path):
    marker = tmp_path / "ran"
    (tmp_path / "tap.py").write_text(f"#!{sys.executable}\n" + TAP)
    spec = write_spec(tmp_path, {"MARKER": str(marker)}, script="tap.py")
    proc = subprocess.Popen(
        [sys.executable, "-m", "webhook_bridge.meltano_pipeline", str(spec)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(BRIDGE_SRC)},
    )
    time.sleep(0.3)
    proc.stdin.close()  # the bridge stopped: no run
    assert proc.wait(30) == 0 and proc.stdout.read() == b""
    assert not marker.exists()  # imported (as a module), never run as __main__


# ------------------------------------------------------------------------------------------------
# post-load steps (meltano mode: `meltano invoke <plugin>:<command>` through the fake meltano)


@pytest.fixture
def post_env(tmp_path, fake_cmd):
    (tmp_path / "meltano.yml").write_text(
        "plugins:\n  utilities:\n  - name: freshbooks-looker\n    commands: {post_load: {args: post-load}}\n"
    )
    e = Env(tmp_path, fake_cmd, run_mode="meltano", post_load_retry_seconds=1)
    yield e
    e.store.close()


def test_post_load_after_a_run_retried_until_it_passes_and_the_load_stays(post_env):
    fail_invoke = post_env.tmp / "fail-invoke"
    fail_invoke.write_text("")  # Looker is down: the post-load command fails, the load itself does not
    runner = post_env.runner(FAKE_MELTANO_FAIL_INVOKE_FILE=str(fail_invoke))
    post_env.enqueue(ev(1))

    def invocations(kind: str) -> list[dict]:
        return [r for r in post_env.runs() if r["argv"][:1] == [kind]]

    async def scenario() -> None:
        task = asyncio.create_task(runner.run_forever())
        try:
            while runner.post_load.failures < 2:
                await asyncio.sleep(0.05)
            # the load was done before the steps ran, and their failures did not undo it
            assert {e.status for e in post_env.store.events()} == {"done"}
            fail_invoke.unlink()
            while runner.post_load.failures:
                await asyncio.sleep(0.05)
        finally:
            runner.stop()
            await asyncio.wait_for(task, 30)

    asyncio.run(asyncio.wait_for(scenario(), 60))
    posts = invocations("invoke")
    assert all(p["argv"] == ["invoke", "freshbooks-looker:post_load"] for p in posts)
    outcomes = [p["outcome"] for p in posts]
    assert outcomes[-1] == "ok" and set(outcomes[:-1]) == {"failed"} and len(outcomes) >= 3
    assert [r["outcome"] for r in invocations("run")] == ["ok"]
    assert post_env.store.runs(limit=5)[0].status == "succeeded"  # never marked failed by the steps
    assert {e.status for e in post_env.store.events()} == {"done"}


def test_post_load_skipped_when_the_utility_is_not_in_the_project(tmp_path, fake_cmd):
    e = Env(tmp_path, fake_cmd, run_mode="meltano")  # tmp project: no meltano.yml
    e.enqueue(ev(2))
    runner = e.runner()
    asyncio.run(run_until(runner, lambda: e.store.stats()["done"] == 1))
    assert [r["argv"][0] for r in e.runs()] == ["run"] and runner.post_load.runs == 0
    e.store.close()


def test_post_load_off(tmp_path, fake_cmd):
    (tmp_path / "meltano.yml").write_text(
        "plugins:\n  utilities:\n  - name: freshbooks-looker\n    commands: {post_load: {args: post-load}}\n"
    )
    e = Env(tmp_path, fake_cmd, run_mode="meltano", post_load_command="")
    store = open_store(e.settings)
    store.enqueue(ev(3), time.time())
    store.close()
    runner = e.runner()
    asyncio.run(run_until(runner, lambda: e.store.stats()["done"] == 1))
    assert [r["argv"][0] for r in read_records(e.record)] == ["run"]
    e.store.close()
