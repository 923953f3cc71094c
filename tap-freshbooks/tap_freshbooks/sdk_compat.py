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
2. **Riders.** ``invoice_lines`` arrive inside invoice responses (streams/riders.py). They leave
   through their own stream's maps and messages (``Stream._write_record_message`` /
   ``_write_batch_message`` / ``_write_schema_message``) in the same run and before the invoices'
   STATE message, so a crash can never record an invoice as delivered while its lines were not.
   The SDK's public way, a child stream, does not fit: ``_sync_children`` runs ``child.sync()``
   once per parent record, and each one writes a SCHEMA and a STATE message (the whole tap state),
   so a page of 100 invoices would send 100 of each and make pipelinewise targets flush one-row
   batches.
3. **Per-record cost.** ``Stream._generate_record_messages`` prunes deselected properties and
   conforms every value to the schema on every record, which cost more than everything else the
   tap does per record. ``RecordGuard`` (record_guard.py) has already checked each declared value
   against the same schema, so ``FastRecordMessagesMixin`` skips both walks when they can change
   nothing: every property selected, every key of the record declared, and a schema whose
   conformance rules the guard covers (see ``guard_covers_conformance``). Any other record takes
   the SDK's own path (``helpers._catalog.pop_deselected_record_properties``,
   ``helpers._typing.conform_record_data_types``).

4. **Decimal sizes.** singer-sdk builds stream maps from its catalog ``Schema`` model, which keeps
   only standard JSON-schema keys, so ``precision``/``scale`` vanish from every SCHEMA message and
   SQL targets would size money columns NUMBER(38,0) (Snowflake) or NUMERIC(18,0) (Redshift),
   rounding the cents away. ``DecimalSizedSchemaMixin`` puts them back in
   ``Stream._generate_schema_messages``.

5. **Flattening.** With ``flattening_enabled`` the SDK's stream map flattens every record with
   ``helpers._flattening.flatten_record``, which rebuilds each key name (``flatten_key``: a list
   copy, a regex compiled, a join) for every key of every record: 55% of the tap's CPU on a 10k
   full load (docs/performance.md). ``RecordFlattener`` gives the same record, key for key and value
   for value, with each key name computed once per stream and the schema test cached per key; it
   is used only for the SDK's plain ``SameRecordTransform`` map (any other map, e.g. a stream map
   with expressions, keeps the SDK's path). ``tests/tap/test_record_fast_path.py`` compares it with
   the SDK's ``flatten_record`` on every record of a full run.

6. **STATE messages.** The SDK's ``StateWriter`` (``helpers._state``, kept by the tap in
   ``Tap._state_writer``) encodes each STATE through ``dataclasses.asdict``, a deep rebuild of the
   whole state, and keeps a ``copy.deepcopy`` of it to compare the next one with. The change ledger
   makes the state large (2.2 MB of JSON at 100k invoices), and that was about a tenth of the tap's
   profile at 10k. ``EncodedStateWriter`` encodes the state once with msgspec and compares lines;
   ``BufferedMsgSpecWriter`` writes any STATE message the same way. The lines are byte for byte
   what the SDK writes (``tests/tap/test_sdk_compat.py``).

