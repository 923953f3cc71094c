"""`FreshBooksStream`: the one base every stream declares itself on.

It puts the parts together (each one owns one concern):

* client.py ``FreshBooksHTTPStream``: HTTP (auth, retries, envelopes, pages);
* sync_modes.py ``SyncModes``: poll, full snapshot and webhook runs through one emit loop, with
  the ``strategy`` of incremental.py and the state of state.py / ledger.py;
* shaping.py ``RecordShaper``: API record -> Singer record (ids, UTC times, audit columns);
* sdk_compat.py: the singer-sdk private API the tap needs (state, per-record cost, decimal sizes).

A stream subclass is a page of declarations: path, keys, envelope, timestamp fields, strategy.
"""

from __future__ import annotations

import typing as t
from functools import cached_property

from singer_sdk.singerlib.catalog import REPLICATION_INCREMENTAL

from tap_freshbooks.sdk_compat import DecimalSizedSchemaMixin, FastRecordMessagesMixin, OwnedStateMixin
from tap_freshbooks.shaping import RecordShaper
from tap_freshbooks.sync_modes import SyncModes

if t.TYPE_CHECKING:
    from tap_freshbooks.record_guard import RecordGuard


class FreshBooksStream(OwnedStateMixin, FastRecordMessagesMixin, DecimalSizedSchemaMixin, SyncModes):
    """Base stream for every FreshBooks endpoint."""

    # -- declarations overridden by streams (HTTP and sync ones: client.py, sync_modes.py) ---------
    primary_keys: t.ClassVar[list[str]] = ["account_id", "id"]
    state_partitioning_keys: t.ClassVar[list[str] | None] = ["account_id"]
    #: the record field holding the id when the record has no ``id``
    id_field: str = "id"
    #: fields holding naive US/Eastern wall time, converted to UTC
    eastern_fields: tuple[str, ...] = ()
    #: fields holding naive UTC (or RFC 3339) times, normalised to RFC 3339 Z
    utc_fields: tuple[str, ...] = ()
    #: fields never extracted (secrets such as client-portal tokens, or pure duplicates)
    drop_fields: tuple[str, ...] = ()
    #: business-scoped stream (projects/time/services/ledger): record also carries business_id
    business_scoped: bool = False

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        # Every stream emits only versions not delivered before, so the catalog says INCREMENTAL
        # (a loader must never read a run's records as the whole table). A catalog may force
        # FULL_TABLE instead; then every run sends a full snapshot and keeps no state.
        if not self.forced_replication_method:
            self.forced_replication_method = REPLICATION_INCREMENTAL

    @property
    def partitions(self) -> list[dict[str, t.Any]] | None:
        """One partition per FreshBooks account."""
        return [dict(account) for account in self.fb_tap.accounts]

    @cached_property
    def shaper(self) -> RecordShaper:
        """API record -> Singer record for this stream (from the declarations above)."""
        return RecordShaper(
            stream=self.name,
            schema=self.schema,
            id_field=self.id_field,
            eastern_fields=tuple(self.eastern_fields),
            utc_fields=tuple(self.utc_fields),
            drop_fields=tuple(self.drop_fields),
            business_scoped=self.business_scoped,
        )

    @property
    def guard(self) -> RecordGuard:
        """Sets aside values that violate the schema (record_guard.py)."""
        return self.shaper.guard

    def guard_warning(self) -> str | None:
        """The guard's summary of set-aside values, if this stream shaped any record."""
        shaper = self.__dict__.get("shaper")  # created on the stream's first record
        guard = shaper.__dict__.get("guard") if shaper is not None else None
        return guard.warning() if guard is not None else None

    def transform(
        self, raw: dict[str, t.Any], context: dict[str, t.Any], *, trigger: str
    ) -> dict[str, t.Any]:
        """API record -> Singer record: ids, UTC timestamps, account ids, audit columns."""
        return self.shaper.shape(raw, context, trigger=trigger)
