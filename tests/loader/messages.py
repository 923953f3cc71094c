"""Realistic Singer message sets for the loader tests: the value shapes a tap sends, in the order it sends them."""

from __future__ import annotations

import typing as t

Message = dict[str, t.Any]

STRING = {"type": ["null", "string"]}
DATETIME = {"type": ["null", "string"], "format": "date-time"}

CLIENT_SCHEMA: dict[str, t.Any] = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "account_id": {"type": "string"},
        "organization": STRING,
        "email": {"type": ["null", "string"], "format": "email"},
        "balance": {"type": ["null", "number"]},
        "active": {"type": ["null", "boolean"]},
        "updated": DATETIME,
        "created_on": {"type": ["null", "string"], "format": "date"},
        "call_time": {"type": ["null", "string"], "format": "time"},
        "vis_state": {"type": ["null", "integer"], "maximum": 100},
        "page_views": {"type": ["null", "integer"], "maximum": 100000},
        "bytes_sent": {"type": ["null", "integer"], "maximum": 2**40},
        "code": {"type": ["null", "integer", "string"]},
        "Notes_HTML": STRING,
        "tags": {"type": ["null", "array"], "items": {"type": "string"}},
        "address": {"type": ["null", "object"], "properties": {"street": STRING}},
        "anything": {"anyOf": [{"type": "null"}, {"type": "object"}]},
    },
}

INVOICE_SCHEMA: dict[str, t.Any] = {
    "type": "object",
    "properties": {
        "account_id": {"type": "string"},
        "id": {"type": "integer"},
        "amount": {"type": ["null", "object"], "properties": {"amount": STRING, "code": STRING}},
        "lines": {"type": ["null", "array"], "items": {"type": "object"}},
        "total": {"type": ["null", "number"]},
        "status": {"type": ["null", "integer"]},
        "paid": {"type": ["null", "boolean"]},
        "updated": DATETIME,
    },
}

ITEM_SCHEMA: dict[str, t.Any] = {
    "type": "object",
    "properties": {"itemid": {"type": "integer"}, "name": STRING, "qty": {"type": ["null", "number"]}},
}

ODD_STRINGS = [
    "",
    'He said "hi", then left',
    "two\nlines\r\nand a tab\t",
    "Café ☕ 日本語 — ünïcödé",
    "back\\slash, comma; semicolon",
    " leading and trailing ",
    "NULL",
    "'single quotes'",
]

TIMES = [
    "2024-03-01T10:00:00Z",
    "2024-03-01T10:00:00+02:00",
    "2024-03-01T10:00:00.123456Z",
    "2024-02-29T23:59:59-05:00",
    "2024-03-01T10:00:00",
    None,
    "",
]

NESTED: list[t.Any] = [
    {"street": "1 Main St", "geo": {"lat": 1.5, "lng": -2}},
    [],
    {},
    [{"a": 1}, {"b": [True, None]}],
    None,
    {"quote": 'say "x"', "unicode": "é☕"},
]


def _schema(stream: str, schema: dict[str, t.Any], keys: list[str]) -> Message:
    return {"type": "SCHEMA", "stream": stream, "schema": schema, "key_properties": keys}


def _record(stream: str, record: dict[str, t.Any], n: int) -> Message:
    return {
        "type": "RECORD",
        "stream": stream,
        "record": record,
        "time_extracted": f"2024-03-0{1 + n % 3}T0{n % 10}:00:00.{n:06d}+00:00",
    }


def _state(part: int, run: int) -> Message:
    return {
        "type": "STATE",
        "value": {
            "bookmarks": {
                "clients": {"replication_key": "updated", "replication_key_value": f"run{run}-part{part}"},
                "invoices": {"replication_key_value": f"run{run}-part{part}"},
            }
        },
    }


