"""The per-record fast path (sdk_compat.py, envelopes.py, timezones.py) changes no message.

The tap skips the SDK's property pruning and type conformance when they cannot change a record the
guard has checked, decodes with msgspec, and writes RECORD messages in chunks. These tests show the
skipped conformance would have been a no-op on every record the emulator's data produces, that a
record it would change still goes through it, and that the writer keeps every message in order.
"""

from __future__ import annotations

import contextlib
import copy
import decimal
import io
import json
import logging
import re
import time

import requests
from singer_sdk.helpers._typing import conform_record_data_types
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.singerlib import RecordMessage, SchemaMessage, StateMessage

from conftest import run_tap, tap_config
from tap_freshbooks import envelopes, sdk_compat, timezones
from tap_freshbooks.tap import TapFreshBooks


def test_sdk_conformance_would_change_no_record_the_tap_emits(emulator, tmp_path) -> None:
    account_id = emulator.accounts[0]["account_id"]
    invoice_id = int(emulator.truth("invoices", account_id)[0]["id"])
    emulator.update("invoices", account_id, invoice_id, ownerid="77", customerid="not-a-number")
    config = tap_config(emulator, tmp_path)
    run = run_tap(config)
    tap = TapFreshBooks(config=config, parse_env_config=False)
    checked = 0
    for name, records in run.records.items():
        stream = tap.streams[name]
        assert stream._record_plan().guard_conforms, f"{name}: the fast path is off"
        for record in records:
            conformed = conform_record_data_types(
                name,
                copy.deepcopy(record),
                stream.schema,
                TypeConformanceLevel.RECURSIVE,
                logging.getLogger(),
            )
            assert conformed == record, name
            checked += 1
    assert checked > 100
    odd = next(r for r in run.records["invoices"] if r["id"] == str(invoice_id))
    assert odd["ownerid"] == 77 and odd["_fb_unparsed"] == {"customerid": "not-a-number"}


def _sdk_flatten(stream_map, record: dict) -> dict:
    """What the SDK's own map gives (its flatten_record), on a copy."""
    return stream_map.transform(copy.deepcopy(record))


def test_the_fast_flattener_gives_the_sdks_record_for_every_record_the_tap_emits(emulator, tmp_path) -> None:
    # the records before any map (flattening off), flattened both ways with meltano.yml's options
    run = run_tap(tap_config(emulator, tmp_path))
    flat_config = tap_config(emulator, tmp_path, flattening_enabled=True, flattening_max_depth=1)
    tap = TapFreshBooks(config=flat_config, parse_env_config=False)
    checked = nested = 0
    for name, records in run.records.items():
        (stream_map,) = tap.streams[name].stream_maps
        flattener = sdk_compat.RecordFlattener.for_map(stream_map)
        assert flattener is not None, f"{name}: the fast flattener is off"
        for record in records:
            fast = flattener.flatten(copy.deepcopy(record))
            sdk = _sdk_flatten(stream_map, record)
            assert fast == sdk, name
            assert list(fast) == list(sdk), f"{name}: key order"
            checked += 1
            nested += any(isinstance(v, dict) for v in record.values())
    assert checked > 100 and nested > 10


def test_the_fast_flattener_follows_the_sdk_on_odd_shapes(emulator, tmp_path) -> None:
    long = "a_really_long_property_name_that_goes_on_" * 3
    record = {
        "id": 1,
        "amount": {"amount": decimal.Decimal("1.50"), "code": "USD", "deep": {"x": [1, {"y": 2}]}},
        "lines": [{"a": 1}],
        "empty": {},
        "none": None,
        "flag": False,
        long: {long: "short"},
        "type": "not the schema's type",
        "properties": "nor its properties",
    }
    schema_properties = {
        "id": {"type": "integer"},
        "amount": {
            "type": "object",
            "properties": {
                "amount": {"type": "string"},
                "code": {"type": "string"},
                "deep": {"type": "object", "properties": {"x": {"type": "array"}}},
            },
        },
        "lines": {"type": "array"},
        "empty": {"type": "object", "properties": {}},
        "none": {"type": ["null", "object", "array"]},
        "flag": {"type": "boolean"},
        long: {"type": "object", "properties": {long: {"type": "string"}}},
        "type": {"type": "string"},
        "properties": {"type": "string"},
    }
    from singer_sdk.helpers._flattening import FlatteningOptions
    from singer_sdk.mapper import SameRecordTransform

    for depth in (1, 2, 3):
        for max_key_length in (255, 40):
            options = FlatteningOptions(enabled=True, max_level=depth, max_key_length=max_key_length)
            stream_map = SameRecordTransform(
                stream_alias="odd",
                raw_schema={"type": "object", "properties": copy.deepcopy(schema_properties)},
                key_properties=["id"],
                flattening_options=options,
            )
            flattener = sdk_compat.RecordFlattener.for_map(stream_map)
            assert flattener is not None
            for _ in range(2):  # the second time from the cached plans
                fast = flattener.flatten(copy.deepcopy(record))
                sdk = _sdk_flatten(stream_map, record)
                assert fast == sdk, (depth, max_key_length)
                assert list(fast) == list(sdk)


def test_an_undeclared_key_still_goes_through_the_sdk(emulator, tmp_path, caplog) -> None:
    account_id = emulator.accounts[0]["account_id"]
    client_id = int(emulator.truth("clients", account_id)[0]["id"])
    emulator.update("clients", account_id, client_id, brand_new_field="surprise")
    run = run_tap(tap_config(emulator, tmp_path, account_ids=[account_id]))
    assert run.records["clients"]
    assert not any("brand_new_field" in r for r in run.records["clients"])
    assert any("brand_new_field" in r.getMessage() for r in caplog.records)


