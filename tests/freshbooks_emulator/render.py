"""Turn internal records into FreshBooks-shaped JSON values.

Internal records hold aware UTC ``datetime`` objects for every timestamp.  Rendering copies the
record, drops internal keys (leading ``_``) and formats each datetime by the stream's rule:

* accounting ``updated`` / ``created_at`` / ``updated_at`` (and invoice-line ``updated``):
  naive US/Eastern ``"YYYY-MM-DD HH:MM:SS"`` (DST aware; in the repeated November hour two
  different instants render the same wall time, exactly like FreshBooks);
* client ``signup_date`` and (while ``bill_timestamps_utc``, the default) bill / bill vendor
  ``created_at`` / ``updated_at``: naive UTC ``"YYYY-MM-DD HH:MM:SS"`` (freshbooks-sdk 1.3.0
  ``models.py`` ``ACCOUNTING_UTC_DATE_FIELDS``);
* projects: naive UTC ``"YYYY-MM-DDTHH:MM:SS"``;
* time entries / callbacks / identity: ``"YYYY-MM-DDTHH:MM:SSZ"``;
* ledger accounts: ``"YYYY-MM-DDTHH:MM:SS.ffffffZ"``.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from . import streams as S

EASTERN = ZoneInfo("US/Eastern")
UTC = UTC


def as_utc(dt: datetime) -> datetime:
    if dt.tzinfo is None:
        return dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


def fmt_dt(dt: datetime, fmt: str, local_tz: str | None = None) -> str:
    dt = as_utc(dt)
    if fmt == S.ET:
        return dt.astimezone(EASTERN).strftime("%Y-%m-%d %H:%M:%S")
    if fmt == S.ET_MICRO:
        return dt.astimezone(EASTERN).strftime("%Y-%m-%d %H:%M:%S.%f")
    if fmt == S.UTC_NAIVE:
        return dt.strftime("%Y-%m-%d %H:%M:%S")
    if fmt == S.UTC_T:
        return dt.strftime("%Y-%m-%dT%H:%M:%S")
    if fmt == S.UTC_Z:
        return dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    if fmt == S.UTC_MICRO_Z:
        return dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if fmt == S.LOCAL_NAIVE:
        return dt.astimezone(ZoneInfo(local_tz or "America/Toronto")).strftime("%Y-%m-%dT%H:%M:%S")
    raise ValueError(fmt)


def money(amount, code: str = "USD") -> dict:
    return {"amount": dec_str(amount), "code": code}


def dec_str(v) -> str:
    if isinstance(v, str):
        return v
    if isinstance(v, float):
        v = Decimal(repr(v))
    if isinstance(v, int):
        v = Decimal(v)
    if isinstance(v, Decimal):
        if v == v.to_integral_value() and v.as_tuple().exponent >= 0:
            return f"{v:.2f}"
        return str(v)
    return str(v)


_PLAIN = (str, int, bool, float, type(None))


def _conv(value, key, spec: S.StreamSpec, overrides: dict, local_tz):
    t = type(value)
    if t in _PLAIN:
        return value
    if t is dict:
        return {
            k: (v if type(v) in _PLAIN else _conv(v, k, spec, overrides, local_tz))
            for k, v in value.items()
            if not k.startswith("_")
        }
    if t is list:
        return [v if type(v) in _PLAIN else _conv(v, key, spec, overrides, local_tz) for v in value]
    if isinstance(value, datetime):
        fmt = overrides.get(key) or spec.field_formats.get(key) or spec.dt_format
        return fmt_dt(value, fmt, local_tz)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return dec_str(value)
    if isinstance(value, dict):
        return {
            k: _conv(v, k, spec, overrides, local_tz)
            for k, v in value.items()
            if not (isinstance(k, str) and k.startswith("_"))
        }
    if isinstance(value, (list, tuple)):
        return [_conv(v, key, spec, overrides, local_tz) for v in value]
    return value


def render(
    spec: S.StreamSpec, rec: dict, include: frozenset | set = frozenset(), overrides: dict | None = None
) -> dict:
    """Render one internal record as the API shows it (list item and single GET look alike)."""
    overrides = overrides or {}
    local_tz = rec.get("local_timezone")
    out = {}
    for k, v in rec.items():
        if k.startswith("_"):
            continue
        if k == "lines" and spec.name in S.LINE_PARENTS and "lines" not in include:
            continue
        out[k] = v if type(v) in _PLAIN else _conv(v, k, spec, overrides, local_tz)
    return out
