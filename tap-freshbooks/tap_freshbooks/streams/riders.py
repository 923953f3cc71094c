"""Streams whose records arrive inside another stream's responses ("riders"), declared once.

A carrier declares its rider on its own class (``lines_stream = lines_rider("invoice", ...)``:
"invoices carry invoice_lines"). Everything else is derived from that one declaration: the rider's
place in the stream list (``with_riders``), ``RIDES_ALONG`` (which the tap's selection and the
reconciler read), the ``include[]=lines`` request, and the rider's SCHEMA / RECORD / BATCH
messages, written as the carrier emits its records. The bridge knows none
of it: it sends ``record_ids`` for the carrier, and the tap adds the riders.
"""

from __future__ import annotations

import sys
import typing as t

from singer_sdk.batch import Batcher

from tap_freshbooks import sdk_compat
from tap_freshbooks.schema_objects import integer, schema, string, timestamp
from tap_freshbooks.streams.base import FreshBooksStream

if t.TYPE_CHECKING:
    from singer_sdk import typing as th
    from singer_sdk.batch import BaseBatchFileEncoding
    from singer_sdk.helpers._batch import BatchConfig
    from singer_sdk.helpers.types import Context


def rider_schema(parent: str, line_properties: t.Sequence[th.Property[t.Any]]) -> dict[str, t.Any]:
    """A rider's schema: the parent's id, ``updated`` and ``vis_state`` at read time, then the line."""
    return schema(
        string(f"{parent}_id", f"Parent {parent} id"),
        timestamp(f"{parent}_updated", f"The parent {parent}'s `updated` when this line was read"),
        integer(f"{parent}_vis_state", f"The parent {parent}'s vis_state"),
        *line_properties,
    )


class LinesRider(FreshBooksStream):
    """Lines, emitted exactly when their parent is, from the same response.

    Not an SDK child stream on purpose: a child syncs once per parent record, and each sync
    re-sends a SCHEMA message (which makes pipelinewise targets flush one-row batches) and a STATE
    message carrying the whole tap state. Here the parent stream hands each record's lines to
    ``emit_for_parent`` instead; this stream's own sync emits nothing.

    Each line carries ``<parent>_updated``: lines removed from a parent stay in the warehouse with
    an older ``<parent>_updated``; join lines on (parent id, parent updated) to see the current set
    (the LookML does for invoices).
    """

    #: the singular used in column names (``invoice`` -> invoice_id, invoice_updated)
    parent: t.ClassVar[str] = ""
    #: the line's own properties; the schema adds the parent's id, ``updated`` and ``vis_state``
    line_properties: t.ClassVar[t.Sequence[th.Property[t.Any]]] = ()
    single_path = None
    eastern_fields = ("updated",)

    def __init_subclass__(cls, **kwargs: t.Any) -> None:
        """A rider's key and schema follow from its ``parent`` and ``line_properties``."""
        super().__init_subclass__(**kwargs)
        if cls.parent:
            cls.primary_keys = ["account_id", f"{cls.parent}_id", "id"]
            # a class attribute, as every stream declares it (mypy sees the SDK's property)
            setattr(cls, "schema", rider_schema(cls.parent, cls.line_properties))  # noqa: B010

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        self._schema_sent = False
        self.emitted = 0
        #: batch mode: lines collected until the batch of their parents is written
        self.spool: list[dict[str, t.Any]] | None = None

    @property
    def partitions(self) -> list[dict[str, t.Any]] | None:
        return None

    def get_records(self, context: Context | None) -> t.Iterable[dict[str, t.Any]]:  # noqa: ARG002
        return iter(())  # lines are written by the parent stream (emit_for_parent)

    def emit_for_parent(self, parent: dict[str, t.Any], lines: list[dict[str, t.Any]]) -> None:
        """Send the lines of one emitted parent (RECORD messages, or the spool in batch mode)."""
        if not self.selected or not lines:
            return
        context = {"account_id": parent["account_id"]}
        prefix = self.parent
        for raw in lines:
            record = self.transform({**raw, "id": raw.get("lineid")}, context, trigger=parent["_fb_trigger"])
            record["_fb_event_received_at"] = parent.get("_fb_event_received_at")
            record[f"{prefix}_id"] = parent["id"]
            record[f"{prefix}_updated"] = parent.get("updated")
            record[f"{prefix}_vis_state"] = parent.get("vis_state")
            if self.spool is not None:
                self.spool.append(record)
            else:
                self._ensure_schema()
                sdk_compat.write_record(self, record)
            self.emitted += 1

    def flush_spool(self, batch_config: BatchConfig) -> None:
        """Batch mode: write the spooled lines as BATCH message(s) of this stream."""
        if not self.spool:
            return
        self._ensure_schema()
        batcher = Batcher(tap_name=self.tap_name, stream_name=self.name, batch_config=batch_config)
        for manifest in batcher.get_batches(records=iter(self.spool)):
            sdk_compat.write_batch(self, batch_config.encoding, manifest)
        self.spool = []

    def _ensure_schema(self) -> None:
        if not self._schema_sent:
            sdk_compat.write_schema(self)
            self._schema_sent = True


