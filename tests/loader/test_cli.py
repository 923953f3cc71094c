"""target-duckdb-fast's command line: configuration and input errors end in one clear line and exit 1;
SDK BATCH messages load like the same records sent as RECORD messages."""

from __future__ import annotations

import gzip
import json
import subprocess
import typing as t
from pathlib import Path

import duckdb
import pytest

from loader.singer_io import FAST, MELTANO_CONFIG, read_warehouse, run_target, write_messages

SCHEMA = {
    "type": "SCHEMA",
    "stream": "clients",
    "schema": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "name": {"type": ["null", "string"]},
            "meta": {"type": "object"},
        },
    },
    "key_properties": ["id"],
}


def _run(
    tmp_path: Path, config: dict[str, t.Any] | None, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    argv = [str(FAST)]
    if config is not None:
        config_file = tmp_path / "config.json"
        config_file.write_text(json.dumps(config), encoding="utf-8")
        argv += ["--config", str(config_file)]
    return subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=120, check=False)


def _one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines[-1].startswith("target-duckdb-fast: ")
    return lines[-1]


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"default_target_schema": "freshbooks"}, "set 'filepath'"),
        ({"filepath": "x.duckdb"}, "set 'default_target_schema'"),
        (
            {"filepath": "x.duckdb", "default_target_schema": "f", "data_flattening_max_level": 2},
            "only 0 is supported",
        ),
        (
            {"filepath": "x.duckdb", "default_target_schema": "f", "batch_size_rows": "many"},
            "'batch_size_rows'",
        ),
        (None, "set 'filepath'"),
        (
            {"filepath": "x.duckdb", "default_target_schema": "f", "settings": {"no_such_option": "1"}},
            "DuckDB refused settings.no_such_option = '1'",
        ),
    ],
)
def test_a_config_error_is_one_line_naming_the_setting(
    tmp_path: Path, config: dict | None, expected: str
) -> None:
    proc = _run(tmp_path, config)
    line = _one_error_line(proc)
    assert expected in line and "fix the --config file" in line
    assert len(proc.stderr.strip().splitlines()) == 1
    assert proc.stdout == ""


def test_an_unreadable_config_file_is_one_line(tmp_path: Path) -> None:
    proc = subprocess.run(
        [str(FAST), "--config", str(tmp_path / "missing.json")], capture_output=True, text=True, check=False
    )
    assert "cannot read the config file" in _one_error_line(proc)


@pytest.mark.parametrize(
    ("messages", "expected"),
    [
        ([{**SCHEMA, "key_properties": []}], "no key_properties but primary_key_required is true"),
        ([{"type": "RECORD", "stream": "clients", "record": {"id": 1}}], "came before its SCHEMA"),
        (["not json"], "line 1 of the input is not a Singer JSON message"),
        ([SCHEMA, {"type": "SURPRISE", "stream": "clients"}], "unknown Singer message type 'SURPRISE'"),
        ([{**SCHEMA, "key_properties": ["missing"]}], "key properties ['missing'] are not in the schema"),
    ],
)
def test_a_bad_message_is_one_line(tmp_path: Path, messages: list[t.Any], expected: str) -> None:
    stdin = "".join((m if isinstance(m, str) else json.dumps(m)) + "\n" for m in messages)
    config = {**MELTANO_CONFIG, "filepath": str(tmp_path / "w.duckdb")}
    assert expected in _one_error_line(_run(tmp_path, config, stdin))


def test_about_lists_the_settings(tmp_path: Path) -> None:
    proc = subprocess.run([str(FAST), "--about"], capture_output=True, text=True, check=True)
    about = json.loads(proc.stdout)
    assert about["name"] == "target-duckdb-fast"
    assert {"filepath", "default_target_schema", "batch_size_rows", "max_batch_age_seconds"} <= set(
        about["settings"]
    )


def test_validate_records_warns_that_records_are_not_validated(tmp_path: Path) -> None:
    config = {**MELTANO_CONFIG, "filepath": str(tmp_path / "w.duckdb"), "validate_records": True}
    proc = _run(tmp_path, config, json.dumps(SCHEMA) + "\n")
    assert proc.returncode == 0, proc.stderr
    assert "records are not validated against their JSON schema" in proc.stderr


