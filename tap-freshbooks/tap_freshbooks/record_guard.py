"""An odd record never ends a run: values that violate their declared type are set aside.

FreshBooks' types drift (an integer id sent as ``"12"``, ``"0000-00-00"`` dates, a money amount
that is not a number). A loader that validates records (target-duckdb, target-postgres) would
stop the whole run on one such value, and the SDK's type conformance would pass it through.
``RecordGuard`` checks every declared field of a record against its schema, before it leaves:

* a lossless fix is applied silently (``"12"`` in an integer field becomes ``12``; a number in a
  string field becomes its text);
* anything else is set to null and its raw value kept in ``_fb_unparsed`` (a JSON object keyed by
  the field's path, e.g. ``{"amount.amount": "12,50", "due_date": "0000-00-00"}``), so nothing is
  lost and the row still loads;
* at the end of the stream's run, one WARNING per stream names the stream, the record ids and the
  fields.
"""

from __future__ import annotations

import datetime as dt
import decimal
import re
import typing as t

UNPARSED = "_fb_unparsed"
_INT = re.compile(r"^[+-]?\d+$")
_MAX_IDS_LOGGED = 20

Check = t.Callable[[t.Any], tuple[bool, t.Any]]  # value -> (ok, fixed value)


def _types(node: dict[str, t.Any]) -> set[str]:
    kind = node.get("type", [])
    return {kind} if isinstance(kind, str) else set(kind)


def _is_datetime(value: str) -> bool:
    try:
        dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def _is_date(value: str) -> bool:
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        return _is_datetime(value)
    return True


def _is_decimal(value: str) -> bool:
    try:
        return decimal.Decimal(value).is_finite()
    except (decimal.InvalidOperation, ValueError):
        return False


#: string formats whose text is parsed to check it
_PARSED_FORMATS: dict[str, t.Callable[[str], bool]] = {
    "date-time": _is_datetime,
    "date": _is_date,
    "x-singer.decimal": _is_decimal,
}


def _scalar_check(node: dict[str, t.Any]) -> Check | None:
    kinds = _types(node) - {"null"}
    fmt = node.get("format")
    if not kinds:
        return None
    if kinds == {"integer"}:

        def check_int(v: t.Any) -> tuple[bool, t.Any]:
            if isinstance(v, bool):
                return False, v
            if isinstance(v, int):
                return True, v
            if isinstance(v, str) and _INT.match(v.strip()):
                return True, int(v)
            if isinstance(v, (float, decimal.Decimal)) and v == int(v):
                return True, int(v)
            return False, v

        return check_int
    if kinds == {"boolean"}:

        def check_bool(v: t.Any) -> tuple[bool, t.Any]:
            if isinstance(v, bool):
                return True, v
            if v in (0, 1) and isinstance(v, int):
                return True, bool(v)
            if isinstance(v, str) and v.lower() in {"true", "false"}:
                return True, v.lower() == "true"
            return False, v

        return check_bool
    if kinds == {"number"}:

        def check_number(v: t.Any) -> tuple[bool, t.Any]:
            if isinstance(v, bool):
                return False, v
            if isinstance(v, (int, float, decimal.Decimal)):
                return True, v
            if isinstance(v, str) and _is_decimal(v):
                return True, decimal.Decimal(v)
            return False, v

        return check_number
    if kinds == {"string"}:
        valid = _PARSED_FORMATS.get(str(fmt)) if fmt else None

        def check_string(v: t.Any) -> tuple[bool, t.Any]:
            if isinstance(v, (int, float, decimal.Decimal)) and not isinstance(v, bool):
                v = str(v)
            if not isinstance(v, str):
                return False, v
            if valid is not None and not valid(v):
                return False, v
            return True, v

        return check_string
    return None  # several types, or free-form: anything goes


#: (value, field path, unparsed) -> the value to keep (None and an entry in unparsed if set aside)
Compiled = t.Callable[[t.Any, str, dict[str, t.Any]], t.Any]


class _FieldCheck(t.NamedTuple):
    """A compiled check, and the value types it passes through unchanged (no call needed)."""

    check: Compiled
    passes: frozenset[type]


def _passes_unchanged(node: dict[str, t.Any], kinds: set[str]) -> frozenset[type]:
    """Types a scalar check returns as they are, untouched (so the check need not run)."""
    scalars = kinds - {"null"}
    if not scalars:
        return frozenset({str, int, float, bool, dict, list, decimal.Decimal})  # anything goes
    if len(scalars) > 1:
        return frozenset({str, int, float, bool, dict, list, decimal.Decimal})  # several types
    if scalars == {"integer"}:
        return frozenset({int})
    if scalars == {"boolean"}:
        return frozenset({bool})
    if scalars == {"number"}:
        return frozenset({int, float, decimal.Decimal})
    if scalars == {"string"} and node.get("format") not in _PARSED_FORMATS:
        return frozenset({str})
    return frozenset()  # formatted strings are parsed; other types go through the check


