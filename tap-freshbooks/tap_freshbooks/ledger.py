"""The change ledger: exactly-once emission on top of day-granular FreshBooks filters.

The state it keeps lives in ``state.py`` (``fb_state.seen`` / ``fb_state.deleted``).

A record is emitted iff its fingerprint differs from the one the ledger holds for its id. The
fingerprint hashes the raw FreshBooks JSON, so any change FreshBooks shows us counts, including a
second change within the same second, and re-reading an overlap never re-sends.

``recency`` is the record's UTC ``updated`` (incremental streams) or empty (snapshot streams, never
pruned). After a run, incremental entries older than the next run's window start are pruned: the
next run cannot see them any more (server filter + client window), so they can never be compared.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import typing as t

import msgspec

from tap_freshbooks.envelopes import float_constants_seen
from tap_freshbooks.timezones import eastern_date, eastern_midnight_utc, format_utc, parse_utc

if t.TYPE_CHECKING:
    from tap_freshbooks.state import PartitionState

OVERLAP_DAYS = 1


#: Renders what ``_canonical_json`` renders, byte for byte, for pure-ASCII text without DEL and
#: without floats (sorted keys, no spaces, a Decimal as its quoted text): several times faster.
_SORTED = msgspec.json.Encoder(order="sorted", decimal_format="string")


def _canonical_json(raw: t.Mapping[str, t.Any]) -> bytes:
    """The fingerprinted text: stored fingerprints depend on it, so it never changes."""
    return json.dumps(raw, sort_keys=True, separators=(",", ":"), default=str).encode("utf-8")


def fingerprint(raw: t.Mapping[str, t.Any]) -> str:
    """Stable 16-hex-char digest of a raw API record (as decoded: dict, list, str, int, bool,
    None, Decimal, and a float only for a NaN/Infinity literal).

    Computed over ``_canonical_json``. For those types msgspec writes the same bytes, except that
    it leaves non-ASCII characters and DEL unescaped and writes NaN/Infinity as null; so its
    output is used only when it is pure ASCII without DEL and no body of this process held a
    NaN/Infinity literal. tests/tap/test_ledger.py checks the equality on the demo data.
    """
    try:
        payload = _SORTED.encode(raw)
    except (TypeError, msgspec.EncodeError):  # a value JSON cannot hold: default=str decides
        payload = b"\x80"
    if not payload.isascii() or b"\x7f" in payload or float_constants_seen():
        payload = _canonical_json(raw)
    return hashlib.blake2b(payload, digest_size=8).hexdigest()


def window_start(bookmark: str | None, start_date: str | None) -> dt.datetime | None:
    """First instant a run must look at.

    With a bookmark: 00:00 US/Eastern of the day before the bookmark's Eastern date. That is at or
    before the bookmark whichever day boundary (Eastern or UTC) FreshBooks applies to
    ``updated_min``, and it is where the client-side window starts, so what the server returns and
    what we compare always agree.
    Without a bookmark: ``start_date`` (or everything).
    """
    if bookmark:
        day = eastern_date(parse_utc(bookmark)) - dt.timedelta(days=OVERLAP_DAYS)
        return eastern_midnight_utc(day)
    if start_date:
        return parse_utc(start_date)
    return None


def filter_date(start: dt.datetime | None) -> str | None:
    """The ``search[updated_min]`` value (a date) for a window start."""
    if start is None:
        return None
    return eastern_date(start).isoformat()


class ChangeLedger:
    """Decides what to emit for one partition and records what was delivered.

    Works on a :class:`~tap_freshbooks.state.PartitionState`; it never writes the bookmark (the
    emit loop advances it after a complete poll, see ``incremental.py``).
    """

    def __init__(self, state: PartitionState, *, incremental: bool, prunes: bool = True) -> None:
        self.state = state
        self.seen = state.seen
        self.deleted = state.deleted
        self.incremental = incremental
        self.prunes = prunes
        #: max recency read in this run (emitted or not), starting from the bookmark
        self.max_seen: str | None = state.bookmark
        self.emitted = 0
        self.skipped = 0
        self._prune_at = 10_000

    # -- decisions ---------------------------------------------------------------------------
    def observe(self, recency: str | None) -> None:
        """Track the max recency of everything read (emitted or not)."""
        if recency and (self.max_seen is None or recency > self.max_seen):
            self.max_seen = recency

    def should_emit(self, record_id: str, fp: str, *, deleted: bool) -> bool:
        """True if this version of the record was never delivered."""
        if deleted:
            changed = self.deleted.get(record_id) != fp
        else:
            entry = self.seen.get(record_id)
            changed = entry is None or entry[0] != fp
        if changed:
            self.emitted += 1
        else:
            self.skipped += 1
        return changed

    def record_delivered(self, record_id: str, fp: str, recency: str | None, *, deleted: bool) -> None:
        """Remember a delivered version (call right after emitting it)."""
        if deleted:
            self.deleted[record_id] = fp
        else:
            self.deleted.pop(record_id, None)  # restored records leave the deleted set
        self.seen[record_id] = [fp, recency or ""]
        if self.incremental and self.prunes and len(self.seen) >= self._prune_at:
            # Keeps memory flat on big first runs: entries older than the window a run from the
            # current max would read can never be compared again. Amortised: prune again only
            # once the survivors have doubled.
            cutoff = window_start(self.max_seen, None)
            self.prune(format_utc(cutoff) if cutoff else None)
            self._prune_at = max(2 * len(self.seen), 10_000)

    def prune(self, cut: str | None) -> None:
        """Forget entries whose recency is before ``cut`` (entries without recency are kept)."""
        if cut:
            kept = {k: v for k, v in self.seen.items() if not v[1] or v[1] >= cut}
            self.seen.clear()
            self.seen.update(kept)
