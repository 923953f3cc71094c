"""How each stream finds what changed: one strategy per mode, one rule each for window and recency.

* ``UpdatedFilter``: records carry an ``updated``-like UTC time; the server may filter on it
  (``search[<key>_min]`` by date on accounting lists, ``updated_since`` on project lists) or not
  (ledger accounts). Bookmark: the newest change time a complete poll read.
* ``ServerSince``: records carry no change time but the server filters on a hidden one
  (``updated_since``). Bookmark: when the last complete poll started.
* ``DateWindow``: records carry a business date only; each poll re-reads ``lookback_days`` of dates.
  Bookmark: when the last complete poll started.
* ``Snapshot``: nothing to filter on; every poll reads everything. No bookmark.

Every mode emits only versions the change ledger has not delivered (fingerprints), so they are all
declared INCREMENTAL in the catalog: a stream's messages are changes, never a full table (unless
the catalog forces FULL_TABLE, which turns a poll into a full snapshot without state).

A stream declares its mode once (``strategy = UpdatedFilter(server="search")``); the stream binds it
to its replication key and the run's settings (``Strategy.bound``) before its first sync. The runs
that use a strategy (poll, full snapshot, fetch by id) are in sync_modes.py.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import typing as t

from tap_freshbooks.ledger import filter_date, window_start
from tap_freshbooks.timezones import eastern_midnight_utc, format_utc, parse_utc


@dataclasses.dataclass(frozen=True)
class Window:
    """What a poll asks for: the first instant it must see and the server-side filter params."""

    start: dt.datetime | None
    params: dict[str, t.Any]

    @property
    def cut(self) -> str | None:
        """Records whose recency is before this are outside the window (the API widened it)."""
        return format_utc(self.start) if self.start else None


class Strategy:
    """One mode of finding changes."""

    name = "snapshot"
    #: True: the ledger only needs entries the next window can still see (prunable)
    windowed = False
    #: True: the bookmark is the newest record recency read; False: the poll's start time
    bookmark_from_records = False

    def bound(self, *, replication_key: str | None, config: t.Mapping[str, t.Any]) -> Strategy:  # noqa: ARG002
        """This strategy for one stream: its replication key and the run's settings filled in."""
        return self

    def window(self, bookmark: str | None, start_date: str | None) -> Window:  # noqa: ARG002
        return Window(None, {})

    def recency(self, record: t.Mapping[str, t.Any], run_started: str) -> str | None:  # noqa: ARG002
        return None

    def next_bookmark(self, max_read: str | None, run_started: str) -> str | None:  # noqa: ARG002
        return None


class Snapshot(Strategy):
    """Read everything, emit what changed."""


@dataclasses.dataclass(frozen=True)
class UpdatedFilter(Strategy):
    """Records carry a UTC change time in ``field`` (default: the stream's replication key);
    ``server`` names the server-side filter (None: the server has none, the ledger copes)."""

    server: t.Literal["search", "since"] | None = None
    field: str = ""
    name = "updated"
    windowed = True
    bookmark_from_records = True

    def bound(self, *, replication_key: str | None, config: t.Mapping[str, t.Any]) -> Strategy:  # noqa: ARG002
        return dataclasses.replace(self, field=self.field or replication_key or "updated")

    def window(self, bookmark: str | None, start_date: str | None) -> Window:
        start = window_start(bookmark, start_date)
        params: dict[str, t.Any] = {}
        if start is not None and self.server == "search":
            params[f"search[{self.field}_min]"] = filter_date(start)
        elif start is not None and self.server == "since":
            params["updated_since"] = format_utc(start)
        return Window(start, params)

    def recency(self, record: t.Mapping[str, t.Any], run_started: str) -> str | None:  # noqa: ARG002
        value = record.get(self.field)
        return value if isinstance(value, str) and value else None

    def next_bookmark(self, max_read: str | None, run_started: str) -> str | None:  # noqa: ARG002
        return max_read


class ServerSince(Strategy):
    """The server filters on a change time the records do not show (``updated_since``)."""

    name = "server_since"
    windowed = True

    def window(self, bookmark: str | None, start_date: str | None) -> Window:
        start = window_start(bookmark, start_date)
        return Window(start, {"updated_since": format_utc(start)} if start else {})

    def recency(self, record: t.Mapping[str, t.Any], run_started: str) -> str | None:  # noqa: ARG002
        return run_started

    def next_bookmark(self, max_read: str | None, run_started: str) -> str | None:  # noqa: ARG002
        return run_started


@dataclasses.dataclass(frozen=True)
class DateWindow(Strategy):
    """Records carry a business date (``field``); each poll re-reads ``lookback_days`` of dates."""

    field: str
    lookback_days: int = 90
    #: the setting that overrides ``lookback_days``
    lookback_setting: str = "journal_lookback_days"
    name = "date_window"
    windowed = True

    def bound(self, *, replication_key: str | None, config: t.Mapping[str, t.Any]) -> Strategy:  # noqa: ARG002
        return dataclasses.replace(
            self, lookback_days=int(config.get(self.lookback_setting, self.lookback_days))
        )

    def window(self, bookmark: str | None, start_date: str | None) -> Window:
        if bookmark:
            day = parse_utc(bookmark).date() - dt.timedelta(days=self.lookback_days)
            start: dt.datetime | None = eastern_midnight_utc(day)
        else:
            start = parse_utc(start_date) if start_date else None
        return Window(start, {"search[start_date]": filter_date(start)} if start else {})

    def recency(self, record: t.Mapping[str, t.Any], run_started: str) -> str | None:  # noqa: ARG002
        value = record.get(self.field)
        if not isinstance(value, str) or not value:
            return None
        try:  # the same clock as the window: 00:00 US/Eastern of the business date
            return format_utc(eastern_midnight_utc(dt.date.fromisoformat(value)))
        except ValueError:
            return None

    def next_bookmark(self, max_read: str | None, run_started: str) -> str | None:  # noqa: ARG002
        return run_started
