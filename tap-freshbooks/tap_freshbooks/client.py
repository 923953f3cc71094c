"""`FreshBooksStream`: the one base every stream shares.

Holds what is common to all FreshBooks endpoints: the URL base, the shared authenticator (one per
tap process: refresh tokens are single-use), retries (429 honouring ``Retry-After``, 5xx, connection
errors, one refresh-and-retry on 401), the three envelopes, the change ledger that makes every run
exactly-once, webhook-driven fetches by id (``record_ids``) and the audit columns.

A stream subclass is a page of declarations (path, keys, envelope, timestamp fields, strategy).
"""

from __future__ import annotations

import enum
import time
import typing as t
from concurrent.futures import ThreadPoolExecutor
from functools import cached_property
from http import HTTPStatus

import requests
from singer_sdk.exceptions import FatalAPIError, RetriableAPIError
from singer_sdk.singerlib.catalog import REPLICATION_FULL_TABLE, REPLICATION_INCREMENTAL
from singer_sdk.streams import RESTStream

from tap_freshbooks import envelopes, incremental, retries
from tap_freshbooks.errors import REAUTH_COMMAND, FreshBooksError, ReauthorizationRequired
from tap_freshbooks.ledger import ChangeLedger, fingerprint
from tap_freshbooks.record_guard import RecordGuard
from tap_freshbooks.schema_objects import DECIMAL_PRECISION, DECIMAL_SCALE
from tap_freshbooks.sdk_compat import FastRecordMessagesMixin, OwnedStateMixin
from tap_freshbooks.state import PartitionState
from tap_freshbooks.timezones import eastern_to_utc, format_utc, naive_utc_to_utc, utc_now, utc_now_text

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context
    from singer_sdk.streams.rest import HTTPRequest, PageContext

PASS_KEY = "fb_pass"  # added to the context handed to request_records: which list pass this is


class Strategy(enum.Enum):
    """How a stream finds what changed (documented per stream in the README)."""

    #: Records carry an ``updated`` timestamp; server-side date filter + client window + ledger.
    UPDATED = "updated"
    #: No timestamp in the record, but the server filters on a hidden one (``updated_since``).
    SERVER_SINCE = "server_since"
    #: Records carry a business date; a date window with a lookback.
    DATE_WINDOW = "date_window"
    #: Nothing to filter on: read everything, emit only what changed (fingerprints).
    SNAPSHOT = "snapshot"


class BadResponse(FreshBooksError):
    """FreshBooks answered with something we cannot use."""


