"""How a stream syncs a partition: a poll, a full snapshot or a webhook run, all through one emit loop.

* **poll** (the default): the window since the bookmark (the stream's ``changes`` strategy,
  incremental.py), then, for streams with ``has_vis_state``, the deleted records; moves the
  bookmark only when complete, and only forwards.
* **full snapshot** (the catalog forces FULL_TABLE): every current record, no state read or written.
* **webhook run** (the ``record_ids`` setting names this stream): fetch exactly those ids; ledger
  entries only, never the bookmark.

All three hand (raw record, window cut) pairs to ``_emit``: fingerprint -> shape -> recency ->
window -> change ledger -> record. The rules the state follows are in state.py and ledger.py.
"""

from __future__ import annotations

import time
import typing as t
from functools import cached_property

from singer_sdk.singerlib.catalog import REPLICATION_FULL_TABLE

from tap_freshbooks import incremental
from tap_freshbooks.client import FreshBooksHTTPStream
from tap_freshbooks.errors import FreshBooksError
from tap_freshbooks.ledger import ChangeLedger, fingerprint
from tap_freshbooks.state import PartitionState
from tap_freshbooks.timezones import format_utc, utc_now

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context


class SyncModes(FreshBooksHTTPStream):
    """The three runs of a partition and the one emit loop they share."""

    # -- declarations overridden by streams -------------------------------------------------------
    #: how this stream finds what changed (incremental.py); ``changes`` is it bound to the stream
    strategy: incremental.Strategy = incremental.Snapshot()
    #: list hides vis_state 1 and accepts search[vis_state]=1 (a second pass finds deletions)
    has_vis_state: bool = False
    #: path of a single record, relative to ``path``; None = cannot fetch by id
    single_path: str | None = "{path}/{id}"

    @cached_property
    def changes(self) -> incremental.Strategy:
        """``strategy`` with this stream's replication key (after the catalog) and settings."""
        return self.strategy.bound(replication_key=self.replication_key, config=self.config)

    def transform(
        self, raw: dict[str, t.Any], context: dict[str, t.Any], *, trigger: str
    ) -> dict[str, t.Any]:
        """API record -> Singer record (the base stream shapes it: shaping.py)."""
        raise NotImplementedError

    @property
    def record_ids(self) -> list[str] | None:
        """Ids to fetch for this stream in a webhook-driven run, or None for a normal poll."""
        wanted = self.fb_tap.record_ids
        if wanted is None:
            return None
        return [str(i) for i in wanted.get(self.name, [])]

    def get_records(self, context: Context | None) -> t.Iterable[dict[str, t.Any]]:
        context = dict(context or {})
        if self.record_ids is not None:
            yield from self._fetch_by_id(context)
        elif self.replication_method == REPLICATION_FULL_TABLE:
            yield from self._full_snapshot(context)
        else:
            yield from self._poll(context)

    # -- state ------------------------------------------------------------------------------------
    def _load_state(self, context: dict[str, t.Any]) -> PartitionState:
        return PartitionState.load(self.get_context_state(context), strategy=self.changes.name)

    def _save_state(self, state: PartitionState, ledger: ChangeLedger) -> None:
        """Write the partition state: ledger entries the next window can still see, the bookmark."""
        if self.changes.windowed:
            ledger.prune(self.changes.window(state.bookmark, None).cut)
        state.save(replication_key=self.replication_key)

    # -- the three runs ---------------------------------------------------------------------------
    def _passes(
        self, context: dict[str, t.Any], window: incremental.Window
    ) -> t.Iterable[tuple[dict[str, t.Any], str | None]]:
        """(raw record, window cut) for a whole poll: the changed list, then the deleted records.

        Deleted records are hidden from lists; ``search[vis_state]=1`` finds them. That pass has
        no date filter, because a delete might not bump ``updated``.
        """
        for raw in self.read_list(context, window.params):
            yield raw, window.cut
        if self.has_vis_state:
            for raw in self.read_list(context, {"search[vis_state]": 1}):
                yield raw, None

    def _poll(self, context: dict[str, t.Any]) -> t.Iterable[dict[str, t.Any]]:
        """A scheduled poll: the window since the bookmark; moves the bookmark when complete."""
        started = time.monotonic()
        run_started = format_utc(utc_now())
        state = self._load_state(context)
        ledger = ChangeLedger(state, incremental=self.changes.windowed)
        window = self.changes.window(state.bookmark, self.config.get("start_date"))
        yield from self._emit(self._passes(context, window), context, ledger, "poll", run_started)
        # Rule 2: only a complete poll moves the bookmark, and only forwards (rule 1).
        state.advance(self.changes.next_bookmark(ledger.max_seen, run_started))
        self._save_state(state, ledger)
        self._log_partition(context, ledger, time.monotonic() - started, trigger="poll")

    def _full_snapshot(self, context: dict[str, t.Any]) -> t.Iterable[dict[str, t.Any]]:
        """FULL_TABLE forced by the catalog: every current record, no state read or written."""
        started = time.monotonic()
        throwaway = PartitionState({}, strategy=self.changes.name, bookmark=None, seen={}, deleted={})
        ledger = ChangeLedger(throwaway, incremental=False)
        everything = incremental.Window(None, {})
        run_started = format_utc(utc_now())
        yield from self._emit(self._passes(context, everything), context, ledger, "poll", run_started)
        self._log_partition(context, ledger, time.monotonic() - started, trigger="poll")

    def _fetch_by_id(self, context: dict[str, t.Any]) -> t.Iterable[dict[str, t.Any]]:
        """Webhook-driven run: fetch exactly these ids; ledger entries only (rule 3), no bookmark."""
        started = time.monotonic()
        run_started = format_utc(utc_now())
        state = self._load_state(context)
        ledger = ChangeLedger(state, incremental=self.changes.windowed, prunes=False)
        received = (self.config.get("event_received_at") or {}).get(self.name, {})

        def fetched() -> t.Iterator[tuple[dict[str, t.Any], str | None]]:
            for record_id in self.record_ids or []:
                raw = self.fetch_one(context, record_id)
                if raw is None:
                    self.logger.warning(
                        "Stream %s account %s: record %s not found (hard-deleted or not visible "
                        "to this grant); nothing to emit",
                        self.name,
                        context.get("account_id"),
                        record_id,
                    )
                    continue
                yield raw, None

        yield from self._emit(fetched(), context, ledger, "webhook", run_started, received=received)
        self._save_state(state, ledger)
        self._log_partition(context, ledger, time.monotonic() - started, trigger="webhook")

    def fetch_one(self, context: dict[str, t.Any], record_id: str) -> dict[str, t.Any] | None:
        """GET a single record by id (None if FreshBooks does not know it)."""
        if self.single_path is None:
            msg = f"Stream {self.name} cannot be fetched by id; run a normal poll instead."
            raise FreshBooksError(msg)
        base = self.path.format(**context)
        path = self.single_path.format(path=base, id=record_id, **context)
        body = self.fetch_json(path, params=dict(self.extra_params))
        if body is None:
            return None
        return self.envelope.single(body, self.single_key)

    # -- the one emit loop ------------------------------------------------------------------------
    def _emit(
        self,
        raws: t.Iterable[tuple[dict[str, t.Any], str | None]],
        context: dict[str, t.Any],
        ledger: ChangeLedger,
        trigger: str,
        run_started: str,
        received: t.Mapping[str, str] | None = None,
    ) -> t.Iterable[dict[str, t.Any]]:
        """The one emit loop: fingerprint -> transform -> recency -> window -> ledger -> record."""
        observe = trigger == "poll" and self.changes.bookmark_from_records
        for raw, cut in raws:
            fp = fingerprint(raw)  # of the raw API JSON, before any transformation
            record = self.transform(raw, context, trigger=trigger)
            if record.get("id") is None:
                self.logger.warning(
                    "Stream %s account %s: a record without an id was skipped (fields: %s)",
                    self.name,
                    context.get("account_id"),
                    ", ".join(sorted(raw)[:20]),
                )
                continue
            if received is not None:
                record["_fb_event_received_at"] = received.get(record["id"])
            recency = self.changes.recency(record, run_started)
            if observe:
                ledger.observe(recency)
            if cut and recency and recency < cut:
                continue  # outside the window: the API ignored or widened the filter
            deleted = record.get("vis_state") == 1
            if ledger.should_emit(record["id"], fp, deleted=deleted):
                yield record
                ledger.record_delivered(record["id"], fp, recency, deleted=deleted)

    def _log_partition(
        self, context: dict[str, t.Any], ledger: ChangeLedger, elapsed: float, *, trigger: str
    ) -> None:
        self.logger.info(
            "Stream %s account %s (%s): %d emitted, %d unchanged skipped in %.1f s",
            self.name,
            context.get("account_id"),
            trigger,
            ledger.emitted,
            ledger.skipped,
            elapsed,
            extra={
                "fb_stream": self.name,
                "fb_account_id": context.get("account_id"),
                "fb_trigger": trigger,
                "fb_emitted": ledger.emitted,
                "fb_skipped": ledger.skipped,
                "fb_elapsed_s": round(elapsed, 3),
            },
        )
