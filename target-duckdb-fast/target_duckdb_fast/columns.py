"""A stream's JSON schema -> the table's columns: target-duckdb 0.8.0's rules with data_flattening_max_level 0.

The rules reproduced:
- one column per top-level property, sorted by property name; the column name is the property name
  lower-cased (the record value is still looked up by the property's exact name);
- a property with ``anyOf`` takes its first non-null alternative (as nullable); a property with neither
  ``type`` nor ``anyOf`` takes the first entry of its first keyword when that is a string, array or
  object schema, and is dropped otherwise;
- types: object/array -> json; format date-time -> timestamp; format time -> time; number -> double;
  integer+string -> varchar; integer -> smallint/integer/bigint by ``maximum`` (no maximum: hugeint;
  a maximum past bigint: varchar); boolean -> boolean; anything else varchar. ``type`` may be a
  string or a list (target-duckdb tests membership with ``in`` on either: kept, substring and all);
- with add_metadata_columns or hard_delete, _sdc_extracted_at and _sdc_batched_at (timestamp) and
  _sdc_deleted_at (varchar) replace any properties of those names.
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass

METADATA_TYPES = {
    "_sdc_extracted_at": "timestamp",
    "_sdc_batched_at": "timestamp",
    "_sdc_deleted_at": "varchar",
}

_SMALLINT_MAX = 32767
_INTEGER_MAX = 2147483647
_BIGINT_MAX = 9223372036854775807


class SchemaError(Exception):
    """A SCHEMA message this loader (like target-duckdb) cannot turn into a table."""


@dataclass(frozen=True)
class Column:
    #: the property name in the records
    prop: str
    #: the column name in the table (target-duckdb lower-cases it)
    name: str
    #: DuckDB type, lower case as target-duckdb writes it
    type: str
    #: target-duckdb JSON-dumps even a string value when the type is exactly {null, object, array}
    dumps_strings: bool = False

    @property
    def sql(self) -> str:
        return quote(self.name)

    @property
    def is_json(self) -> bool:
        return self.type == "json"


def quote(identifier: str) -> str:
    """A DuckDB identifier in double quotes."""
    return '"' + identifier.replace('"', '""') + '"'


def column_type(prop: dict[str, t.Any]) -> str:
    """The DuckDB type target-duckdb gives a JSON schema property."""
    kind = prop["type"]
    fmt = prop.get("format")
    if "object" in kind or "array" in kind:
        return "json"
    if fmt == "date-time":
        return "timestamp"
    if fmt == "time":
        return "time"
    if "number" in kind:
        return "double"
    if "integer" in kind and "string" in kind:
        return "varchar"
    if "integer" in kind:
        if "maximum" not in prop:
            return "hugeint"
        maximum = prop["maximum"]
        if maximum <= _SMALLINT_MAX:
            return "smallint"
        if maximum <= _INTEGER_MAX:
            return "integer"
        if maximum <= _BIGINT_MAX:
            return "bigint"
        return "varchar"
    if "boolean" in kind:
        return "boolean"
    return "varchar"


def _property_schema(prop: dict[str, t.Any]) -> dict[str, t.Any] | None:
    """The schema target-duckdb types a top-level property by (None: it makes no column)."""
    if "type" in prop:
        return prop
    if "anyOf" in prop:
        choice = next((c for c in prop["anyOf"] if c.get("type") != "null"), None)
        if choice is None:
            raise SchemaError("an anyOf property has only null alternatives")
        return {**choice, "type": ["null", choice["type"]]}
    if not prop:
        return None
    first = next(iter(prop.values()))
    try:
        entry = first[0]
        kind = entry["type"]
    except (LookupError, TypeError):
        raise SchemaError(f"cannot type a property schema {prop!r}") from None
    if kind in ("string", "array", "object"):
        return {**entry, "type": ["null", kind]}
    return None


def schema_columns(schema: dict[str, t.Any], metadata: bool) -> list[Column]:
    """The table's columns, in target-duckdb's order (sorted by property name)."""
    properties = dict(schema.get("properties") or {})
    if metadata:
        for name, kind in METADATA_TYPES.items():
            properties[name] = (
                {"type": ["null", "string"], "format": "date-time"} if kind == "timestamp" else {}
            )
    columns: dict[str, Column] = {}
    for prop_name in sorted(properties):
        if metadata and prop_name in METADATA_TYPES:
            columns[prop_name] = Column(prop_name, prop_name.lower(), METADATA_TYPES[prop_name])
            continue
        prop = properties[prop_name]
        if not isinstance(prop, dict):
            raise SchemaError(f"property {prop_name!r} has no JSON schema object")
        typed = _property_schema(prop)
        if typed is None:
            continue
        kind = typed["type"]
        dumps = isinstance(kind, list) and set(map(str, kind)) == {"null", "object", "array"}
        columns[prop_name] = Column(prop_name, prop_name.lower(), column_type(typed), dumps)
    seen: set[str] = set()
    for column in columns.values():
        if column.name in seen:
            raise SchemaError(f"two properties make the same column name {column.name!r}")
        seen.add(column.name)
    return list(columns.values())
