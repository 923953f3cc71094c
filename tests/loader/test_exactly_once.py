"""A STATE leaves target-duckdb-fast only after every record before it is committed, and a failed batch
leaves nothing behind: a rerun from the last emitted state loads each row exactly once."""

from __future__ import annotations

import typing as t
from pathlib import Path

import duckdb

from loader.singer_io import FAST, MELTANO_CONFIG, run_target, write_messages

SCHEMA = {
    "type": "SCHEMA",
    "stream": "numbers",
    "schema": {
        "type": "object",
        "properties": {"id": {"type": "integer"}, "n": {"type": ["null", "integer"]}},
    },
    "key_properties": ["id"],
}


def _messages(bad: str | None) -> list[dict[str, t.Any]]:
    """Three batches of three records (batch_size_rows 3), a STATE after each; record 8 maybe unloadable."""
    messages: list[dict[str, t.Any]] = [SCHEMA]
    for part in range(3):
        for i in range(1, 4):
            key = part * 3 + i
            value: t.Any = bad if (bad is not None and key == 8) else key * 10
            messages.append({"type": "RECORD", "stream": "numbers", "record": {"id": key, "n": value}})
        messages.append({"type": "STATE", "value": {"bookmarks": {"numbers": {"last": key}}}})
    return messages


def _rows(path: Path) -> list[tuple[int, int]]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return [
            (int(a), int(b))
            for a, b in con.execute("SELECT id, n FROM freshbooks.numbers ORDER BY id").fetchall()
        ]
    finally:
        con.close()


def test_a_failed_batch_emits_no_state_and_the_rerun_loads_each_row_once(tmp_path: Path) -> None:
    (tmp_path / "buffers").mkdir()
    config = {**MELTANO_CONFIG, "batch_size_rows": 3, "temp_dir": str(tmp_path / "buffers")}
    database = tmp_path / "warehouse.duckdb"
    failed = run_target(
        FAST, write_messages(tmp_path / "bad.jsonl", _messages("abc")), database, config, tmp_path
    )

    assert failed.returncode == 1
    lines = [line for line in failed.stderr.splitlines() if line.strip()]
    assert "Traceback" not in failed.stderr
    assert lines[-1].startswith("target-duckdb-fast: loading stream 'numbers' into")
    assert '"freshbooks"."numbers"' in lines[-1] and "abc" in lines[-1] and "rolled back" in lines[-1]
    # batches flush at records 3 and 6; the state before record 6's flush covers records 1-3 only.
    # The third batch (records 7-9) failed: its rows are absent and no state after it was written.
    assert failed.states == [{"bookmarks": {"numbers": {"last": 3}}}]
    assert _rows(database) == [(k, k * 10) for k in range(1, 7)]
    assert list((tmp_path / "buffers").iterdir()) == []  # the buffer files went with the failed run

    fixed = run_target(
        FAST, write_messages(tmp_path / "fixed.jsonl", _messages(None)), database, config, tmp_path
    )
    assert fixed.returncode == 0, fixed.stderr
    assert fixed.states[-1] == {"bookmarks": {"numbers": {"last": 9}}}
    assert _rows(database) == [(k, k * 10) for k in range(1, 10)]


def test_a_state_is_emitted_only_after_its_records_are_committed(tmp_path: Path) -> None:
    """Each emitted state: every record sent before it is in the table at that point (checked afterwards
    by counting: the n-th state line follows the commit of all records before the state it repeats)."""
    config = {**MELTANO_CONFIG, "batch_size_rows": 2}
    run = run_target(
        FAST, write_messages(tmp_path / "m.jsonl", _messages(None)), tmp_path / "w.duckdb", config, tmp_path
    )
    assert run.returncode == 0, run.stderr
    # flushes after records 2, 4, 6, 8 and at the end: the latest state received by then is emitted
    assert run.states == [
        {"bookmarks": {"numbers": {"last": 3}}},  # at record 4's flush: state 3 (records 1-3 committed)
        {"bookmarks": {"numbers": {"last": 6}}},  # at record 8's flush
        {"bookmarks": {"numbers": {"last": 9}}},  # at the end
    ]


def test_a_state_flushes_buffered_records_older_than_max_batch_age_seconds(tmp_path: Path) -> None:
    config = {**MELTANO_CONFIG, "max_batch_age_seconds": 0}
    run = run_target(
        FAST, write_messages(tmp_path / "m.jsonl", _messages(None)), tmp_path / "w.duckdb", config, tmp_path
    )
    assert run.returncode == 0, run.stderr
    # every STATE found records buffered "too long": each is flushed and the state emitted right away
    assert run.states == [{"bookmarks": {"numbers": {"last": k}}} for k in (3, 6, 9)]
    assert run.stderr.count("stream numbers: 3 records") == 3
