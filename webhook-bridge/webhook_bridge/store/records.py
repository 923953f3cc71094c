"""What the store hands out: plain, frozen records (no database types leak out of the package)."""

from __future__ import annotations

import dataclasses
import datetime
import json
import typing as t

Row = dict[str, t.Any]


def utc_iso(ts: float) -> str:
    """Unix seconds -> RFC 3339 UTC with milliseconds (``2026-11-25T15:00:00.123Z``)."""
    moment = datetime.datetime.fromtimestamp(ts, tz=datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@dataclasses.dataclass(frozen=True)
class EnqueueResult:
    """What happened to one delivery."""

    event_id: int | None
    status: str  # queued | duplicate | ignored


@dataclasses.dataclass(frozen=True)
class QueuedEvent:
    """A row of ``events``."""

    id: int
    account_id: str
    name: str
    object_id: str
    stream: str | None
    received_at: str
    received_ts: float
    attempts: int
    deliveries: int
    status: str
    last_error: str | None

    @classmethod
    def from_row(cls, row: Row) -> QueuedEvent:
        return cls(**{field.name: row[field.name] for field in dataclasses.fields(cls)})


@dataclasses.dataclass(frozen=True)
class Batch:
    """Events claimed for one run: one account, one or more streams, deduplicated record ids."""

    run_id: int
    account_id: str
    events: tuple[QueuedEvent, ...]
    attempt_level: int

    @property
    def record_ids(self) -> dict[str, list[int]]:
        """``{stream: [id, ...]}`` for ``TAP_FRESHBOOKS_RECORD_IDS`` (sorted, unique)."""
        out: dict[str, set[int]] = {}
        for event in self.events:
            if event.stream:
                out.setdefault(event.stream, set()).add(int(event.object_id))
        return {stream: sorted(ids) for stream, ids in sorted(out.items())}

    @property
    def event_received_at(self) -> dict[str, dict[str, str]]:
        """``{stream: {id: received_at}}``: the earliest pending receipt per record."""
        earliest: dict[tuple[str, str], QueuedEvent] = {}
        for event in self.events:
            if not event.stream:
                continue
            key = (event.stream, str(int(event.object_id)))
            current = earliest.get(key)
            if current is None or event.received_ts < current.received_ts:
                earliest[key] = event
        out: dict[str, dict[str, str]] = {}
        for (stream, object_id), event in sorted(earliest.items()):
            out.setdefault(stream, {})[object_id] = event.received_at
        return out

    @property
    def record_count(self) -> int:
        return sum(len(ids) for ids in self.record_ids.values())


@dataclasses.dataclass(frozen=True)
class StoredVerifier:
    """A decrypted verifier row."""

    id: int
    account_id: str
    callback_id: str
    verifier: str
    status: str
    attempts: int


@dataclasses.dataclass(frozen=True)
class RunRecord:
    """A row of ``runs``."""

    id: int
    kind: str
    account_id: str | None
    streams: list[str]
    record_count: int
    event_count: int
    started_ts: float
    finished_ts: float | None
    status: str
    exit_code: int | None
    error: str | None
    pid: int | None
    log_path: str | None
    forced: bool

    @classmethod
    def from_row(cls, row: Row) -> RunRecord:
        values = {field.name: row[field.name] for field in dataclasses.fields(cls)}
        values["streams"] = json.loads(row["streams"] or "[]")
        values["forced"] = bool(row["forced"])
        return cls(**values)
