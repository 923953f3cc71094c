"""The change ledger: windows and fingerprint decisions (docs/design.md)."""

from __future__ import annotations

import decimal
import hashlib
import json

import msgspec

from freshbooks_emulator import FreshBooksEmulator
from tap_freshbooks import envelopes, ledger
from tap_freshbooks.ledger import ChangeLedger, filter_date, fingerprint, window_start
from tap_freshbooks.state import STATE_KEY, PartitionState
from tap_freshbooks.timezones import format_utc


def _state(raw: dict | None = None) -> PartitionState:
    return PartitionState.load(raw if raw is not None else {}, strategy="updated")


class TestWindow:
    def test_bookmark_window_starts_at_eastern_midnight_the_day_before(self) -> None:
        # 2026-11-20 03:30Z is 2026-11-19 22:30 Eastern -> window from 2026-11-18 00:00 Eastern.
        start = window_start("2026-11-20T03:30:00Z", None)
        assert format_utc(start) == "2026-11-18T05:00:00Z"
        assert filter_date(start) == "2026-11-18"

    def test_window_is_at_or_before_bookmark_whatever_the_server_day_boundary(self) -> None:
        for bookmark in ["2026-03-08T04:59:59Z", "2026-03-08T05:00:00Z", "2026-11-01T04:00:00Z"]:
            start = window_start(bookmark, None)
            # Server reading the date as UTC starts earlier than Eastern midnight: superset.
            assert format_utc(start) <= bookmark

    def test_first_run_uses_start_date(self) -> None:
        assert format_utc(window_start(None, "2024-01-01T00:00:00Z")) == "2024-01-01T00:00:00Z"
        assert window_start(None, None) is None


class TestDecisions:
    def test_same_version_is_not_resent_changed_version_is(self) -> None:
        raw_state: dict = {}
        state = _state(raw_state)
        ledger = ChangeLedger(state, incremental=True)
        raw = {"id": 1, "updated": "2026-11-20 10:00:00", "amount": {"amount": "1.00", "code": "USD"}}
        fp = fingerprint(raw)
        assert ledger.should_emit("1", fp, deleted=False)
        ledger.record_delivered("1", fp, "2026-11-20T15:00:00Z", deleted=False)
        state.save(replication_key="updated")

        again = ChangeLedger(_state(raw_state), incremental=True)
        assert not again.should_emit("1", fp, deleted=False)
        # Same second, different content (two edits inside one second) still counts.
        changed = fingerprint({**raw, "amount": {"amount": "2.00", "code": "USD"}})
        assert again.should_emit("1", changed, deleted=False)

    def test_deletions_are_emitted_once(self) -> None:
        raw_state: dict = {}
        state = _state(raw_state)
        ledger = ChangeLedger(state, incremental=True)
        fp = fingerprint({"id": 7, "vis_state": 1})
        assert ledger.should_emit("7", fp, deleted=True)
        ledger.record_delivered("7", fp, None, deleted=True)
        ledger.prune("2999-01-01T00:00:00Z")
        state.save(replication_key="updated")
        assert ChangeLedger(_state(raw_state), incremental=True).should_emit("7", fp, deleted=True) is False

    def test_ledger_never_writes_the_bookmark(self) -> None:
        raw_state = {"replication_key_value": "2026-01-01T00:00:00Z"}
        state = _state(raw_state)
        ledger = ChangeLedger(state, incremental=True, prunes=False)
        ledger.observe("2026-06-01T00:00:00Z")
        state.save(replication_key="updated")
        assert raw_state["replication_key_value"] == "2026-01-01T00:00:00Z"
        assert raw_state[STATE_KEY]["bookmark"] == "2026-01-01T00:00:00Z"

    def test_prune_keeps_only_what_the_next_run_can_see(self) -> None:
        raw_state: dict = {}
        state = _state(raw_state)
        ledger = ChangeLedger(state, incremental=True)
        ledger.record_delivered("old", "a", "2026-01-01T00:00:00Z", deleted=False)
        ledger.record_delivered("new", "b", "2026-06-01T00:00:00Z", deleted=False)
        ledger.record_delivered("snap", "c", None, deleted=False)
        ledger.prune("2026-05-01T00:00:00Z")
        state.save(replication_key=None)
        assert set(raw_state[STATE_KEY]["seen"]) == {"new", "snap"}

    def test_memory_stays_bounded_on_a_big_first_run(self) -> None:
        ledger = ChangeLedger(_state(), incremental=True)
        for i in range(60_000):
            ts = format_utc(window_start("2026-01-01T00:00:00Z", None)) if i < 59_000 else None
            # 59k old records (one per ~10 minutes over a year) then a recent one
            day = i // 144
            recency = (
                f"2025-{1 + day // 28 % 12:02d}-{1 + day % 28:02d}T00:00:00Z"
                if ts
                else "2026-06-01T00:00:00Z"
            )
            ledger.observe(recency)
            ledger.record_delivered(str(i), "x", recency, deleted=False)
        assert len(ledger.seen) < 25_000


class TestFingerprintText:
    """``fingerprint`` hashes ``_canonical_json``'s bytes whichever encoder produced them."""

    @staticmethod
    def _canonical(raw: dict) -> str:
        return hashlib.blake2b(ledger._canonical_json(raw), digest_size=8).hexdigest()

    def test_every_record_of_the_demo_data(self) -> None:
        emu = FreshBooksEmulator(seed="demo")  # not started: only its store is read
        streams = [
            "clients",
            "invoices",
            "payments",
            "expenses",
            "bills",
            "bill_vendors",
            "items",
            "taxes",
            "credit_notes",
            "other_incomes",
            "staff",
            "projects",
            "services",
            "time_entries",
        ]
        wire = msgspec.json.Encoder(decimal_format="number")
        checked = non_ascii = 0
        for stream in streams:
            for record in emu.truth(stream):
                raw = envelopes._DECODER.decode(wire.encode(record))  # as decoded off the wire
                assert fingerprint(raw) == self._canonical(raw), stream
                checked += 1
                non_ascii += not json.dumps(raw, default=str).isascii() or "\\u" in json.dumps(
                    raw, default=str
                )
        assert checked > 1000 and non_ascii > 0

    def test_text_the_fast_encoder_writes_differently(self) -> None:
        for raw in (
            {"name": "Zoë Müller", "n": 1},
            {"name": "del\x7f"},
            {"name": 'tab\tquote"back\\slash\x01', "b": [True, None, {"z": 1, "a": 2}]},
            {
                "amount": decimal.Decimal("7.60133524082021936099189318"),
                "big": 10**30,
                "e": decimal.Decimal("1E+400"),
            },
            {"emoji": "\U0001f600"},
        ):
            assert fingerprint(raw) == self._canonical(raw), raw
