"""The tap's real Singer output (FreshBooks emulator) loads into the same tables with both loaders."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest

from conftest import tap_config
from loader.singer_io import (
    FAST,
    MELTANO_CONFIG,
    REFERENCE,
    assert_same_warehouse,
    read_warehouse,
    run_target,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not REFERENCE.exists(), reason=f"target-duckdb 0.8.0 is not installed ({REFERENCE})"),
]


def test_the_taps_output_loads_the_same_tables_with_both_loaders(emulator, tmp_path: Path) -> None:
    from tap_freshbooks.tap import TapFreshBooks

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        TapFreshBooks(config=tap_config(emulator, tmp_path), parse_env_config=False).sync_all()
    messages = tmp_path / "tap.jsonl"
    messages.write_text(out.getvalue(), encoding="utf-8")
    sent = [json.loads(line) for line in out.getvalue().splitlines()]
    assert sum(m["type"] == "RECORD" for m in sent) > 50

    for label, executable in (("ref", REFERENCE), ("fast", FAST)):
        (tmp_path / label).mkdir()
        run = run_target(
            executable, messages, tmp_path / label / "warehouse.duckdb", MELTANO_CONFIG, tmp_path
        )
        assert run.returncode == 0, run.stderr[-3000:]
        assert run.states[-1] == next(m["value"] for m in reversed(sent) if m["type"] == "STATE")
    reference = read_warehouse(tmp_path / "ref" / "warehouse.duckdb")
    assert len(reference.tables) > 5
    assert_same_warehouse(reference, read_warehouse(tmp_path / "fast" / "warehouse.duckdb"))
