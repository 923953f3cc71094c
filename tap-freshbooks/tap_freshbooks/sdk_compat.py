"""Every use of singer-sdk's private API, in one place.

singer-sdk 0.54 has no public hook for two things this tap needs, so it uses these private
members, and only here. ``tests/tap/test_sdk_compat.py`` checks that each one still exists with the
signature and the behaviour relied on, so an SDK upgrade that changes them fails a test instead of
silently breaking exactly-once delivery.

1. **State.** The SDK moves bookmarks on its own: for an unsorted stream it keeps progress markers
   and, when the sync finishes, promotes the newest replication-key value *emitted* to the bookmark
   (forwards in a ``record_ids`` run, backwards in a run that emitted only old records), and it
   raises ``KeyError`` deep inside when a record lacks its replication key. The tap owns its state
   (``state.py``), so ``OwnedStateManager`` turns those SDK steps off:
   ``StreamStateManager.{write_starting_replication_value, write_replication_key_signpost,
   increment_state, finalize_state}`` and ``Stream._increment_stream_state``.
2. **Riders.** ``invoice_lines`` arrive inside invoice responses. They leave through their own
   stream's maps and messages (``Stream._write_record_message`` / ``_write_batch_message`` /
   ``_write_schema_message``) in the same run and before the invoices' STATE message, so a crash
   can never record an invoice as delivered while its lines were not.
"""

from __future__ import annotations

import typing as t

from singer_sdk.streams._state import StreamStateManager

if t.TYPE_CHECKING:
    from singer_sdk.batch import BaseBatchFileEncoding
    from singer_sdk.streams import Stream

#: (owner, member) pairs this module relies on; the compat test checks every one
PRIVATE_MEMBERS: tuple[tuple[str, str], ...] = (
    ("singer_sdk.streams._state.StreamStateManager", "write_starting_replication_value"),
    ("singer_sdk.streams._state.StreamStateManager", "write_replication_key_signpost"),
    ("singer_sdk.streams._state.StreamStateManager", "increment_state"),
    ("singer_sdk.streams._state.StreamStateManager", "finalize_state"),
    ("singer_sdk.streams.core.Stream", "_state_manager"),
    ("singer_sdk.streams.core.Stream", "_increment_stream_state"),
    ("singer_sdk.streams.core.Stream", "_write_record_message"),
    ("singer_sdk.streams.core.Stream", "_write_batch_message"),
    ("singer_sdk.streams.core.Stream", "_write_schema_message"),
)


class OwnedStateManager(StreamStateManager):
    """The SDK's state manager with every step that would move a bookmark turned off."""

    def write_starting_replication_value(self, *args: t.Any, **kwargs: t.Any) -> None:
        """Off: the window comes from ``fb_state`` (incremental.py)."""

    def write_replication_key_signpost(self, *args: t.Any, **kwargs: t.Any) -> None:
        """Off: no signpost; bookmarks are set by the emit loop only."""

    def increment_state(self, *args: t.Any, **kwargs: t.Any) -> None:
        """Off: no progress markers (and no KeyError on a record without its replication key)."""

    def finalize_state(self, state: dict | None = None) -> None:
        """Never promote progress markers; drop any a foreign state carried; mark for flush."""
        if state:
            state.pop("progress_markers", None)
        self.is_flushed = False


class OwnedStateMixin:
    """Mixed into the base stream: the SDK gets an ``OwnedStateManager`` and never increments."""

    def _owned_state_manager(self) -> StreamStateManager:
        stream = t.cast("Stream", self)
        if not isinstance(stream._state_manager, OwnedStateManager):  # noqa: SLF001
            stream._state_manager = OwnedStateManager(  # noqa: SLF001
                tap_name=stream.tap_name,
                stream_name=stream.name,
                tap_state=stream.tap_state,
                state_partitioning_keys=stream.state_partitioning_keys,
                is_sorted=False,
                check_sorted=False,
            )
        return stream._state_manager  # noqa: SLF001

    @property
    def state_manager(self) -> StreamStateManager:
        return self._owned_state_manager()

    def _increment_stream_state(self, latest_record: t.Any, *, context: t.Any = None) -> None:
        """Off: the SDK would raise for an INCREMENTAL stream without a replication key."""


def write_schema(stream: Stream) -> None:
    """SCHEMA message(s) of a rider stream, through its maps."""
    stream._write_schema_message()  # noqa: SLF001


def write_record(stream: Stream, record: dict) -> None:
    """RECORD message(s) of a rider stream, through its maps (selection, conformance, aliases)."""
    stream._write_record_message(record)  # noqa: SLF001


def write_batch(stream: Stream, encoding: BaseBatchFileEncoding, manifest: list[str]) -> None:
    """BATCH message(s) of a rider stream."""
    stream._write_batch_message(encoding=encoding, manifest=manifest)  # noqa: SLF001