The message writer (``BufferedMsgSpecWriter``) otherwise uses only public API: the SDK's own msgspec
writer, with one write per 64 KiB of RECORD messages instead of one write and flush per message.
"""

from __future__ import annotations

import sys
import typing as t
from collections.abc import MutableMapping
from decimal import Decimal

import singer_sdk.singerlib as singer
from singer_sdk.contrib.msgspec import MsgSpecWriter, serialize_jsonl
from singer_sdk.helpers._catalog import pop_deselected_record_properties
from singer_sdk.helpers._flattening import _should_jsondump_value, flatten_key
from singer_sdk.helpers._state import StateWriter
from singer_sdk.helpers._typing import conform_record_data_types
from singer_sdk.helpers._util import utc_now
from singer_sdk.mapper import SameRecordTransform, StreamMap
from singer_sdk.singerlib.encoding.base import SingerMessageType
from singer_sdk.singerlib.json import serialize_json
from singer_sdk.streams._state import StreamStateManager

from tap_freshbooks.envelopes import float_constants_seen
from tap_freshbooks.schema_objects import restore_decimal_sizes

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
    ("singer_sdk.streams.core.Stream", "_generate_record_messages"),
    ("singer_sdk.streams.core.Stream", "_generate_schema_messages"),
    ("singer_sdk.streams.core.Stream", "_stream_version"),
    ("singer_sdk.helpers._catalog", "pop_deselected_record_properties"),
    ("singer_sdk.helpers._typing", "conform_record_data_types"),
    ("singer_sdk.helpers._util", "utc_now"),
    ("singer_sdk.helpers._flattening", "flatten_key"),
    ("singer_sdk.helpers._flattening", "_should_jsondump_value"),
    ("singer_sdk.helpers._state.StateWriter", "write_state"),
    ("singer_sdk.tap_base.Tap", "_state_writer"),
)


class OwnedStateManager(StreamStateManager):
    """The SDK's state manager with every step that would move a bookmark turned off."""

    def write_starting_replication_value(self, *args: t.Any, **kwargs: t.Any) -> None:
        """Off: the window comes from ``fb_state`` (incremental.py)."""

    def write_replication_key_signpost(self, *args: t.Any, **kwargs: t.Any) -> None:
        """Off: no signpost; bookmarks are set by the emit loop only."""

    def increment_state(self, *args: t.Any, **kwargs: t.Any) -> None:
        """Off: no progress markers (and no KeyError on a record without its replication key)."""

    def finalize_state(self, state: dict[str, t.Any] | None = None) -> None:
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


class DecimalSizedSchemaMixin:
    """SCHEMA messages with the decimal precision/scale the SDK's catalog model drops (point 4)."""

    def _generate_schema_messages(self) -> t.Generator[singer.SchemaMessage, None, None]:
        for message in super()._generate_schema_messages():  # type: ignore[misc]  # the Stream's
            restore_decimal_sizes(message.schema)
            yield message


def write_schema(stream: Stream) -> None:
    """SCHEMA message(s) of a rider stream, through its maps."""
    stream._write_schema_message()  # noqa: SLF001


def write_record(stream: Stream, record: dict[str, t.Any]) -> None:
    """RECORD message(s) of a rider stream, through its maps (selection, conformance, aliases)."""
    stream._write_record_message(record)  # noqa: SLF001


def write_batch(stream: Stream, encoding: BaseBatchFileEncoding, manifest: list[str]) -> None:
    """BATCH message(s) of a rider stream."""
    stream._write_batch_message(encoding=encoding, manifest=manifest)  # noqa: SLF001


def _types(node: dict[str, t.Any]) -> set[str]:
    kind = node.get("type", [])
    return {kind} if isinstance(kind, str) else set(kind)


def guard_covers_conformance(schema: dict[str, t.Any]) -> bool:
    """True if, after ``RecordGuard.check``, the SDK's conformance can only drop top-level keys.

    What ``conform_record_data_types`` does, and why the guard already did it here:

    * drops keys a nested object does not declare unless ``additionalProperties`` is truthy: the
      guard keeps them only where it is ``true``, and moves them to ``_fb_unparsed`` where it is
      ``false``; so every nested object must say which (a missing value is falsy for the SDK);
    * turns a NaN/infinite number into null: no ``number`` property, and no NaN literal decoded
      (``envelopes.float_constants_seen``, checked per record);
    * ``value != 0`` for an exclusive boolean: the guard emits only real booleans there;
    * datetimes, dates, bytes to text: never in a record decoded from JSON;
    * ``anyOf`` schemas: the guard does not read them, so none may appear.
    """

    def covered(node: t.Any, *, top: bool) -> bool:
        if not isinstance(node, dict):
            return True
        if "anyOf" in node or "number" in _types(node):
            return False
        if isinstance(node.get("properties"), dict):
            if not top and not isinstance(node.get("additionalProperties"), bool):
                return False
            if not all(covered(child, top=False) for child in node["properties"].values()):
                return False
        return covered(node.get("items"), top=False)

    return covered(schema, top=True)


