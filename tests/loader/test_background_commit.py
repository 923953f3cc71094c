"""A full batch is committed in the background while the loader keeps reading.

The loader hands a full batch to its committer thread and goes on reading into new buffer files, so the
process writing to it (the tap, through Meltano) is not held up while DuckDB works. These tests talk to
the loader through a live pipe: a batch's STATE comes back while the input is still open, a failed
background commit stops the run before any later state, and commits keep their order.
"""

from __future__ import annotations

import json
import select
import subprocess
import time
import typing as t
from pathlib import Path

import duckdb
import pytest

from loader.singer_io import FAST

SCHEMA = {
    "type": "SCHEMA",
    "stream": "items",
    "key_properties": ["id"],
    "schema": {"properties": {"id": {"type": "integer"}, "qty": {"type": ["integer", "null"]}}},
}


def _line(message: dict[str, t.Any]) -> bytes:
    return (json.dumps(message) + "\n").encode()


def _records(first: int, last: int, qty: t.Any = 1) -> bytes:
    return b"".join(
        _line({"type": "RECORD", "stream": "items", "record": {"id": i, "qty": qty}})
        for i in range(first, last + 1)
    )


def _state(n: int) -> bytes:
    return _line({"type": "STATE", "value": {"n": n}})


def _start(tmp_path: Path, batch_size_rows: int) -> tuple[subprocess.Popen[bytes], Path]:
    database = tmp_path / "warehouse.duckdb"
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps(
            {"filepath": str(database), "default_target_schema": "s", "batch_size_rows": batch_size_rows}
        )
    )
    proc = subprocess.Popen(
        [str(FAST), "--config", str(config)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    return proc, database


def _read_state(proc: subprocess.Popen[bytes], timeout: float) -> t.Any:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    assert ready, f"no STATE within {timeout} s"
    return json.loads(proc.stdout.readline())


def test_a_full_batch_is_committed_and_its_state_sent_while_the_input_is_still_open(tmp_path: Path) -> None:
    proc, database = _start(tmp_path, batch_size_rows=100)
    assert proc.stdin is not None
    try:
        proc.stdin.write(_line(SCHEMA) + _records(1, 60) + _state(1) + _records(61, 100) + _state(2))
        proc.stdin.flush()
        # the 100th record filled the batch: committed in the background with the state before it
        assert _read_state(proc, timeout=60) == {"n": 1}
        # more records arrive while that commit is done; the input is still open
        proc.stdin.write(_records(101, 150) + _state(3))
        proc.stdin.flush()
        time.sleep(0.2)
        assert proc.poll() is None
        proc.stdin.close()
        assert _read_state(proc, timeout=60) == {"n": 3}  # the end: the rest, then the latest state
        assert proc.wait(timeout=60) == 0
    finally:
        proc.kill()
    con = duckdb.connect(str(database), read_only=True)
    try:
        assert con.execute(
            "select count(*), count(distinct id), max(id) from warehouse.s.items"
        ).fetchone() == (
            150,
            150,
            150,
        )
    finally:
        con.close()


def test_a_failed_background_commit_stops_the_run_before_any_later_state(tmp_path: Path) -> None:
    proc, database = _start(tmp_path, batch_size_rows=50)
    assert proc.stdin is not None
    good = _records(1, 49) + _state(1) + _records(50, 50)  # batch 1 (with state 1): commits
    bad = _records(51, 99) + _line(
        {"type": "RECORD", "stream": "items", "record": {"id": 100, "qty": "not a number"}}
    )  # batch 2 fills with a value its column refuses: that commit fails in the background
    later = _state(2) + _records(101, 120) + _state(3)
    out, err = proc.communicate(_line(SCHEMA) + good + bad + later, timeout=120)
    assert proc.returncode == 1
    states = [json.loads(line) for line in out.decode().splitlines()]
    assert states == [{"n": 1}], "only the committed batch's state"
    assert "rolled back" in err.decode() and "Traceback" not in err.decode()
    con = duckdb.connect(str(database), read_only=True)
    try:
        ids = [r[0] for r in con.execute("select id from warehouse.s.items order by id").fetchall()]
    finally:
        con.close()
    assert ids == list(range(1, 51))


@pytest.mark.parametrize("batch_size_rows", [7, 1000])
def test_commits_keep_their_order_and_the_last_value_per_key_wins(
    tmp_path: Path, batch_size_rows: int
) -> None:
    proc, database = _start(tmp_path, batch_size_rows=batch_size_rows)
    messages = _line(SCHEMA)
    for round_ in range(1, 6):  # the same 30 keys, five times, a state after each round
        messages += _records(1, 30, qty=round_) + _state(round_)
    out, err = proc.communicate(messages, timeout=120)
    assert proc.returncode == 0, err.decode()
    states = [json.loads(line)["n"] for line in out.decode().splitlines()]
    assert states == sorted(states) and states[-1] == 5
    con = duckdb.connect(str(database), read_only=True)
    try:
        assert con.execute("select count(*), min(qty), max(qty) from warehouse.s.items").fetchone() == (
            30,
            5,
            5,
        )
    finally:
        con.close()