class RecordGuard:
    """Checks records of one stream against its schema; collects what it set aside."""

    def __init__(self, stream_name: str, schema: dict[str, t.Any]) -> None:
        self.stream_name = stream_name
        self._schema = schema
        self._checks: tuple[tuple[str, _FieldCheck], ...] = tuple(
            (name, self._compile(prop))
            for name, prop in (schema.get("properties") or {}).items()
            if name != UNPARSED
        )
        #: record id -> field paths set aside, in this run
        self.findings: dict[str, list[str]] = {}

    # -- compile the schema once --------------------------------------------------------------
    def _compile(self, node: dict[str, t.Any]) -> _FieldCheck:
        kinds = _types(node)
        nullable = "null" in kinds or not kinds
        none = frozenset({type(None)}) if nullable else frozenset()
        if "object" in kinds and isinstance(node.get("properties"), dict):
            props = {k: self._compile(v) for k, v in node["properties"].items()}
            closed = node.get("additionalProperties") is False

            def check_object(value: t.Any, path: str, unparsed: dict[str, t.Any]) -> t.Any:
                if value is None:
                    return None
                if not isinstance(value, dict):
                    unparsed[path] = value
                    return None
                for key in list(value):
                    entry = props.get(key)
                    if entry is not None:
                        item = value[key]
                        if type(item) not in entry.passes:
                            value[key] = entry.check(item, f"{path}.{key}", unparsed)
                    elif closed:
                        unparsed[f"{path}.{key}"] = value.pop(key)
                return value

            return _FieldCheck(check_object, none)
        if "object" in kinds:

            def check_any_object(value: t.Any, path: str, unparsed: dict[str, t.Any]) -> t.Any:
                if value is None or isinstance(value, dict):
                    return value
                unparsed[path] = value
                return None

            return _FieldCheck(check_any_object, none | {dict})
        if "array" in kinds:
            items = node.get("items")
            item_check = self._compile(items) if isinstance(items, dict) and items else None

            def check_array(value: t.Any, path: str, unparsed: dict[str, t.Any]) -> t.Any:
                if value is None:
                    return None
                if not isinstance(value, list):
                    unparsed[path] = value
                    return None
                if item_check is not None:
                    check, passes = item_check
                    for i, item in enumerate(value):
                        if type(item) not in passes:
                            value[i] = check(item, f"{path}[{i}]", unparsed)
                return value

            return _FieldCheck(check_array, none if item_check is not None else none | {list})
        scalar = _scalar_check(node)

        def check_scalar(value: t.Any, path: str, unparsed: dict[str, t.Any]) -> t.Any:
            if value is None:
                if nullable:
                    return None
                unparsed[path] = value
                return None
            if scalar is None:
                return value
            ok, fixed = scalar(value)
            if ok:
                return fixed
            unparsed[path] = value
            return None

        return _FieldCheck(check_scalar, none | _passes_unchanged(node, kinds))

    # -- per record ---------------------------------------------------------------------------
    def check(self, record: dict[str, t.Any]) -> dict[str, t.Any]:
        """Fix or set aside every value that violates its declared type (in place)."""
        prior = record.get(UNPARSED)
        unparsed: dict[str, t.Any] = dict(prior) if prior else {}
        for name, (check, passes) in self._checks:  # schema order
            if name in record:
                value = record[name]
                if type(value) not in passes:
                    record[name] = check(value, name, unparsed)
        if unparsed:
            record[UNPARSED] = unparsed
            paths = self.findings.setdefault(str(record.get("id")), [])
            paths.extend(p for p in list(unparsed) if p not in paths)
        else:
            record[UNPARSED] = None
        return record

    @staticmethod
    def set_aside(record: dict[str, t.Any], field: str, raw: t.Any) -> None:
        """Keep a raw value a transformation could not parse (e.g. a timestamp); ``check`` reports it."""
        record[field] = None
        unparsed = dict(record.get(UNPARSED) or {})
        unparsed[field] = raw
        record[UNPARSED] = unparsed

    def warning(self) -> str | None:
        """One line for the log naming the stream, the ids and the fields, or None."""
        if not self.findings:
            return None
        ids = list(self.findings)
        fields = sorted({f for paths in self.findings.values() for f in paths})
        shown = ", ".join(ids[:_MAX_IDS_LOGGED]) + (
            f" and {len(ids) - _MAX_IDS_LOGGED} more" if len(ids) > _MAX_IDS_LOGGED else ""
        )
        return (
            f"Stream {self.stream_name}: {len(ids)} record(s) had values that do not match their "
            f"declared type; loaded with those fields null and the raw values in {UNPARSED}. "
            f"ids: {shown}; fields: {', '.join(fields)}"
        )

    def reset(self) -> None:
        self.findings.clear()