def test_a_batch_message_loads_like_the_same_record_messages(tmp_path: Path) -> None:
    records = [{"id": i % 4, "name": f"n{i}" if i % 3 else "", "meta": {"i": i}} for i in range(10)]
    files = []
    for part in range(2):
        path = tmp_path / f"batch-{part}.json.gz"
        with gzip.open(path, "wt", encoding="utf-8") as out:
            out.writelines(json.dumps(r) + "\n" for r in records[part * 5 : part * 5 + 5])
        files.append(path.as_uri())
    state = {"type": "STATE", "value": {"bookmarks": {"clients": {"v": 1}}}}
    batch = {
        "type": "BATCH",
        "stream": "clients",
        "encoding": {"format": "jsonl", "compression": "gzip"},
        "manifest": files,
    }
    as_batch = [SCHEMA, batch, state]
    as_records = [SCHEMA, *({"type": "RECORD", "stream": "clients", "record": r} for r in records), state]
    runs = {}
    for name, messages in (("batch", as_batch), ("records", as_records)):
        (tmp_path / name).mkdir()
        database = tmp_path / name / "warehouse.duckdb"
        runs[name] = run_target(
            FAST, write_messages(tmp_path / f"{name}.jsonl", messages), database, MELTANO_CONFIG, tmp_path
        )
        assert runs[name].returncode == 0, runs[name].stderr
        assert runs[name].states == [state["value"]]
    loaded = read_warehouse(tmp_path / "batch" / "warehouse.duckdb")
    assert loaded == read_warehouse(tmp_path / "records" / "warehouse.duckdb")
    con = duckdb.connect(str(tmp_path / "batch" / "warehouse.duckdb"), read_only=True)
    try:
        # the last record of each key wins, in file order across the manifest
        assert con.execute(
            "SELECT id, name, meta::VARCHAR FROM freshbooks.clients ORDER BY id"
        ).fetchall() == [
            (0, "n8", '{"i":8}'),
            (1, None, '{"i":9}'),
            (2, None, '{"i":6}'),
            (3, "n7", '{"i":7}'),
        ]
    finally:
        con.close()


def test_the_motherduck_token_never_appears_in_an_error(tmp_path: Path) -> None:
    config = {
        "filepath": str(tmp_path / "missing-dir" / "w.duckdb"),
        "token": "tok-do-not-print",
        "default_target_schema": "f",
    }
    proc = _run(tmp_path, config)
    line = _one_error_line(proc)
    assert "cannot open the DuckDB database" in line and "<token>" in line
    assert "tok-do-not-print" not in proc.stderr + proc.stdout


def test_a_batch_over_memory_limit_is_loaded_again_without_it_and_the_limit_comes_back(
    tmp_path: Path,
) -> None:
    """memory_limit is a target, not a wall: a batch that runs out of memory under it is rolled back,
    loaded again without the limit (a warning says so), and the next batch has the limit again."""
    records = [{"id": i, "name": "x" * 200, "meta": {"i": i}} for i in range(60)]
    messages = [SCHEMA]
    for part in range(2):
        messages += [
            {"type": "RECORD", "stream": "clients", "record": r} for r in records[part * 30 : part * 30 + 30]
        ]
        messages.append({"type": "STATE", "value": {"part": part}})
    source = write_messages(tmp_path / "messages.jsonl", messages)
    config = {**MELTANO_CONFIG, "batch_size_rows": 30}
    capped = {**config, "settings": {**config.get("settings", {}), "memory_limit": "4MB"}}
    runs = {}
    for name, settings in (("capped", capped), ("plain", config)):
        (tmp_path / name).mkdir()
        runs[name] = run_target(FAST, source, tmp_path / name / "warehouse.duckdb", settings, tmp_path)
        assert runs[name].returncode == 0, runs[name].stderr
        assert runs[name].states == [{"part": 0}, {"part": 1}]
    warnings = [
        line for line in runs["capped"].stderr.splitlines() if "loading it again without the limit" in line
    ]
    assert len(warnings) == 2, runs["capped"].stderr  # the limit was set again for the second batch
    assert "memory_limit 4MB" in warnings[0]
    assert "without the limit" not in runs["plain"].stderr
    assert read_warehouse(tmp_path / "capped" / "warehouse.duckdb") == read_warehouse(
        tmp_path / "plain" / "warehouse.duckdb"
    )
