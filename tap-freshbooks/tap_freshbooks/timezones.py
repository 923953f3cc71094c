"""FreshBooks timestamps -> UTC RFC 3339.

FreshBooks' accounting family returns naive ``"YYYY-MM-DD HH:MM:SS"`` wall-clock times in
US/Eastern (every official SDK converts them with America/New_York). The project family returns
naive UTC (``"2020-09-13T03:10:13"``), newer resources RFC 3339 with ``Z``.

The repeated hour when DST ends (01:00-01:59 on the first Sunday of November) cannot be told apart
on the wire: ``"2025-11-02 01:30:00"`` is either 05:30Z (EDT) or 06:30Z (EST). We resolve it to the
*first* occurrence (``fold=0``), as zoneinfo and the SDKs do. Incremental correctness does not depend
on that choice: the change ledger compares fingerprints of the raw record, and windows are whole days.
Non-existent spring-forward times (02:00-02:59 in March) are read with the pre-transition offset.
"""

from __future__ import annotations

import datetime as dt
import functools
import time
from collections.abc import Callable
from zoneinfo import ZoneInfo

EASTERN = ZoneInfo("America/New_York")
UTC = dt.UTC


def format_utc(value: dt.datetime) -> str:
    """Render an aware datetime as RFC 3339 UTC (``Z``), microseconds only when present."""
    value = value.astimezone(UTC)
    fmt = "%Y-%m-%dT%H:%M:%S.%fZ" if value.microsecond else "%Y-%m-%dT%H:%M:%SZ"
    return value.strftime(fmt)


def parse_naive(value: str) -> dt.datetime:
    """Parse ``YYYY-MM-DD HH:MM:SS[.ffffff]`` or the ``T`` form, without a zone."""
    return dt.datetime.fromisoformat(value.strip().replace(" ", "T"))


#: distinct timestamp texts remembered per zone: a conversion is a pure function of the text,
#: and the same text recurs (an invoice's lines carry its ``updated``)
_CACHED = 4096


def eastern_to_utc(value: str | None) -> str | None:
    """Naive US/Eastern wall time -> RFC 3339 UTC string (None/empty stays None)."""
    return _eastern_cached(value) if type(value) is str else _eastern_to_utc(value)


def naive_utc_to_utc(value: str | None) -> str | None:
    """Naive UTC (or RFC 3339 with offset) -> RFC 3339 UTC string."""
    return _naive_utc_cached(value) if type(value) is str else _naive_utc_to_utc(value)


def _eastern_to_utc(value: str | None) -> str | None:
    if not value:
        return None
    naive = parse_naive(value)
    if naive.tzinfo is not None:  # already carries an offset: trust it
        return format_utc(naive)
    return format_utc(naive.replace(tzinfo=EASTERN, fold=0))


def _naive_utc_to_utc(value: str | None) -> str | None:
    if not value:
        return None
    parsed = dt.datetime.fromisoformat(value.strip().replace(" ", "T").replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return format_utc(parsed)


_eastern_cached = functools.lru_cache(maxsize=_CACHED)(_eastern_to_utc)
_naive_utc_cached = functools.lru_cache(maxsize=_CACHED)(_naive_utc_to_utc)

Converter = Callable[[str | None], str | None]

CONVERTERS: dict[str, Converter] = {
    "US/Eastern": eastern_to_utc,
    "America/New_York": eastern_to_utc,
    "UTC": naive_utc_to_utc,
}


def converter_for(zone: str) -> Converter:
    """Return the converter for a configured zone name ("US/Eastern" or "UTC")."""
    try:
        return CONVERTERS[zone]
    except KeyError:
        msg = f"Unknown FreshBooks timestamp zone {zone!r}; use 'US/Eastern' or 'UTC'."
        raise ValueError(msg) from None


def parse_utc(value: str) -> dt.datetime:
    """Parse an RFC 3339 UTC string produced by this module (or any aware ISO string)."""
    parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def eastern_date(instant: dt.datetime) -> dt.date:
    """Calendar date of an instant in US/Eastern."""
    return instant.astimezone(EASTERN).date()


def eastern_midnight_utc(day: dt.date) -> dt.datetime:
    """The UTC instant of 00:00 US/Eastern on ``day``."""
    return dt.datetime.combine(day, dt.time(0, 0), tzinfo=EASTERN).astimezone(UTC)


def utc_now() -> dt.datetime:
    """Aware now in UTC."""
    return dt.datetime.now(tz=UTC)


class _SecondText:
    """``format_utc(utc_now())`` for every record, without a strftime per record."""

    second = -1
    prefix = ""


def utc_now_text() -> str:
    """``format_utc(utc_now())``: the date and time text is rendered once per second."""
    now = time.time()
    second = int(now)
    micro = round((now - second) * 1_000_000)
    if micro >= 1_000_000:  # rounding reached the next second
        second, micro = second + 1, 0
    if second != _SecondText.second:
        _SecondText.prefix = dt.datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        _SecondText.second = second
    return f"{_SecondText.prefix}.{micro:06d}Z" if micro else f"{_SecondText.prefix}Z"