def client(n: int, run: int) -> dict[str, t.Any]:
    record = {
        "id": n,
        "account_id": "AB12",
        "organization": ODD_STRINGS[n % len(ODD_STRINGS)] + (f" run {run}" if run > 1 and n % 2 else ""),
        "email": None if n % 4 == 0 else f"c{n}@example.com",
        "balance": [12.5, 0, -3.25, 1e-7, 123456789.123, 0.1, None][n % 7],
        "active": [True, False, None][n % 3],
        "updated": TIMES[n % len(TIMES)],
        "created_on": "2024-01-0" + str(1 + n % 9),
        "call_time": ["10:11:12", None, "23:59:59.5"][n % 3],
        "vis_state": n % 3,
        "page_views": n * 1000,
        "bytes_sent": n * 2**33,
        "code": [7, "A7", None][n % 3],
        "Notes_HTML": f"<p>{n}</p>",
        "tags": [["a", "b"], [], None, ["é"]][n % 4],
        "address": NESTED[n % len(NESTED)],
        "anything": NESTED[(n + 1) % len(NESTED)],
        "not_in_schema": {"ignored": True},
    }
    if n % 5 == 0:
        del record["email"]  # a property the record does not carry at all
    return record


def invoice(n: int, run: int) -> dict[str, t.Any]:
    return {
        "account_id": ["AB12", "CD34"][n % 2],
        "id": 1000 + n,
        "amount": {"amount": f"{n}.50", "code": "USD"},
        "lines": [{"lineid": i, "name": ODD_STRINGS[(n + i) % len(ODD_STRINGS)]} for i in range(n % 3)],
        "total": n * 1.1 + run,
        "status": n % 4,
        "paid": n % 2 == 0,
        "updated": TIMES[(n + run) % len(TIMES)],
    }


def equivalence_messages(run: int) -> list[Message]:
    """Three parts, each ending in a STATE; a SCHEMA that adds a property between parts two and three.

    Run 2 changes some values of run 1's keys and adds new keys (for the upsert).
    """
    first = range(1, 9) if run == 1 else range(5, 14)
    messages: list[Message] = [
        _schema("clients", CLIENT_SCHEMA, ["id"]),
        _schema("invoices", INVOICE_SCHEMA, ["account_id", "id"]),
        _schema("sales-Line.Items", ITEM_SCHEMA, ["itemid"]),
    ]
    for n in first:
        messages.append(_record("clients", client(n, run), n))
        messages.append(_record("invoices", invoice(n, run), n))
    # the same key twice in one batch: the last one wins
    messages.append(_record("clients", {**client(3, run), "organization": f"second copy run {run}"}, 99))
    messages.append(_state(1, run))
    for n in range(1, 4):
        messages.append(_record("sales-Line.Items", {"itemid": n, "name": f"item {n}", "qty": n / 4}, n))
    messages.append(_record("invoices", {**invoice(2, run), "total": None, "paid": False}, 50))
    messages.append(_state(2, run))
    messages.append(_schema("clients", _with_website(CLIENT_SCHEMA), ["id"]))
    for n in range(20, 23):
        messages.append(_record("clients", {**client(n, run), "website": f"https://{n}.example"}, n))
    messages.append(_record("sales-Line.Items", {"itemid": 2, "name": "", "qty": 0}, 7))
    messages.append({"type": "ACTIVATE_VERSION", "stream": "clients", "version": 1})
    messages.append(_state(3, run))
    return messages


def _with_website(schema: dict[str, t.Any]) -> dict[str, t.Any]:
    return {**schema, "properties": {**schema["properties"], "website": STRING}}


def deletion_messages() -> list[Message]:
    """hard_delete and a stream without keys (primary_key_required false)."""
    events = {
        "type": "object",
        "properties": {"kind": STRING, "at": DATETIME, "payload": {"type": ["null", "object"]}},
    }
    messages: list[Message] = [
        _schema("clients", CLIENT_SCHEMA, ["id"]),
        _schema("events", events, []),
    ]
    for n in range(1, 7):
        messages.append(_record("clients", client(n, 1), n))
        messages.append(_record("events", {"kind": f"k{n % 2}", "at": TIMES[n % 5], "payload": {"n": n}}, n))
    messages.append(_record("clients", {**client(4, 1), "_sdc_deleted_at": "2024-03-05T00:00:00Z"}, 40))
    messages.append(_state(1, 1))
    messages.append(_record("events", {"kind": "", "at": None, "payload": None}, 9))
    messages.append(_state(2, 1))
    return messages