class RecordFlattener:
    """``helpers._flattening.flatten_record`` for one stream map, with its per-key work cached.

    Same walk, same decisions, in the same order: a mapping value is flattened into its parent when
    its flattened key is not a property of the flattened schema and the level allows it; any other
    value is kept, or JSON-encoded where the SDK's ``_should_jsondump_value`` says so. Key names
    (which depend only on the key, its parents and the options) and the schema half of that test
    (which depends only on the key) are computed once and remembered.
    """

    def __init__(self, stream_map: StreamMap) -> None:
        options = stream_map.flattening_options
        assert options is not None  # only built for maps with flattening enabled
        self._schema: dict[str, t.Any] = stream_map.transformed_schema
        self._properties: dict[str, t.Any] = self._schema.get("properties", {})
        self._max_level = options.max_level
        self._separator = options.separator
        self._max_key_length = options.max_key_length
        #: per parent path: key -> its plan (computed the first time the key is seen there)
        self._plans: dict[tuple[str, ...], dict[t.Any, _KeyPlan]] = {}

    @classmethod
    def for_map(cls, stream_map: StreamMap) -> RecordFlattener | None:
        """A flattener for the SDK's plain flattening map, else None (the map does its own work)."""
        if type(stream_map) is SameRecordTransform and stream_map.flattening_enabled:
            return cls(stream_map)
        return None

    def _plan(self, parents: tuple[str, ...], key: t.Any) -> _KeyPlan:
        name = flatten_key(key, list(parents), self._separator, max_key_length=self._max_key_length)
        # the SDK flattens a mapping value into its parent when its flattened name is no property of
        # the flattened schema and the level (the number of parents) is below max_level
        expands = bool(self._schema) and name not in self._properties and len(parents) < self._max_level
        plan = _KeyPlan(
            name,
            # the SDK's test with a value that is neither dict nor list: the schema's half only
            _should_jsondump_value(key, None, self._schema),
            (*parents, key) if expands else None,
        )
        self._plans.setdefault(parents, {})[key] = plan
        return plan

    def flatten(self, record: MutableMapping[t.Any, t.Any]) -> dict[str, t.Any]:
        flat: dict[str, t.Any] = {}
        self._flatten(record, (), flat)
        return flat

    def _flatten(
        self, node: MutableMapping[t.Any, t.Any], parents: tuple[str, ...], flat: dict[str, t.Any]
    ) -> None:
        plans = self._plans.get(parents) or {}
        for key, value in node.items():
            name, dump_scalar, children = plans.get(key) or self._plan(parents, key)
            if type(value) in _SCALARS:  # neither a mapping nor a dict/list: the common case
                flat[name] = serialize_json(value) if dump_scalar else value
            elif children is not None and isinstance(value, MutableMapping):
                self._flatten(value, children, flat)
            else:
                dump = dump_scalar or isinstance(value, (dict, list))
                flat[name] = serialize_json(value) if dump else value


class _KeyPlan(t.NamedTuple):
    name: str
    #: JSON-encode a value that is neither dict nor list (the schema's half of the SDK's test)
    dump_scalar: bool
    #: the parent path of this key's own keys when a mapping value is flattened into the record, else None
    children: tuple[str, ...] | None


#: value types that are never a mapping, a dict or a list (exact types: a subclass takes the long way)
_SCALARS = frozenset({str, int, float, bool, type(None), Decimal})


class _RecordPlan(t.NamedTuple):
    all_selected: bool
    guard_conforms: bool
    declared: frozenset[str]
    #: per stream map (same order as ``stream.stream_maps``): its fast flattener, or None
    flatteners: tuple[RecordFlattener | None, ...]


class FastRecordMessagesMixin:
    """``_generate_record_messages`` without the walks that cannot change a guarded record."""

    _fb_record_plan: _RecordPlan | None = None

    def _record_plan(self) -> _RecordPlan:
        if self._fb_record_plan is None:
            stream = t.cast("Stream", self)
            effective = stream.effective_schema
            # the guard checks against stream.schema: the catalog's may not differ where it matters
            same_rules = _conformance_view(effective) == _conformance_view(stream.schema)
            self._fb_record_plan = _RecordPlan(
                all_selected=all(stream.mask.values()),
                guard_conforms=same_rules and guard_covers_conformance(stream.schema),
                declared=frozenset(effective.get("properties") or ()),
                flatteners=tuple(RecordFlattener.for_map(stream_map) for stream_map in stream.stream_maps),
            )
        return self._fb_record_plan

    def _generate_record_messages(
        self, record: dict[str, t.Any]
    ) -> t.Generator[singer.RecordMessage, None, None]:
        """The SDK's steps (same order, same messages), each skipped only when it is a no-op."""
        stream = t.cast("Stream", self)
        plan = self._record_plan()
        schema = stream.effective_schema
        if not plan.all_selected:
            pop_deselected_record_properties(record, stream.schema, stream.mask)
        if not (plan.guard_conforms and record.keys() <= plan.declared) or float_constants_seen():
            record = conform_record_data_types(
                stream_name=stream.name,
                record=record,
                schema=schema,
                level=stream.TYPE_CONFORMANCE_LEVEL,
                logger=stream.logger,
            )
        for stream_map, flattener in zip(stream.stream_maps, plan.flatteners, strict=True):
            mapped_record = stream_map.transform(record) if flattener is None else flattener.flatten(record)
            if mapped_record is not None:
                yield singer.RecordMessage(
                    stream=stream_map.stream_alias,
                    record=mapped_record,
                    version=stream._stream_version,  # noqa: SLF001
                    time_extracted=utc_now(),
                )


