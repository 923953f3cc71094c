"""How an API record becomes a Singer record: ids, UTC timestamps, account ids, audit columns.

One ``RecordShaper`` per stream, built from the stream's declarations (streams/base.py). It knows
nothing of HTTP or state: it takes the raw JSON of one record and the partition it came from.
"""

from __future__ import annotations

import dataclasses
import typing as t
from functools import cached_property

from tap_freshbooks.record_guard import RecordGuard
from tap_freshbooks.timezones import eastern_to_utc, naive_utc_to_utc, utc_now_text


@dataclasses.dataclass(frozen=True, eq=False)
class RecordShaper:
    """API record -> Singer record for one stream."""

    stream: str
    schema: dict[str, t.Any]
    #: the record field holding the id when the record has no ``id``
    id_field: str = "id"
    #: fields holding naive US/Eastern wall time, converted to UTC
    eastern_fields: tuple[str, ...] = ()
    #: fields holding naive UTC (or RFC 3339) times, normalised to RFC 3339 Z
    utc_fields: tuple[str, ...] = ()
    #: fields never extracted (secrets such as client-portal tokens, or pure duplicates)
    drop_fields: tuple[str, ...] = ()
    #: business-scoped stream (projects/time/services/ledger): the record also carries business_id
    business_scoped: bool = False

    @cached_property
    def guard(self) -> RecordGuard:
        """Sets aside values that violate the schema (record_guard.py)."""
        return RecordGuard(self.stream, self.schema)

    def shape(
        self, raw: dict[str, t.Any], context: t.Mapping[str, t.Any], *, trigger: str
    ) -> dict[str, t.Any]:
        """The Singer record of ``raw``, read in partition ``context`` by a ``trigger`` run.

        The guard then checks every declared value; it also writes numbers sent in decimal fields
        (``qty`` is a string on read, an int on write) as their exact text.
        """
        drop = self.drop_fields
        record = {k: v for k, v in raw.items() if k not in drop} if drop else dict(raw)
        if "id" not in record or record.get("id") is None:
            record["id"] = record.get(self.id_field)
        record["id"] = str(record["id"]) if record["id"] is not None else None
        for fields, convert in ((self.eastern_fields, eastern_to_utc), (self.utc_fields, naive_utc_to_utc)):
            for field in fields:
                if field in record:
                    try:
                        record[field] = convert(record[field])
                    except (ValueError, TypeError, AttributeError):
                        RecordGuard.set_aside(record, field, raw.get(field))
        record["account_id"] = context.get("account_id")
        if self.business_scoped:
            record["business_id"] = context.get("business_id")
        record["_fb_extracted_at"] = utc_now_text()
        record["_fb_trigger"] = trigger
        record["_fb_event_received_at"] = None
        return self.guard.check(record)