def type_change_messages() -> list[Message]:
    """A property whose type changes: the old column is kept under a versioned name."""
    v2 = {
        **CLIENT_SCHEMA,
        "properties": {**CLIENT_SCHEMA["properties"], "code": {"type": ["null", "integer"]}},
    }
    messages: list[Message] = [_schema("clients", CLIENT_SCHEMA, ["id"])]
    messages += [_record("clients", client(n, 1), n) for n in range(1, 5)]
    messages.append(_state(1, 1))
    messages.append(_schema("clients", v2, ["id"]))
    messages += [_record("clients", {**client(n, 1), "code": n * 10}, n) for n in range(3, 7)]
    messages.append(_state(2, 1))
    return messages


def odd_value_messages() -> list[Message]:
    """Values that do not match their property's type, which target-duckdb's CSV load still accepts."""
    props = {
        "id": {"type": "integer"},
        "text": STRING,
        "whole": {"type": ["null", "integer"]},
        "small": {"type": ["null", "integer"], "maximum": 100},
        "doc": {"type": ["null", "object"]},
        "real": {"type": ["null", "number"]},
        "flag": {"type": ["null", "boolean"]},
        "at": DATETIME,
        "clock": {"type": ["null", "string"], "format": "time"},
    }
    cases: dict[str, list[t.Any]] = {
        "text": [1.5, 12, 1e20, 0.1, 10**22, 0, "0"],
        "whole": [3.0, 10**25, "12", "  7 ", 0, -(2**70)],
        "small": [100, "5", -32768],
        "doc": ['{"a": 1}', "[1, 2]", 5, "", [], {}, "null"],
        # (-0.0 is left out: target-duckdb's CSV makes it 0.0, DuckDB's cast keeps the sign; they compare equal)
        "real": [1.7976931348623157e308, "3.5", 0, 1e-320, "1e3"],
        "flag": ["true", "false", "1", 0, 1, "True", "FALSE"],
        "at": ["2024-03-01", "2024-03-01 10:00:00", "2024-03-01T10:00:00.1234567Z", "0001-01-01T00:00:00Z"],
        "clock": ["10:00:00.123", "23:59:59", "00:00:00+02:00"],
    }
    messages: list[Message] = [_schema("odd_values", {"type": "object", "properties": props}, ["id"])]
    n = 0
    for prop, values in cases.items():
        for value in values:
            n += 1
            messages.append(_record("odd_values", {"id": n, prop: value}, n))
    messages.append(_state(1, 1))
    return messages


def schema_form_messages() -> list[Message]:
    """The property forms target-duckdb types: plain and list types, anyOf, oneOf-style lists, maximums."""
    props = {
        "id": {"type": "integer"},
        "plain_string": {"type": "string"},
        "int_or_number": {"type": ["integer", "number"]},
        "int_or_string": {"type": ["null", "integer", "string"]},
        "huge_max": {"type": ["null", "integer"], "maximum": 2**70},
        "max_smallint": {"type": ["null", "integer"], "maximum": 32767},
        "max_integer": {"type": ["null", "integer"], "maximum": 32768},
        "max_bigint": {"type": ["null", "integer"], "maximum": 2**63 - 1},
        "any_time": {"anyOf": [{"type": "null"}, {"type": "string", "format": "date-time"}]},
        "any_number": {"anyOf": [{"type": "number"}, {"type": "null"}]},
        "one_of_string": {"oneOf": [{"type": "string"}]},
        "one_of_array": {"oneOf": [{"type": "array"}]},
        "one_of_integer": {"oneOf": [{"type": "integer"}]},  # target-duckdb makes no column of this
        "untyped": {},  # nor of this
        "time_only": {"type": "string", "format": "time"},
        "bool_or_null": {"type": ["boolean", "null"]},
    }
    record = {
        "id": 1,
        "plain_string": "s",
        "int_or_number": 2,
        "int_or_string": "x",
        "huge_max": 2**65,
        "max_smallint": 32767,
        "max_integer": 32768,
        "max_bigint": 2**62,
        "any_time": "2024-03-01T10:00:00Z",
        "any_number": 1.25,
        "one_of_string": "o",
        "one_of_array": [1, "a"],
        "one_of_integer": 5,
        "untyped": "u",
        "time_only": "12:00:00",
        "bool_or_null": False,
    }
    return [
        _schema("forms", {"type": "object", "properties": props}, ["id"]),
        _record("forms", record, 1),
        _record("forms", {"id": 2}, 2),
        _state(1, 1),
    ]
