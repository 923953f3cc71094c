"""US/Eastern -> UTC, across both DST changes (freshbooks-api.md §5.3)."""

from __future__ import annotations

import pytest

from tap_freshbooks.timezones import eastern_to_utc, naive_utc_to_utc


@pytest.mark.parametrize(
    ("eastern", "utc"),
    [
        pytest.param("2019-11-14 11:27:45", "2019-11-14T16:27:45Z", id="sdk-example-est"),
        pytest.param("2021-05-11 06:53:22", "2021-05-11T10:53:22Z", id="sdk-example-edt"),
        # Spring forward 2025-03-09: 01:59:59 EST is the last second before 03:00:00 EDT.
        pytest.param("2025-03-09 01:59:59", "2025-03-09T06:59:59Z", id="before-spring-forward"),
        pytest.param("2025-03-09 03:00:00", "2025-03-09T07:00:00Z", id="after-spring-forward"),
        # Fall back 2025-11-02: 00:59 EDT, then the repeated 01:xx hour, then 02:00 EST.
        pytest.param("2025-11-02 00:59:59", "2025-11-02T04:59:59Z", id="before-fall-back"),
        pytest.param("2025-11-02 01:30:00", "2025-11-02T05:30:00Z", id="repeated-hour-first"),
        pytest.param("2025-11-02 02:00:00", "2025-11-02T07:00:00Z", id="after-fall-back"),
        pytest.param("2024-12-31 23:00:00", "2025-01-01T04:00:00Z", id="new-year-crosses-utc-day"),
        pytest.param("2021-04-16 10:31:58.480684", "2021-04-16T14:31:58.480684Z", id="microseconds"),
    ],
)
def test_eastern_to_utc(eastern: str, utc: str) -> None:
    assert eastern_to_utc(eastern) == utc


def test_empty_values_stay_null() -> None:
    assert eastern_to_utc(None) is None
    assert eastern_to_utc("") is None


@pytest.mark.parametrize(
    ("value", "utc"),
    [
        ("2020-09-13T03:10:13", "2020-09-13T03:10:13Z"),
        ("2020-10-17T05:00:00Z", "2020-10-17T05:00:00Z"),
        ("2023-04-27T14:33:48.841075Z", "2023-04-27T14:33:48.841075Z"),
        ("2023-04-27T10:33:48-04:00", "2023-04-27T14:33:48Z"),
    ],
)
def test_naive_utc(value: str, utc: str) -> None:
    assert naive_utc_to_utc(value) == utc
