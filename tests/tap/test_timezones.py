"""US/Eastern -> UTC, across both DST changes (freshbooks-api.md §5.3), and which naive fields are
UTC instead (as FreshBooks' own Python SDK reads them)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from conftest import TEST_FERNET_KEY, run_tap, tap_config
from freshbooks_emulator import FreshBooksEmulator
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


# --- Which naive accounting fields are UTC: FreshBooks' official Python SDK decides ---------------
# freshbooks-sdk 1.3.0, freshbooks/models.py lines 13-18 (ACCOUNTING_UTC_DATE_FIELDS), applied at
# lines 78-90: naive "YYYY-MM-DD HH:MM:SS" is UTC for these models' fields and US/Eastern otherwise.
SDK_ACCOUNTING_UTC_DATE_FIELDS = {
    "bill": {"created_at", "updated_at"},
    "bill_vendor": {"created_at", "updated_at"},
    "client": {"signup_date"},
    "tax_defaults": {"created_at", "updated_at"},  # nested in bill vendors; the tap passes them through
}
# A summer instant: US/Eastern is UTC-4, so reading one zone as the other is 4 hours off.
INSTANT = datetime(2025, 7, 4, 15, 30, 0, tzinfo=UTC)
INSTANT_RFC3339 = "2025-07-04T15:30:00Z"


def _accounting_streams():
    from tap_freshbooks.streams.accounting import AccountingStream
    from tap_freshbooks.tap import TapFreshBooks

    config = {
        "client_id": "x",
        "client_secret": "x",
        "token_store_path": "/nonexistent/tokens",
        "token_encryption_key": TEST_FERNET_KEY,
    }
    tap = TapFreshBooks(config=config, parse_env_config=False, validate_config=False)
    return [s for s in tap.streams.values() if isinstance(s, AccountingStream)]


def test_tap_reads_naive_accounting_fields_in_the_zone_freshbooks_sdk_does() -> None:
    streams = _accounting_streams()
    assert {s.single_key for s in streams} >= {"bill", "bill_vendor", "client", "staff", "invoice"}
    for stream in streams:
        utc = set(stream.utc_fields)
        assert utc == SDK_ACCOUNTING_UTC_DATE_FIELDS.get(stream.single_key, set()), stream.name
        assert not utc & set(stream.eastern_fields), stream.name
    staff = next(s for s in streams if s.name == "staff")
    assert "signup_date" in staff.eastern_fields


def _created_at_instant(emu: FreshBooksEmulator, stream: str, **fields) -> dict:
    emu.set_clock(INSTANT)
    try:
        return emu.create(stream, emu.accounts[0]["account_id"], **fields)
    finally:
        emu.set_clock(None)


def _emitted(run, stream: str, record_id) -> dict:
    return next(r for r in run.records[stream] if r["id"] == str(record_id))


def test_bill_created_at_a_known_utc_instant_lands_with_that_instant(emulator, tmp_path) -> None:
    bill = _created_at_instant(emulator, "bills")
    vendor = _created_at_instant(emulator, "bill_vendors")
    account_id = emulator.accounts[0]["account_id"]
    # the emulator answers as FreshBooks does by default: naive UTC wall time for bills and vendors
    wire = {b["id"]: b for b in emulator.truth("bills", account_id)}[bill["id"]]
    assert wire["updated_at"] == wire["created_at"] == "2025-07-04 15:30:00"

    run = run_tap(tap_config(emulator, tmp_path))  # default bills_timezone

    for stream, record in (("bills", bill), ("bill_vendors", vendor)):
        emitted = _emitted(run, stream, record[emulator.spec(stream).pk])
        assert emitted["created_at"] == emitted["updated_at"] == INSTANT_RFC3339, stream


def test_bills_timezone_us_eastern_still_reads_an_eastern_api(emulator, tmp_path) -> None:
    """The Node SDK's reading stays available: an API sending Eastern + bills_timezone US/Eastern."""
    emulator.configure(bill_timestamps_utc=False)
    bill = _created_at_instant(emulator, "bills")
    wire = {b["id"]: b for b in emulator.truth("bills", emulator.accounts[0]["account_id"])}[bill["id"]]
    assert wire["updated_at"] == "2025-07-04 11:30:00"

    run = run_tap(tap_config(emulator, tmp_path, bills_timezone="US/Eastern"))

    assert _emitted(run, "bills", bill["id"])["updated_at"] == INSTANT_RFC3339


def test_staff_signup_date_is_read_as_us_eastern(emulator, tmp_path) -> None:
    staff = _created_at_instant(emulator, "staff")
    wire = {s["id"]: s for s in emulator.truth("staff", emulator.accounts[0]["account_id"])}[staff["id"]]
    assert wire["signup_date"] == "2025-07-04 11:30:00"  # naive Eastern, like the rest of the family

    run = run_tap(tap_config(emulator, tmp_path))

    assert _emitted(run, "staff", staff["id"])["signup_date"] == INSTANT_RFC3339


def test_client_signup_date_stays_utc(emulator, tmp_path) -> None:
    client = _created_at_instant(emulator, "clients")
    wire = {c["id"]: c for c in emulator.truth("clients", emulator.accounts[0]["account_id"])}[client["id"]]
    assert wire["signup_date"] == "2025-07-04 15:30:00"

    run = run_tap(tap_config(emulator, tmp_path))

    assert _emitted(run, "clients", client["id"])["signup_date"] == INSTANT_RFC3339


def test_meltano_project_passes_the_same_bills_timezone_default() -> None:
    """Meltano hands a setting's `value` to the tap as config: it must not undo the tap's default."""
    import yaml

    from conftest import ROOT
    from tap_freshbooks.tap import TapFreshBooks

    project = yaml.safe_load((ROOT / "meltano.yml").read_text())
    tap = next(p for p in project["plugins"]["extractors"] if p["name"] == "tap-freshbooks")
    setting = next(s for s in tap["settings"] if s["name"] == "bills_timezone")
    assert (
        setting["value"]
        == TapFreshBooks.config_jsonschema["properties"]["bills_timezone"]["default"]
        == "UTC"
    )
