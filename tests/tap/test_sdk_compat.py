"""The singer-sdk private API this tap relies on (sdk_compat.py) is still there and still behaves.

If an SDK upgrade renames, removes or changes one of these, this fails before exactly-once delivery
silently breaks.
"""

from __future__ import annotations

import importlib
import inspect
import itertools

import pytest
from singer_sdk.streams import Stream
from singer_sdk.streams._state import StreamStateManager

from conftest import run_tap, tap_config
from tap_freshbooks import sdk_compat
from tap_freshbooks.tap import TapFreshBooks


def _owner(dotted: str) -> type:
    module, _, name = dotted.rpartition(".")
    return getattr(importlib.import_module(module), name)


@pytest.mark.parametrize(("owner", "member"), sdk_compat.PRIVATE_MEMBERS)
def test_private_member_exists(owner: str, member: str) -> None:
    cls = _owner(owner)
    if member in {
        "_state_manager",
        "_stream_version",
        "_state_writer",
    }:  # instance attributes set in __init__
        assert f"self.{member}" in inspect.getsource(cls.__init__)
        return
    assert callable(getattr(cls, member, None)), f"{owner}.{member} is gone"


def test_signatures_are_the_ones_relied_on() -> None:
    assert list(inspect.signature(Stream._write_record_message).parameters) == ["self", "record"]
    assert list(inspect.signature(Stream._write_batch_message).parameters) == ["self", "encoding", "manifest"]
    assert list(inspect.signature(Stream._write_schema_message).parameters) == ["self"]
    assert list(inspect.signature(Stream._generate_record_messages).parameters) == ["self", "record"]
    params = inspect.signature(Stream._increment_stream_state).parameters
    assert list(params) == ["self", "latest_record", "context"]
    init = inspect.signature(StreamStateManager.__init__).parameters
    assert {
        "tap_name",
        "stream_name",
        "tap_state",
        "state_partitioning_keys",
        "is_sorted",
        "check_sorted",
    } <= set(init)
    assert list(inspect.signature(StreamStateManager.finalize_state).parameters) == ["self", "state"]
    # The SDK still reaches state through the `state_manager` property we override.
    assert isinstance(inspect.getattr_static(Stream, "state_manager"), property)


def test_every_stream_uses_the_owned_state_manager(emulator, tmp_path) -> None:
    tap = TapFreshBooks(config=tap_config(emulator, tmp_path), parse_env_config=False)
    for stream in tap.streams.values():
        assert isinstance(stream.state_manager, sdk_compat.OwnedStateManager), stream.name


def test_the_sdk_no_longer_writes_its_own_bookkeeping(emulator, tmp_path) -> None:
    run = run_tap(tap_config(emulator, tmp_path))
    for stream_state in run.state["bookmarks"].values():
        for part in stream_state.get("partitions", [stream_state]):
            assert not {"progress_markers", "starting_replication_value", "replication_key_signpost"} & set(
                part
            )


def test_finalize_drops_foreign_progress_markers_without_promoting_them() -> None:
    manager = sdk_compat.OwnedStateManager(stream_name="invoices", tap_state={})
    state = {
        "replication_key": "updated",
        "replication_key_value": "2026-06-01T00:00:00Z",
        "progress_markers": {"replication_key": "updated", "replication_key_value": "2020-01-01T00:00:00Z"},
    }
    manager.finalize_state(state)
    assert state == {"replication_key": "updated", "replication_key_value": "2026-06-01T00:00:00Z"}


def test_state_lines_are_the_sdks_byte_for_byte_and_written_once_per_change(capsysbinary) -> None:
    """EncodedStateWriter writes what the SDK's StateWriter writes, without its deep copies."""
    from decimal import Decimal

    from singer_sdk.contrib.msgspec import MsgSpecWriter
    from singer_sdk.helpers._state import StateWriter
    from singer_sdk.singerlib import StateMessage

    states = [
        {"bookmarks": {}},
        {"bookmarks": {}},  # unchanged: not written again
        {"bookmarks": {"invoices": {"fb_state": {"seen": {"1": ["ab", "2026-01-01T00:00:00Z"]}, "n": None}}}},
        {"bookmarks": {"invoices": {"fb_state": {"amount": Decimal("1.10"), "text": "é \u2028 \n"}}}},
        {"bookmarks": {"invoices": {"fb_state": {"amount": Decimal("1.10"), "text": "é \u2028 \n"}}}},
    ]
    sdk = StateWriter(MsgSpecWriter())
    for state in states:
        sdk.write_state(state)
    expected = capsysbinary.readouterr().out
    ours = sdk_compat.EncodedStateWriter(sdk_compat.BufferedMsgSpecWriter())
    for state in states:
        ours.write_state(state)
    assert capsysbinary.readouterr().out == expected
    assert expected.count(b"\n") == 3
    message = sdk_compat.BufferedMsgSpecWriter().serialize_message(StateMessage(value=states[3]))
    assert bytes(message) == expected.splitlines(keepends=True)[-1]


def test_a_run_writes_its_states_through_the_encoded_writer(emulator, tmp_path) -> None:
    run = run_tap(tap_config(emulator, tmp_path))
    states = [m for m in run.messages if m["type"] == "STATE"]
    assert states and states[0]["value"] == {"bookmarks": {}}
    assert all(a["value"] != b["value"] for a, b in itertools.pairwise(states))  # one per change
    tap = TapFreshBooks(config=tap_config(emulator, tmp_path), validate_config=False)
    sdk_compat.use_encoded_state_writer(tap)
    assert isinstance(tap.state_writer, sdk_compat.EncodedStateWriter)