def _conformance_view(node: t.Any) -> t.Any:
    """The parts of a schema the SDK's conformance reads."""
    if isinstance(node, list):
        return [_conformance_view(value) for value in node]
    if not isinstance(node, dict):
        return node
    view = {
        key: _conformance_view(node[key])
        for key in ("type", "items", "additionalProperties", "anyOf")
        if key in node
    }
    if isinstance(node.get("properties"), dict):
        view["properties"] = {name: _conformance_view(child) for name, child in node["properties"].items()}
    return view


class BufferedMsgSpecWriter(MsgSpecWriter):
    """The SDK's msgspec writer, writing RECORD messages in 64 KiB chunks.

    Every other message (SCHEMA, STATE, BATCH, ACTIVATE_VERSION) is written at once with all the
    records before it, so a loader never sees a STATE before the records it vouches for, and a
    process that dies loses at most records no STATE has vouched for yet (they are sent again).
    ``flush()`` writes what is pending (the tap calls it when a sync ends, however it ends).
    """

    CHUNK = 64 * 1024

    def __init__(self) -> None:
        super().__init__()
        self._pending = bytearray()
        #: RECORD messages written by this process
        self.records = 0

    def serialize_message(self, message: singer.Message) -> bytearray:
        if message.type == SingerMessageType.STATE:
            return bytearray(state_line(t.cast("singer.StateMessage", message).value))
        return super().serialize_message(message)

    def write_line(self, line: bytes) -> None:
        """An encoded message (a STATE line), written at once after everything pending."""
        self._pending += line
        self.flush()

    def write_message(self, message: singer.Message) -> None:
        self._pending += self.format_message(message)
        if message.type == SingerMessageType.RECORD:
            self.records += 1
            if len(self._pending) < self.CHUNK:
                return
        self.flush()

    def flush(self) -> None:
        """Write every pending message to stdout (binary if it has a buffer, else as text)."""
        data, self._pending = self._pending, bytearray()
        out = sys.stdout
        binary = getattr(out, "buffer", None)
        if binary is None:  # e.g. a StringIO from contextlib.redirect_stdout
            out.write(data.decode("utf-8"))
        else:
            out.flush()  # text written before us goes first
            binary.write(data)
            binary.flush()
        out.flush()


def state_line(state: t.Mapping[str, t.Any]) -> bytes:
    """``{"type":"STATE","value":...}`` and a newline, as the SDK writes it, without ``dataclasses.asdict``."""
    return bytes(serialize_jsonl({"type": "STATE", "value": state}))


class EncodedStateWriter(StateWriter):
    """The SDK's StateWriter (a STATE only when the state changed), comparing encoded lines.

    The SDK keeps a deep copy of the last state and compares dicts; this keeps the last line. A state
    equal to the last one with its keys in another order is written again, which changes nothing
    for a loader.
    """

    def __init__(self, message_writer: BufferedMsgSpecWriter) -> None:
        super().__init__(message_writer)
        self._writer = message_writer
        self._last_line: bytes | None = None

    def write_state(self, state: t.Mapping[str, t.Any]) -> None:
        line = state_line(state)
        if line != self._last_line:
            self._writer.write_line(line)
            self._last_line = line


def use_encoded_state_writer(tap: t.Any) -> None:
    """Give ``tap`` an EncodedStateWriter (it writes with a BufferedMsgSpecWriter), once."""
    writer = tap.message_writer
    if isinstance(writer, BufferedMsgSpecWriter) and not isinstance(tap._state_writer, EncodedStateWriter):  # noqa: SLF001
        tap._state_writer = EncodedStateWriter(writer)  # noqa: SLF001
