"""target-duckdb-fast loads exactly the tables target-duckdb 0.8.0 loads from the same messages.

Both loaders run on the same Singer messages with the same config into two DuckDB files; the files must
hold the same tables, columns (name, type, order), primary keys and rows, and the loaders must end on the
same STATE. JSON values are compared parsed (target-duckdb keeps json.dumps' spacing, the new loader
DuckDB's minified text) and _sdc_batched_at only as set/unset (each loader stamps its own clock).
"""

from __future__ import annotations

import typing as t
from pathlib import Path

import pytest

from loader.messages import (
    deletion_messages,
    equivalence_messages,
    odd_value_messages,
    schema_form_messages,
    type_change_messages,
)
from loader.singer_io import (
    FAST,
    MELTANO_CONFIG,
    REFERENCE,
    assert_same_warehouse,
    read_warehouse,
    run_target,
    write_messages,
)

pytestmark = pytest.mark.skipif(
    not REFERENCE.exists(), reason=f"target-duckdb 0.8.0 is not installed ({REFERENCE}): run scripts/setup"
)


def load_both(tmp_path: Path, messages: list[dict[str, t.Any]], config: dict[str, t.Any], name: str) -> None:
    """Run both loaders on the messages into tmp_path/{ref,fast}/warehouse.duckdb; same states and tables."""
    source = write_messages(tmp_path / f"{name}.jsonl", messages)
    runs = {}
    for label, executable in (("ref", REFERENCE), ("fast", FAST)):
        (tmp_path / label).mkdir(exist_ok=True)
        runs[label] = run_target(executable, source, tmp_path / label / "warehouse.duckdb", config, tmp_path)
        assert runs[label].returncode == 0, runs[label].stderr[-3000:]
    expected_state = next(m["value"] for m in reversed(messages) if m["type"] == "STATE")
    assert runs["ref"].states[-1] == expected_state
    assert runs["fast"].states[-1] == expected_state
    # every state the new loader emits is one the tap sent (target-duckdb may emit per-stream merges)
    sent = [m["value"] for m in messages if m["type"] == "STATE"]
    assert all(state in sent for state in runs["fast"].states)
    reference = read_warehouse(tmp_path / "ref" / "warehouse.duckdb")
    assert_same_warehouse(reference, read_warehouse(tmp_path / "fast" / "warehouse.duckdb"))


def test_same_tables_as_target_duckdb_in_two_batches_and_on_a_rerun(tmp_path: Path) -> None:
    config = {**MELTANO_CONFIG, "batch_size_rows": 5}
    load_both(tmp_path, equivalence_messages(run=1), config, "run1")
    first = read_warehouse(tmp_path / "fast" / "warehouse.duckdb")
    assert set(first.rows) == {"freshbooks.clients", "freshbooks.invoices", "freshbooks.line_items"}
    assert len(first.rows["freshbooks.clients"]) == 11  # 8 + 3 keys: the duplicate key stayed one row
    # sorted by property name before lower-casing: "Notes_HTML" sorts before "_sdc_*"
    assert first.columns["freshbooks.clients"][:4] == [
        ("notes_html", "VARCHAR"),
        ("_sdc_batched_at", "TIMESTAMP"),
        ("_sdc_deleted_at", "VARCHAR"),
        ("_sdc_extracted_at", "TIMESTAMP"),
    ]
    assert first.columns["freshbooks.clients"][-1] == ("website", "VARCHAR")  # added by the second SCHEMA
    # the second run upserts: changed values, new keys, no duplicates
    load_both(tmp_path, equivalence_messages(run=2), config, "run2")
    second = read_warehouse(tmp_path / "fast" / "warehouse.duckdb")
    assert len(second.rows["freshbooks.clients"]) == 16  # keys 1-13 and 20-22
    assert second.rows["freshbooks.invoices"] != first.rows["freshbooks.invoices"]


def test_same_tables_with_the_meltano_settings_in_one_batch(tmp_path: Path) -> None:
    load_both(tmp_path, equivalence_messages(run=1), MELTANO_CONFIG, "one-batch")


def test_same_tables_with_hard_delete_and_a_stream_without_keys(tmp_path: Path) -> None:
    config = {
        **MELTANO_CONFIG,
        "hard_delete": True,
        "add_metadata_columns": False,
        "primary_key_required": False,
    }
    load_both(tmp_path, deletion_messages(), config, "deletes")
    loaded = read_warehouse(tmp_path / "fast" / "warehouse.duckdb")
    assert len(loaded.rows["freshbooks.clients"]) == 5  # client 4 was deleted
    assert len(loaded.rows["freshbooks.events"]) == 7  # no keys: every record is a row


def test_same_versioned_column_when_a_property_changes_type(tmp_path: Path) -> None:
    load_both(tmp_path, type_change_messages(), MELTANO_CONFIG, "type-change")
    columns = read_warehouse(tmp_path / "fast" / "warehouse.duckdb").columns["freshbooks.clients"]
    # renamed in place, the new type added at the end
    assert ("code_<minute>", "VARCHAR") in columns
    assert columns[-1] == ("code", "HUGEINT")


def test_same_values_when_a_value_does_not_match_its_property_type(tmp_path: Path) -> None:
    load_both(tmp_path, odd_value_messages(), MELTANO_CONFIG, "odd-values")
    assert len(read_warehouse(tmp_path / "fast" / "warehouse.duckdb").rows["freshbooks.odd_values"]) == 42


def test_a_one_record_all_text_stream_loads_its_one_row(tmp_path: Path) -> None:
    """The batch DuckDB 1.1+'s CSV sniffer dropped for target-duckdb (its header guess) loads here too."""
    text = {"type": ["string"]}
    messages = [
        {
            "type": "SCHEMA",
            "stream": "services",
            "key_properties": ["account_id", "id"],
            "schema": {"type": "object", "properties": {"account_id": text, "id": text, "name": text}},
        },
        {
            "type": "RECORD",
            "stream": "services",
            "record": {"account_id": "zK3pQ7", "id": "1", "name": "Design"},
        },
        {"type": "STATE", "value": {}},
    ]
    load_both(tmp_path, messages, MELTANO_CONFIG, "one-record")
    rows = read_warehouse(tmp_path / "fast" / "warehouse.duckdb").rows["freshbooks.services"]
    assert len(rows) == 1 and '"zK3pQ7"' in rows[0] and '"Design"' in rows[0]


def test_same_column_types_for_every_property_form(tmp_path: Path) -> None:
    load_both(tmp_path, schema_form_messages(), MELTANO_CONFIG, "forms")
    columns = dict(read_warehouse(tmp_path / "fast" / "warehouse.duckdb").columns["freshbooks.forms"])
    assert "one_of_integer" not in columns and "untyped" not in columns
    assert (columns["huge_max"], columns["max_smallint"], columns["max_integer"]) == (
        "VARCHAR",
        "SMALLINT",
        "INTEGER",
    )
    assert (columns["int_or_number"], columns["one_of_array"], columns["time_only"]) == (
        "DOUBLE",
        "JSON",
        "TIME",
    )
