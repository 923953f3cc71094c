"""webhook_bridge.logs: the JSON lines' shape and their timestamps."""

from __future__ import annotations

import datetime
import json
import logging
import random

from webhook_bridge.logs import JsonFormatter


def iso_millis(created: float) -> str:
    """What the formatter wrote before it cached the second: datetime's own rendering."""
    stamp = datetime.datetime.fromtimestamp(created, tz=datetime.UTC).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")


def test_timestamps_equal_datetimes_rendering_including_rounding_up_into_the_next_second() -> None:
    formatter = JsonFormatter()
    rng = random.Random(14)
    edges = [1_000_000_000.9999995, 1_000_000_000.0004999, 1_000_000_000.0005, 1_799_999_999.9999999, 0.25]
    for created in [rng.uniform(0, 2e9) for _ in range(20_000)] + edges:
        assert formatter._timestamp(created) == iso_millis(created), created


def test_a_line_has_the_fields_and_never_a_forbidden_one() -> None:
    record = logging.LogRecord("webhook_bridge.app", logging.INFO, __file__, 1, "event queued", None, None)
    record.fields = {"event_id": 7, "account_id": "ABC", "signature": "s3cr3t", "Token": "t0k3n", "msg": "x"}
    line = json.loads(JsonFormatter().format(record))
    assert line == {
        "ts": iso_millis(record.created),
        "level": "info",
        "logger": "webhook_bridge.app",
        "msg": "event queued",
        "event_id": 7,
        "account_id": "ABC",
    }