def test_a_catalog_schema_that_differs_turns_the_fast_path_off(emulator, tmp_path) -> None:
    config = tap_config(emulator, tmp_path)
    catalog = TapFreshBooks(config=config, parse_env_config=False).catalog_dict
    entry = next(s for s in catalog["streams"] if s["tap_stream_id"] == "taxes")
    entry["schema"]["properties"]["taxid"] = {"type": ["string", "null"]}  # an integer in the tap
    tap = TapFreshBooks(config=config, catalog=catalog, parse_env_config=False)
    assert not tap.streams["taxes"]._record_plan().guard_conforms
    assert tap.streams["clients"]._record_plan().guard_conforms


def test_guard_coverage_is_judged_from_the_schema() -> None:
    covered = {"properties": {"a": {"type": "object", "properties": {}, "additionalProperties": True}}}
    assert sdk_compat.guard_covers_conformance(covered)
    assert not sdk_compat.guard_covers_conformance(
        {"properties": {"a": {"type": "object", "properties": {}}}}
    )
    assert not sdk_compat.guard_covers_conformance({"properties": {"a": {"type": ["number", "null"]}}})
    assert not sdk_compat.guard_covers_conformance({"properties": {"a": {"anyOf": [{"type": "string"}]}}})


def _record(i: int) -> RecordMessage:
    return RecordMessage(stream="s", record={"id": i, "amount": decimal.Decimal("0.10"), "name": "Zoë"})


def test_writer_sends_every_record_before_the_state_that_follows_them() -> None:
    writer = sdk_compat.BufferedMsgSpecWriter()
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        writer.write_message(SchemaMessage(stream="s", schema={"type": "object"}, key_properties=["id"]))
        for i in range(3):
            writer.write_message(_record(i))
        held = out.getvalue()
        writer.write_message(StateMessage(value={"bookmarks": {"s": {"n": 3}}}))
        writer.write_message(_record(3))
        before_flush = out.getvalue()
        writer.flush()
    lines = [json.loads(line, parse_float=decimal.Decimal) for line in out.getvalue().splitlines()]
    assert held.count("\n") == 1  # the SCHEMA only: records wait for the next STATE (or 64 KiB)
    assert before_flush.count("\n") == 5
    assert [m["type"] for m in lines] == ["SCHEMA", "RECORD", "RECORD", "RECORD", "STATE", "RECORD"]
    assert lines[1]["record"] == {"id": 0, "amount": decimal.Decimal("0.10"), "name": "Zoë"}


def test_writer_writes_a_full_chunk_at_once() -> None:
    writer = sdk_compat.BufferedMsgSpecWriter()
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        i = 0
        while not out.getvalue():
            writer.write_message(_record(i))
            i += 1
        first_write = out.getvalue()
        writer.flush()
    assert i > 100
    assert writer.CHUNK <= len(first_write.encode()) < writer.CHUNK + 200
    assert [json.loads(line)["record"]["id"] for line in out.getvalue().splitlines()] == list(range(i))


def _response(body: bytes, content_type: str = "application/json") -> requests.Response:
    response = requests.Response()
    response.status_code = 200
    response._content = body
    response.headers["Content-Type"] = content_type
    return response


def test_decoding_keeps_numbers_exact_and_falls_back_for_what_msgspec_refuses(monkeypatch) -> None:
    monkeypatch.setattr(envelopes._FloatConstants, "seen", False)
    body = (
        b'{"a": 1.10, "b": 123456789012345678901234567890, "c": 1e400, "d": "Zo\\u00eb", "e": [true, null]}'
    )
    assert envelopes.parse_json(_response(body)) == json.loads(body, parse_float=decimal.Decimal)
    assert repr(envelopes.parse_json(_response(body))["a"]) == "Decimal('1.10')"
    assert not envelopes.float_constants_seen()
    latin1 = _response('{"name": "Zoë"}'.encode("latin-1"), "application/json; charset=latin-1")
    assert envelopes.parse_json(latin1) == {"name": "Zoë"}
    nan = envelopes.parse_json(_response(b'{"x": NaN, "y": 2.50}'))
    assert nan["y"] == decimal.Decimal("2.50") and nan["x"] != nan["x"]
    assert envelopes.float_constants_seen()  # from now on fingerprints take the canonical path


def test_utc_now_text_is_format_utc_of_now() -> None:
    before = timezones.format_utc(timezones.utc_now())
    texts = [timezones.utc_now_text() for _ in range(2000)]
    time.sleep(0.002)
    after = timezones.format_utc(timezones.utc_now())
    for text in texts:
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?Z", text)
        assert text == timezones.format_utc(timezones.parse_utc(text))
        assert before[:19] <= text[:19] <= after[:19]


def test_cached_conversions_answer_like_the_uncached_ones() -> None:
    for value in ("2025-11-02 01:30:00", "2025-03-09 03:00:00", " 2024-01-01T00:00:00 ", None, ""):
        assert timezones.eastern_to_utc(value) == timezones._eastern_to_utc(value)
        assert timezones.naive_utc_to_utc(value) == timezones._naive_utc_to_utc(value)
    assert timezones.eastern_to_utc({}) is None  # a non-text value is never cached, as before