def lines_rider(
    parent: str, line_properties: t.Sequence[th.Property[t.Any]], *, parent_id_copy: str
) -> type[LinesRider]:
    """The rider ``<parent>_lines`` of a carrier, for its ``lines_stream`` declaration.

    ``parent_id_copy``: the line field repeating the parent's id, dropped (``<parent>_id`` holds it).
    """
    name = f"{parent}_lines"
    words = parent.replace("_", " ")
    rider = type(
        "".join(part.title() for part in name.split("_")) + "Stream",
        (LinesRider,),
        {
            "__doc__": f"{words.capitalize()} lines, emitted exactly when their {words} is (see ``LinesRider``).",
            "__module__": __name__,
            "name": name,
            "parent": parent,
            "line_properties": line_properties,
            "drop_fields": (parent_id_copy,),
        },
    )
    return t.cast("type[LinesRider]", rider)


class CarriesLines(FreshBooksStream):
    """A stream whose records arrive with their lines (``include[]=lines``); the lines leave as the
    rider stream ``lines_stream``, each batch of lines before the records that carry them."""

    #: the rider stream the lines go to: the one declaration of this relation
    lines_stream: t.ClassVar[type[LinesRider]]
    #: No STATE in the middle of a carrier stream. Its partitions' change ledgers (which also vouch
    #: for their lines) would reach the loader while lines are still buffered in another stream, and
    #: a per-stream loader (target-duckdb flushes the full stream only, then emits that stream's
    #: newest bookmark) could store "delivered" before the lines are loaded: a loader crash then
    #: loses them (tests/chaos/rider_flush_repro.py). The one STATE comes after the whole stream.
    STATE_MSG_FREQUENCY = sys.maxsize
    extra_params: t.ClassVar[dict[str, t.Any]] = {"include[]": ["lines"]}

    @property
    def lines(self) -> LinesRider:
        return t.cast("LinesRider", self._tap.streams[stream_name(self.lines_stream)])

    def get_records(self, context: Context | None) -> t.Iterable[dict[str, t.Any]]:
        for record in super().get_records(context):
            # The lines arrived with their parent (include[]=lines); they leave as the rider stream,
            # before the parent itself and before any STATE that records it as delivered.
            self.lines.emit_for_parent(record, record.pop("lines", None) or [])
            yield record

    def get_batches(
        self, batch_config: BatchConfig, context: Context | None = None
    ) -> t.Iterable[tuple[BaseBatchFileEncoding, list[str]]]:
        """Batch mode: each batch of parents is preceded by a BATCH of their lines."""
        self.lines.spool = []
        try:
            for encoding, manifest in super().get_batches(batch_config, context):
                self.lines.flush_spool(batch_config)
                yield encoding, manifest
            self.lines.flush_spool(batch_config)
        finally:
            self.lines.spool = None


def stream_name(cls: type[FreshBooksStream]) -> str:
    """A stream class's ``name`` (a class attribute of every stream; the SDK types it per instance)."""
    return str(getattr(cls, "name"))  # noqa: B009  (``cls.name`` is "instance-only" to mypy)


def rides_along(stream_types: t.Iterable[type[FreshBooksStream]]) -> dict[str, str]:
    """rider stream -> the carrier stream its records arrive in, from the carriers' declarations."""
    return {
        stream_name(cls.lines_stream): stream_name(cls)
        for cls in stream_types
        if isinstance(cls, type) and issubclass(cls, CarriesLines)
    }


def with_riders(stream_types: t.Iterable[type[FreshBooksStream]]) -> list[type[FreshBooksStream]]:
    """The stream list with each carrier's rider right after the carrier."""
    out: list[type[FreshBooksStream]] = []
    for cls in stream_types:
        out.append(cls)
        if issubclass(cls, CarriesLines):
            out.append(cls.lines_stream)
    return out
