"""Helpers for the loader tests: run a Singer target on a message file, and read a DuckDB warehouse back
in a form two loaders' warehouses can be compared in (tables, columns, keys, rows)."""

from __future__ import annotations

import json
import re
import subprocess
import typing as t
from pathlib import Path

import duckdb
import yaml

from conftest import ROOT

FAST = ROOT / ".venv" / "bin" / "target-duckdb-fast"
REFERENCE = ROOT / ".meltano" / "loaders" / "target-duckdb-pipelinewise" / "venv" / "bin" / "target-duckdb"

#: the settings meltano.yml gives target-duckdb, read from it (filepath is added per run)
MELTANO_CONFIG: dict[str, t.Any] = {
    key: value
    for key, value in next(
        p
        for p in yaml.safe_load((ROOT / "meltano.yml").read_text())["plugins"]["loaders"]
        if p["name"] == "target-duckdb"
    )["config"].items()
    if key != "filepath"
}

#: a versioned column's suffix (the minute it was renamed): normalised so two runs compare
_VERSION_SUFFIX = re.compile(r"_\d{8}_\d{4}$")


class TargetRun(t.NamedTuple):
    returncode: int
    states: list[t.Any]
    stderr: str


def write_messages(path: Path, messages: list[dict[str, t.Any]]) -> Path:
    path.write_text("".join(json.dumps(m) + "\n" for m in messages), encoding="utf-8")
    return path


def run_target(
    executable: Path, messages: Path, database: Path, config: dict[str, t.Any], tmp_path: Path
) -> TargetRun:
    """Run a target with `--config` on a message file; the states it printed, parsed."""
    if executable == REFERENCE:
        # DuckDB settings tune threads and memory, not what is loaded, and target-duckdb's DuckDB 1.0
        # does not know every one meltano.yml gives target-duckdb-fast
        config = {key: value for key, value in config.items() if key != "settings"}
    config_file = tmp_path / f"config-{executable.name}-{database.stem}.json"
    config_file.write_text(json.dumps({**config, "filepath": str(database)}), encoding="utf-8")
    with messages.open("rb") as stdin:
        proc = subprocess.run(
            [str(executable), "--config", str(config_file)],
            stdin=stdin,
            capture_output=True,
            timeout=600,
            check=False,
        )
    states = [json.loads(line) for line in proc.stdout.decode().splitlines() if line.strip()]
    return TargetRun(proc.returncode, states, proc.stderr.decode(errors="replace"))


def _normalise(name: str) -> str:
    return _VERSION_SUFFIX.sub("_<minute>", name)


class Warehouse(t.NamedTuple):
    tables: list[tuple[str, str, str]]
    columns: dict[str, list[tuple[str, str]]]
    keys: list[tuple[str, str, str, tuple[str, ...]]]
    rows: dict[str, list[tuple[t.Any, ...]]]


def read_warehouse(path: Path) -> Warehouse:
    """Everything a loader decided, with JSON values parsed and _sdc_batched_at reduced to 'set or not'."""
    catalog = path.stem
    con = duckdb.connect(str(path), read_only=True)
    try:
        tables = [
            (c, s, n)
            for c, s, n in con.execute(
                "SELECT table_catalog, table_schema, table_name FROM information_schema.tables "
                "WHERE table_catalog = ? ORDER BY ALL",
                [catalog],
            ).fetchall()
        ]
        columns: dict[str, list[tuple[str, str]]] = {}
        rows: dict[str, list[tuple[t.Any, ...]]] = {}
        for _, schema, table in tables:
            ref = f'"{catalog}"."{schema}"."{table}"'
            described = con.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_catalog = ? AND table_schema = ? AND table_name = ? ORDER BY ordinal_position",
                [catalog, schema, table],
            ).fetchall()
            columns[f"{schema}.{table}"] = [(_normalise(n), k) for n, k in described]
            values = []
            for row in con.execute(f"SELECT * FROM {ref}").fetchall():
                cells = []
                for (name, kind), cell in zip(described, row, strict=True):
                    if kind == "JSON" and cell is not None:
                        cell = json.loads(cell)
                    if name == "_sdc_batched_at":
                        cell = cell is not None
                    cells.append(json.dumps(cell, sort_keys=True, default=str))
                values.append(tuple(cells))
            rows[f"{schema}.{table}"] = sorted(values)
        keys = sorted(
            (s, tb, kind, tuple(cols))
            for s, tb, kind, cols in con.execute(
                "SELECT schema_name, table_name, constraint_type, constraint_column_names "
                "FROM duckdb_constraints() WHERE database_name = ?",
                [catalog],
            ).fetchall()
        )
        return Warehouse(tables, columns, keys, rows)
    finally:
        con.close()


def assert_same_warehouse(expected: Warehouse, actual: Warehouse) -> None:
    assert actual.tables == expected.tables
    assert actual.columns == expected.columns
    assert actual.keys == expected.keys
    for table, rows in expected.rows.items():
        names = [name for name, _ in expected.columns[table]]
        missing = [dict(zip(names, row, strict=True)) for row in rows if row not in actual.rows[table]]
        extra = [dict(zip(names, row, strict=True)) for row in actual.rows[table] if row not in rows]
        assert actual.rows[table] == rows, f"{table}: expected rows {missing}, loaded instead {extra}"
