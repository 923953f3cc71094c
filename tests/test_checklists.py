"""The "add a stream" checklist of docs/architecture.md, one test per step.

Each test fails naming the stream and the step it is missing, so adding a stream to the tap's
``STREAM_TYPES`` without the rest (emulator endpoint, webhook decision, LookML view, README row)
cannot pass CI. The "add a warehouse" checklist is tests/looker/test_dialects.py.
"""

from __future__ import annotations

import re
from pathlib import Path

import lkml
import pytest

from freshbooks_emulator.reports import REPORT_STREAMS
from freshbooks_emulator.streams import LINE_RIDERS, STREAMS
from tap_freshbooks.streams import RIDES_ALONG, STREAM_TYPES
from webhook_bridge.events import EVENT_STREAMS, POLL_ONLY

ROOT = Path(__file__).resolve().parent.parent
STREAMS_BY_NAME = {cls.name: cls for cls in STREAM_TYPES}
NAMES = sorted(STREAMS_BY_NAME)
AUDIT_COLUMNS = ("account_id", "id", "_fb_extracted_at", "_fb_trigger", "_fb_event_received_at")


def test_the_checklist_covers_every_stream() -> None:
    assert len(NAMES) == len(STREAM_TYPES), "two stream classes share a name"
    assert len(NAMES) >= 28


@pytest.mark.parametrize("name", NAMES)
def test_step_1_the_emulator_serves_it(name: str) -> None:
    """The emulator answers the stream's endpoint: tests and the demo never need FreshBooks."""
    if name in RIDES_ALONG:
        assert LINE_RIDERS.get(name) == RIDES_ALONG[name], (
            f"{name} rides along with {RIDES_ALONG[name]} in the tap but the emulator's LINE_RIDERS "
            "(tests/freshbooks_emulator/streams.py) does not say so"
        )
    elif name.startswith("report_"):
        assert name in REPORT_STREAMS, f"{name}: no report in tests/freshbooks_emulator/reports.py"
    else:
        assert name in STREAMS, f"{name}: no StreamSpec in tests/freshbooks_emulator/streams.py"


@pytest.mark.parametrize("name", NAMES)
def test_step_2_a_webhook_decision_is_written_down(name: str) -> None:
    """A webhook event refreshes it, or webhook_bridge/events.py's POLL_ONLY says why none does."""
    if name in RIDES_ALONG:
        carrier = RIDES_ALONG[name]
        assert name not in EVENT_STREAMS.values(), f"{name} rides along: map its carrier {carrier}"
        return
    by_event = [prefix for prefix, stream in EVENT_STREAMS.items() if stream == name]
    assert bool(by_event) != (name in POLL_ONLY), (
        f"{name}: add it to EVENT_STREAMS or to POLL_ONLY (with the reason) in "
        "webhook-bridge/webhook_bridge/events.py, not both"
    )
    # bill_payment and other_income events are UNCONFIRMED (freshbooks-api.md §7.5): the bridge
    # subscribes in case FreshBooks offers them, the emulator sends none. Where it does send one, the
    # bridge must map that very prefix.
    if name in STREAMS and STREAMS[name].event:
        assert STREAMS[name].event in by_event, (
            f"{name}: the bridge maps {by_event} but the emulator sends {STREAMS[name].event!r}"
        )


@pytest.mark.parametrize("name", NAMES)
def test_step_3_it_has_a_lookml_base_view(name: str) -> None:
    """looker/views/<stream>_base.view.lkml reads the stream's table (generate writes it)."""
    path = ROOT / "looker" / "views" / f"{name}_base.view.lkml"
    assert path.exists(), f"{name}: run `freshbooks-looker generate` to write {path.name}"
    parsed = lkml.load(path.read_text())
    tables = [view.get("sql_table_name", "") for view in parsed.get("views", [])]
    assert any(re.search(rf"\.{name}\b", table) for table in tables), f"{path.name} reads {tables}"


@pytest.mark.parametrize("name", NAMES)
def test_step_4_its_records_carry_the_audit_columns(name: str) -> None:
    properties = STREAMS_BY_NAME[name].schema["properties"]
    missing = [column for column in AUDIT_COLUMNS if column not in properties]
    assert not missing, f"{name}: schema lacks {missing}"


@pytest.mark.parametrize("name", NAMES)
def test_step_5_the_readme_documents_it(name: str) -> None:
    readme = (ROOT / "README.md").read_text()
    assert re.search(rf"^\| `{name}` \|", readme, re.M), f"{name}: add its row to README.md's Streams table"