class FreshBooksStream(OwnedStateMixin, FastRecordMessagesMixin, RESTStream):
    """Base stream for every FreshBooks endpoint."""

    # -- declarations overridden by streams -------------------------------------------------------
    envelope: envelopes.Envelope = envelopes.ACCOUNTING
    list_key: str = ""
    single_key: str = ""
    #: path of a single record, relative to ``path``; None = cannot fetch by id
    single_path: str | None = "{path}/{id}"
    id_field: str = "id"
    primary_keys: t.ClassVar[list[str]] = ["account_id", "id"]
    state_partitioning_keys: t.ClassVar[list[str] | None] = ["account_id"]
    strategy: Strategy = Strategy.SNAPSHOT
    #: fields holding naive US/Eastern wall time, converted to UTC
    eastern_fields: tuple[str, ...] = ()
    #: fields holding naive UTC (or RFC 3339) times, normalised to RFC 3339 Z
    utc_fields: tuple[str, ...] = ()
    #: name of the server-side "updated since" filter style: "search" (accounting), "since" (projects)
    server_filter: str | None = None
    #: record field with a business date (DATE_WINDOW strategy) and its request params
    date_field: str | None = None
    #: list hides vis_state 1 and accepts search[vis_state]=1 (a second pass finds deletions)
    has_vis_state: bool = False
    #: business-scoped stream (projects/time/services/ledger): record also carries business_id
    business_scoped: bool = False
    #: fields never extracted (secrets such as client-portal tokens, or pure duplicates)
    drop_fields: tuple[str, ...] = ()
    #: constant query params
    extra_params: t.ClassVar[dict[str, t.Any]] = {}

    # -- SDK wiring ----------------------------------------------------------------------------
    @property
    def url_base(self) -> str:
        return str(self.config.get("api_url") or "https://api.freshbooks.com").rstrip("/")

    @property
    def authenticator(self):  # type: ignore[override]
        return self._tap.authenticator  # one per process: refresh tokens are single-use

    @property
    def http_headers(self) -> dict:
        return {"Accept": "application/json"}

    @property
    def timeout(self) -> int:
        return int(self.config.get("request_timeout", 60))

    def _generate_schema_messages(self):  # type: ignore[override]
        """SCHEMA messages, with the decimal precision/scale the SDK's catalog model drops.

        singer-sdk builds stream maps from its catalog ``Schema`` model, which keeps only standard
        JSON-schema keys, so ``precision``/``scale`` vanish from every SCHEMA message and SQL
        targets would size money columns NUMBER(38,0) (Snowflake) or NUMERIC(18,0) (Redshift),
        rounding the cents away. The sizes are the tap's own: put them back.
        """
        for message in super()._generate_schema_messages():
            restore_decimal_sizes(message.schema)
            yield message

    @property
    def partitions(self) -> list[dict] | None:
        """One partition per FreshBooks account."""
        return [dict(account) for account in self._tap.accounts]

    def get_new_paginator(self) -> envelopes.FreshBooksPaginator:
        return envelopes.FreshBooksPaginator(self.envelope)

    def parse_response(self, response: requests.Response) -> t.Iterable[dict]:
        body = envelopes.parse_json(response)
        try:
            yield from self.envelope.items(body, self.list_key)
        except (KeyError, TypeError, AttributeError) as exc:
            msg = f"Unexpected {self.envelope.name} envelope from {self.path} (no {self.list_key!r})"
            raise BadResponse(msg) from exc

    # -- retries (the policy itself is in retries.py) ---------------------------------------------
    #: waits of every request of this stream (tests install small ones)
    retry_policy: t.ClassVar[retries.RetryPolicy] = retries.RetryPolicy()

    def backoff_max_tries(self) -> int:
        return max(1, int(self.config.get("max_request_tries", 8)))

    def backoff_wait_generator(self):  # type: ignore[override]
        """A new generator, so a new attempt counter, per request (python-backoff calls this per call)."""
        return retries.wait_generator(self.retry_policy)

    def backoff_jitter(self, value: float) -> float:
        return value  # retries.RetryPolicy jitters, where the Retry-After floor is known

    def backoff_handler(self, details: dict) -> None:  # type: ignore[override]
        retries.log_backoff(self.logger, f"Stream {self.name}", details, self.backoff_max_tries())

    def request_decorator(self, func: t.Callable) -> t.Callable:
        """``func`` with retries.py's policy; a give-up is one line (stream, path, last failure)."""
        return retries.retrying(
            func,
            subject=f"Stream {self.name}",
            wait_gen=self.backoff_wait_generator,
            max_tries=self.backoff_max_tries,
            jitter=self.backoff_jitter,
            on_backoff=self.backoff_handler,
        )

    def validate_response(self, response: requests.Response) -> None:
        status = response.status_code
        if status == HTTPStatus.UNAUTHORIZED:
            used = _bearer(response.request)
            rejected = self._tap.rejected_access_tokens
            # one refresh per request: the PreparedRequest is the same object on every attempt
            refreshed_for_this_request = getattr(response.request, "_fb_token_refreshed", False)
            if used in rejected or refreshed_for_this_request:
                msg = (
                    "FreshBooks rejected a freshly refreshed access token. The grant may have "
                    f"been revoked. Re-authorize with: {REAUTH_COMMAND}"
                )
                raise ReauthorizationRequired(msg)
            rejected.add(used)
            self.authenticator.handle_unauthorized(used)
            if response.request is not None:
                response.request._fb_token_refreshed = True  # type: ignore[attr-defined]  # noqa: SLF001
            raise RetriableAPIError("401: access token refreshed, retrying", response)
        if status == HTTPStatus.FORBIDDEN:
            msg = (
                f"FreshBooks refused {self.name} (403 Forbidden): the OAuth app lacks a scope this "
                f"stream needs ({_error_text(response)}). Add the scope to the app, then run "
                "`tap-freshbooks auth login` again, or deselect the stream."
            )
            raise FatalAPIError(msg)
        if retries.is_retriable_status(status):
            raise RetriableAPIError(self.response_error_message(response), response)
        if status >= HTTPStatus.BAD_REQUEST:
            raise FatalAPIError(self.response_error_message(response))
        if status != HTTPStatus.NO_CONTENT:
            retries.decode_json_or_retry(response)  # inside the retried call: a bad body is retried

    def response_error_message(self, response: requests.Response) -> str:
        # Never echo headers or the query string (they can carry ids users consider private).
        path = requests.utils.urlparse(response.url).path
        return f"{response.status_code} from FreshBooks for {path}: {_error_text(response)}"

    # -- requests -------------------------------------------------------------------------------
    def get_http_request(self, *, page: PageContext) -> HTTPRequest:
        request = super().get_http_request(page=page)
        context = dict(page.stream_context or {})
        params: dict[str, t.Any] = {"page": page.next_page_token or 1, "per_page": envelopes.PER_PAGE}
        if self.envelope is envelopes.LEDGER:
            params = {}
        params.update(self.extra_params)
        params.update(context.get(PASS_KEY, {}).get("params", {}))
        request.params = params
        request.safe_query_chars = "[]"
        return request

    def request_records(self, context: Context | None) -> t.Iterable[dict]:
        """Every record of every page, the next page already on its way while this one is emitted.

        The same requests in the same order as the SDK's loop, one at a time: page n+1 is
        requested once page n has arrived and told whether there is a page n+1, and it travels
        while page n's records are transformed and written. Waiting for the wire and working on
        records overlap instead of taking turns. A failure of page n+1 surfaces after page n's
        records, as before.
        """
        paginator = self.get_new_paginator()
        send = self.request_decorator(self._request)
        pages = 0
        with (
            self.get_http_request_counter() as request_counter,
            ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"fetch-{self.name}") as wire,
        ):
            request_counter.with_context(context)

            def request_next() -> tuple[requests.PreparedRequest, t.Any]:
                prepared = self._prepare_request(context=context, page=paginator)
                return prepared, wire.submit(send, prepared, context)

            in_flight = request_next()
            while in_flight is not None:
                prepared, arriving = in_flight
                response = arriving.result()
                request_counter.increment()
                self.update_sync_costs(prepared, response, context)
                records = list(self.parse_response(response))
                if not records and not paginator.continue_if_empty(response):
                    self.log(
                        "Pagination stopped after %d pages because no records were found in the last response",
                        pages,
                    )
                    return
                pages += 1 if records else 0
                paginator.advance(response)
                in_flight = None if paginator.finished else request_next()
                yield from records

    def fetch_json(self, path: str, params: dict | None = None) -> t.Any:
        """GET one URL with the stream's auth and retries; returns the decoded body (or None on 404)."""
        prepared = self.build_prepared_request(
            method="GET",
            url=f"{self.url_base}{path}",
            params=params or {},
            headers={**self.http_headers, "User-Agent": self.user_agent},
        )
        request = self.request_decorator(self._fetch_allowing_404)
        return request(prepared)

    def _fetch_allowing_404(self, prepared: requests.PreparedRequest) -> t.Any:
        authed = self.authenticator(prepared)
        response = self.requests_session.send(authed, timeout=self.timeout)
        if response.status_code == HTTPStatus.NOT_FOUND:
            return None
        self.validate_response(response)
        return envelopes.parse_json(response)

    # -- incremental: what changed, and the state that proves it ---------------------------------
    @cached_property
    def changes(self) -> incremental.Strategy:
        """How this stream finds changes (from its declarations; see incremental.py)."""
        if self.strategy is Strategy.UPDATED:
            server = self.server_filter if self.server_filter in {"search", "since"} else None
            return incremental.UpdatedFilter(field=self.replication_key or "updated", server=server)  # type: ignore[arg-type]
        if self.strategy is Strategy.SERVER_SINCE:
            return incremental.ServerSince()
        if self.strategy is Strategy.DATE_WINDOW:
            lookback = int(self.config.get("journal_lookback_days", 90))
            return incremental.DateWindow(field=str(self.date_field), lookback_days=lookback)
        return incremental.Snapshot()

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        # Every stream emits only versions not delivered before, so the catalog says INCREMENTAL
        # (a loader must never read a run's records as the whole table). A catalog may force
        # FULL_TABLE instead; then every run sends a full snapshot and keeps no state.
        if not self.forced_replication_method:
            self.forced_replication_method = REPLICATION_INCREMENTAL

    @cached_property
    def guard(self) -> RecordGuard:
        """Sets aside values that violate the schema (record_guard.py)."""
        return RecordGuard(self.name, self.schema)

    @property
    def record_ids(self) -> list[str] | None:
        """Ids to fetch for this stream in a webhook-driven run, or None for a normal poll."""
        wanted = self._tap.record_ids
        if wanted is None:
            return None
        return [str(i) for i in wanted.get(self.name, [])]

    def get_records(self, context: Context | None) -> t.Iterable[dict]:
        context = dict(context or {})
        if self.record_ids is not None:
            yield from self._fetch_by_id(context)
        elif self.replication_method == REPLICATION_FULL_TABLE:
            yield from self._full_snapshot(context)
        else:
            yield from self._poll(context)

    def _load_state(self, context: dict) -> PartitionState:
        return PartitionState.load(self.get_context_state(context), strategy=self.changes.name)

    def _save_state(self, state: PartitionState, ledger: ChangeLedger) -> None:
        """Write the partition state: ledger entries the next window can still see, the bookmark."""
        if self.changes.windowed:
            ledger.prune(self.changes.window(state.bookmark, None).cut)
        state.save(replication_key=self.replication_key)

    def _list(self, context: dict, params: dict[str, t.Any]) -> t.Iterable[dict]:
        """Every page of the list endpoint with these filter params."""
        return self.request_records({**context, PASS_KEY: {"params": params}})

    def _passes(self, context: dict, window: incremental.Window) -> t.Iterable[tuple[dict, str | None]]:
        """(raw record, window cut) for a whole poll: the changed list, then the deleted records.

        Deleted records are hidden from lists; ``search[vis_state]=1`` finds them. That pass has
        no date filter, because a delete might not bump ``updated``.
        """
        for raw in self._list(context, window.params):
            yield raw, window.cut
        if self.has_vis_state:
            for raw in self._list(context, {"search[vis_state]": 1}):
                yield raw, None

    def _poll(self, context: dict) -> t.Iterable[dict]:
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

    def _full_snapshot(self, context: dict) -> t.Iterable[dict]:
        """FULL_TABLE forced by the catalog: every current record, no state read or written."""
        started = time.monotonic()
        throwaway = PartitionState({}, strategy=self.changes.name, bookmark=None, seen={}, deleted={})
        ledger = ChangeLedger(throwaway, incremental=False)
        everything = incremental.Window(None, {})
        run_started = format_utc(utc_now())
        yield from self._emit(self._passes(context, everything), context, ledger, "poll", run_started)
        self._log_partition(context, ledger, time.monotonic() - started, trigger="poll")

    def _fetch_by_id(self, context: dict) -> t.Iterable[dict]:
        """Webhook-driven run: fetch exactly these ids; ledger entries only (rule 3), no bookmark."""
        started = time.monotonic()
        run_started = format_utc(utc_now())
        state = self._load_state(context)
        ledger = ChangeLedger(state, incremental=self.changes.windowed, prunes=False)
        received = (self.config.get("event_received_at") or {}).get(self.name, {})

        def fetched() -> t.Iterator[tuple[dict, str | None]]:
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

    def _emit(
        self,
        raws: t.Iterable[tuple[dict, str | None]],
        context: dict,
        ledger: ChangeLedger,
        trigger: str,
        run_started: str,
        received: t.Mapping[str, str] | None = None,
    ) -> t.Iterable[dict]:
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

    def _log_partition(self, context: dict, ledger: ChangeLedger, elapsed: float, *, trigger: str) -> None:
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

    def fetch_one(self, context: dict, record_id: str) -> dict | None:
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

    def transform(self, raw: dict, context: dict, *, trigger: str) -> dict:
        """API record -> Singer record: ids, UTC timestamps, account ids, audit columns.

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


def _is_decimal(prop: dict) -> bool:
    return prop.get("format") == "x-singer.decimal"


def restore_decimal_sizes(node: t.Any) -> None:
    """Add the tap's DECIMAL precision/scale to every x-singer.decimal node lacking them."""
    if isinstance(node, dict):
        if _is_decimal(node):
            node.setdefault("precision", DECIMAL_PRECISION)
            node.setdefault("scale", DECIMAL_SCALE)
        for value in node.values():
            restore_decimal_sizes(value)
    elif isinstance(node, list):
        for value in node:
            restore_decimal_sizes(value)


def _bearer(request: requests.PreparedRequest | None) -> str:
    header = (request.headers.get("Authorization") if request is not None else "") or ""
    return header.removeprefix("Bearer ").strip()


def _error_text(response: requests.Response) -> str:
    """The human part of a FreshBooks error body, whichever family it comes from."""
    try:
        body = response.json()
    except ValueError:
        return (response.text or response.reason or "").strip()[:300]
    if isinstance(body, dict):
        errors = (
            (body.get("response") or {}).get("errors") if isinstance(body.get("response"), dict) else None
        )
        if errors:
            return "; ".join(str(e.get("message", e)) for e in errors)[:300]
        for key in ("error_description", "message", "error"):
            if body.get(key):
                return str(body[key])[:300]
    return str(body)[:300]
