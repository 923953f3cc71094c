"""A fresh, state-free read of FreshBooks for ``tap-freshbooks reconcile``.

The tap is built with no state, so every stream's ``get_records`` yields every current record of
every account (deleted ones too, from the ``vis_state=1`` pass), already in the warehouse's shape.
Nothing is written: no Singer message, no state. The only file a read may touch is the token store
(a refresh rotates the refresh token, as on every run). Anything the tap would print to stdout is
swallowed and counted, so stdout carries the report only.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import logging
import typing as t

from tap_freshbooks.errors import ConfigError
from tap_freshbooks.reconcile_compare import Fact, StreamSpec, as_int, as_utc, money_of
from tap_freshbooks.streams import RIDES_ALONG as RIDERS
from tap_freshbooks.tap import TapFreshBooks

if t.TYPE_CHECKING:
    from tap_freshbooks.streams.base import FreshBooksStream

if t.TYPE_CHECKING:
    import datetime as dt

    import requests

#: settings that would turn the read into something else than "everything, now"
RUN_ONLY_SETTINGS = ("record_ids", "event_received_at")


def stream_spec(stream: t.Any) -> StreamSpec:
    """What to compare for a tap stream: its keys, replication key, vis_state, money objects."""
    props: dict[str, dict[str, t.Any]] = stream.schema.get("properties", {})
    money = tuple(
        name
        for name, prop in props.items()
        if ((prop.get("properties") or {}).get("amount") or {}).get("format") == "x-singer.decimal"
        and "code" in (prop.get("properties") or {})
    )
    replication_key = stream.replication_key if stream.replication_key in props else None
    return StreamSpec(
        name=stream.name,
        key_properties=tuple(stream.primary_keys or ("account_id", "id")),
        replication_key=replication_key,
        has_vis_state="vis_state" in props,
        money_fields=money,
    )


def record_fact(spec: StreamSpec, record: t.Mapping[str, t.Any]) -> Fact:
    """The facts of one transformed tap record."""
    key = tuple(str(record.get(k)) for k in spec.key_properties if k != "account_id")
    return Fact(
        key=key,
        vis_state=as_int(record.get("vis_state")),
        updated=as_utc(record.get(spec.replication_key)) if spec.replication_key else None,
        money={name: money_of(record.get(name)) for name in spec.money_fields},
    )


class RequestCounter:
    """Counts HTTP responses (every attempt, retries included) on the sessions it is hooked to."""

    def __init__(self) -> None:
        self.count = 0

    def hook(self, response: requests.Response, *args: t.Any, **kwargs: t.Any) -> requests.Response:  # noqa: ARG002
        self.count += 1
        return response

    def attach(self, session: requests.Session) -> None:
        hooks = session.hooks.setdefault("response", [])
        if self.hook not in hooks:
            hooks.append(self.hook)


@dataclasses.dataclass
class FreshBooksRead:
    """Everything the read found, per (stream, account), and what it cost."""

    accounts: list[str]
    facts: dict[tuple[str, str], list[Fact]]
    requests: dict[tuple[str, str], int]
    identity_requests: int
    token_refreshes: int
    stray_stdout_lines: int

    @property
    def total_requests(self) -> int:
        return self.identity_requests + sum(self.requests.values())


class _CountingSink(io.TextIOBase):
    """A stdout that keeps nothing and counts the lines written to it."""

    def __init__(self) -> None:
        super().__init__()
        self.lines = 0

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self.lines += text.count("\n")
        return len(text)


@contextlib.contextmanager
def _quiet(tap: TapFreshBooks) -> t.Iterator[_CountingSink]:
    """Stdout swallowed (the report owns it); the tap's INFO chatter ("emitted ...") muted."""
    loggers = [tap.logger, getattr(tap, "metrics_logger", None)]
    levels = [(lg, lg.level) for lg in loggers if isinstance(lg, logging.Logger)]
    for lg, _ in levels:
        lg.setLevel(logging.WARNING)
    sink = _CountingSink()
    try:
        with contextlib.redirect_stdout(sink):
            yield sink
    finally:
        for lg, level in levels:
            lg.setLevel(level)


def build_tap(config: t.Mapping[str, t.Any]) -> TapFreshBooks:
    """The tap, with no state and without the webhook-run settings (no network yet)."""
    clean = {k: v for k, v in config.items() if k not in RUN_ONLY_SETTINGS}
    return TapFreshBooks(config=clean, state=None, parse_env_config=False, validate_config=True)


def choose_streams(tap: TapFreshBooks, wanted: t.Sequence[str] | None) -> list[str]:
    """``--streams`` checked against the tap's streams (default: all that can be read alone)."""
    known = [name for name in tap.streams if name not in RIDERS]
    if not wanted:
        return known
    chosen: list[str] = []
    for name in wanted:
        if name in RIDERS:
            msg = (
                f"{name} cannot be reconciled on its own: its records ride along with "
                f"{RIDERS[name]}; use --streams {RIDERS[name]}"
            )
            raise ConfigError(msg)
        if name not in known:
            msg = f"--streams names an unknown stream {name!r}; known: {', '.join(known)}"
            raise ConfigError(msg)
        if name not in chosen:
            chosen.append(name)
    return chosen


def read_freshbooks(
    tap: TapFreshBooks,
    stream_names: t.Sequence[str],
    since: dt.datetime | None,
) -> tuple[dict[str, StreamSpec], FreshBooksRead]:
    """Read ``stream_names`` of every configured account; with ``since``, records whose
    replication key is older (or absent) are left out. Streams without one are read whole."""
    counter = RequestCounter()
    facts: dict[tuple[str, str], list[Fact]] = {}
    requests_used: dict[tuple[str, str], int] = {}
    specs = {name: stream_spec(tap.streams[name]) for name in stream_names}
    with _quiet(tap) as sink:
        for stream in tap.streams.values():
            counter.attach(t.cast("FreshBooksStream", stream).requests_session)
        for rider in RIDERS:  # a selected rider would be written beside its carrier: never here
            if rider in tap.streams:
                tap.streams[rider].selected = False
        before = counter.count
        accounts = [str(a["account_id"]) for a in tap.accounts]
        identity = counter.count - before
        for name in stream_names:
            stream = t.cast("FreshBooksStream", tap.streams[name])
            spec = specs[name]
            for context in stream.partitions or []:
                account_id = str(context["account_id"])
                before = counter.count
                found: list[Fact] = []
                for record in stream.get_records(dict(context)):
                    fact = record_fact(spec, record)
                    if (
                        since is not None
                        and spec.replication_key
                        and (fact.updated is None or fact.updated < since)
                    ):
                        continue
                    found.append(fact)
                facts[(name, account_id)] = found
                requests_used[(name, account_id)] = counter.count - before
    stray = sink.lines
    if stray:
        tap.logger.warning("reconcile: swallowed %d line(s) the tap wrote to stdout", stray)
    return specs, FreshBooksRead(
        accounts=accounts,
        facts=facts,
        requests=requests_used,
        identity_requests=identity,
        token_refreshes=int(getattr(tap.authenticator, "refresh_count", 0)),
        stray_stdout_lines=stray,
    )
