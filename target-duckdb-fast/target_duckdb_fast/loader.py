"""The message loop: Singer lines in, committed batches and STATE lines out.

Per line Python decodes only the envelope (msgspec skips the record in C); a RECORD's bytes go to its
stream's buffer file untouched. A flush loads every stream's buffer in ONE DuckDB transaction, and only
after COMMIT is the latest STATE written to stdout: a state never runs ahead of the rows it covers.

A full batch is committed by one background thread while the loop keeps reading into new buffer files
(DuckDB releases the GIL), so the tap is not held up while DuckDB works: at most one commit is in
flight, and the next flush, any table change and the end of input wait for it. A failed commit stops
the run at that wait, before any later state is written.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
import typing as t
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from urllib.parse import unquote, urlparse

import duckdb
import msgspec

from target_duckdb_fast.batches import StreamBatch, Upsert
from target_duckdb_fast.columns import SchemaError, schema_columns
from target_duckdb_fast.settings import ConfigError, Settings
from target_duckdb_fast.tables import TableError, stream_table, sync_table

LOG = logging.getLogger("target_duckdb_fast")


OUT_OF_MEMORY_ADVICE = "lower batch_size_rows, or free memory on this machine, and run again"


class LoaderError(Exception):
    """The load cannot go on; the message says what went wrong and what to do."""


def first_line(exc: BaseException) -> str:
    """DuckDB's message without the SQL excerpt it appends on further lines."""
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


class Envelope(t.TypedDict, total=False):
    """The parts of a Singer message the loader reads; every other key (the record) is skipped unparsed."""

    type: str
    stream: str
    schema: dict[str, t.Any]
    key_properties: list[str]
    value: msgspec.Raw
    encoding: dict[str, t.Any]
    manifest: list[str]


_DECODE = msgspec.json.Decoder(Envelope).decode


@dataclass(frozen=True)
class StreamTarget:
    schema: dict[str, t.Any]
    keys: list[str]
    upsert: Upsert


def set_option(conn: duckdb.DuckDBPyConnection, name: str, value: str) -> None:
    conn.execute(f"SET {name} = '{value.replace(chr(39), chr(39) * 2)}'")


def connect(settings: Settings) -> duckdb.DuckDBPyConnection:
    """Open the database and apply the configured DuckDB settings (ConfigError names a refused one)."""
    conn = duckdb.connect(settings.connect_path)
    for name, value in settings.duckdb_settings.items():
        try:
            set_option(conn, name, value)
        except duckdb.Error as exc:
            conn.close()
            raise ConfigError(f"DuckDB refused settings.{name} = {value!r}: {first_line(exc)}") from None
    return conn


def default_memory_limit() -> str:
    """DuckDB's own memory limit on this machine, read from a fresh in-memory database."""
    probe = duckdb.connect()
    try:
        row = probe.execute("SELECT current_setting('memory_limit')").fetchone()
        return str(row[0]) if row else ""
    finally:
        probe.close()


class Loader:
    def __init__(self, settings: Settings, conn: duckdb.DuckDBPyConnection, out: t.BinaryIO) -> None:
        self.settings = settings
        self.conn = conn
        self.out = out
        self.workdir = Path(tempfile.mkdtemp(prefix="target-duckdb-fast-", dir=settings.temp_dir))
        self.targets: dict[str, StreamTarget] = {}
        self.batches: dict[str, StreamBatch] = {}
        self.seq = 0
        self.files = 0
        self.buffered = 0
        self.oldest = 0.0
        self.state: bytes | None = None
        self.emitted: bytes | None = None
        #: (stream, table) of the statement running in a transaction, for its error message
        self._failing = ("", "")
        #: the one background committer and its commit in flight (at most one)
        self.committer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="target-duckdb-fast-commit")
        self.inflight: Future[None] | None = None

    # -- the loop -------------------------------------------------------------------------------------

    def run(self, lines: t.Iterable[bytes]) -> None:
        if self.settings.validate_records:
            LOG.warning(
                "validate_records: records are not validated against their JSON schema; "
                "typed columns refuse values that do not fit (the batch fails, no state is emitted)"
            )
        try:
            for number, line in enumerate(lines, start=1):
                line = line.strip()
                if line:
                    self.handle(number, line)
            self.flush()
            self.wait()
            self.emit_state()
        finally:
            self.close()

    def close(self) -> None:
        if self.inflight is not None:  # a run that failed elsewhere: let the commit end before cleaning up
            try:
                self.inflight.result()
            except Exception:  # noqa: BLE001  (the run is already failing: its own error is the one reported)
                pass
        self.committer.shutdown(wait=True)
        for batch in self.batches.values():
            batch.close()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def wait(self) -> None:
        """Let the commit in flight finish; its failure (a LoaderError) is raised here."""
        inflight, self.inflight = self.inflight, None
        if inflight is not None:
            inflight.result()

    def handle(self, number: int, line: bytes) -> None:
        try:
            message = _DECODE(line)
        except msgspec.DecodeError as exc:
            raise LoaderError(f"line {number} of the input is not a Singer JSON message: {exc}") from None
        kind = message.get("type")
        if kind == "RECORD":
            self.record(self._stream(message, number), line)
        elif kind == "STATE":
            value = message.get("value")
            raw = bytes(value) if value is not None else b"null"
            self.state = None if raw == b"null" else raw
            if self.buffered and time.monotonic() - self.oldest >= self.settings.max_batch_age_seconds:
                self.flush()
        elif kind == "SCHEMA":
            self.schema(self._stream(message, number), message)
        elif kind == "BATCH":
            self.batch_files(self._stream(message, number), message)
        elif kind == "ACTIVATE_VERSION":
            LOG.debug("ignoring ACTIVATE_VERSION (line %d)", number)
        else:
            raise LoaderError(f"line {number}: unknown Singer message type {kind!r}")

    @staticmethod
    def _stream(message: Envelope, number: int) -> str:
        stream = message.get("stream")
        if not stream:
            raise LoaderError(f"line {number}: a {message.get('type')} message without a 'stream'")
        return stream

    # -- messages -------------------------------------------------------------------------------------

    def record(self, stream: str, line: bytes) -> None:
        batch = self.batches.get(stream)
        if batch is None:
            if stream not in self.targets:
                raise LoaderError(f"a RECORD for stream {stream!r} came before its SCHEMA message")
            self.files += 1
            batch = self.batches[stream] = StreamBatch(stream, self.workdir / f"{self.files}.jsonl")
        if not self.buffered:
            self.oldest = time.monotonic()
        self.seq += 1
        batch.append(self.seq, line)
        self.buffered += 1
        if self.buffered >= self.settings.batch_size_rows:
            self.flush()

    def schema(self, stream: str, message: Envelope) -> None:
        if "key_properties" not in message:
            raise LoaderError(f"the SCHEMA message of stream {stream!r} has no key_properties")
        keys = list(message["key_properties"])
        schema = message.get("schema") or {}
        if self.settings.primary_key_required and not keys:
            raise LoaderError(
                f"stream {stream!r} has no key_properties but primary_key_required is true: "
                "set primary_key_required to false to load it with plain INSERTs"
            )
        current = self.targets.get(stream)
        if current is not None and current.schema == schema and current.keys == keys:
            return  # the same schema again: nothing to change, the buffered records stay valid
        batch = self.batches.get(stream)
        if batch is not None and batch.rows:
            self.flush()
        self.wait()  # the table may change: no commit may be using it
        try:
            columns = schema_columns(schema, self.settings.metadata_columns)
            table = stream_table(self.settings, stream)
            missing = [key for key in keys if key.lower() not in {c.name for c in columns}]
            if missing:
                raise SchemaError(f"key properties {missing} are not in the schema's properties")
            sync_table(self.conn, table, columns, keys)
        except (SchemaError, TableError) as exc:
            raise LoaderError(f"stream {stream!r}: {exc}") from None
        except duckdb.Error as exc:
            raise LoaderError(
                f"stream {stream!r}: creating or altering its table failed: {first_line(exc)}"
            ) from None
        upsert = Upsert(table, columns, keys, self.settings.metadata_columns, self.settings.hard_delete)
        self.targets[stream] = StreamTarget(schema, keys, upsert)

    def batch_files(self, stream: str, message: Envelope) -> None:
        """A Singer SDK BATCH message: JSON-lines files of bare records, loaded after everything before it."""
        target = self.targets.get(stream)
        if target is None:
            raise LoaderError(f"a BATCH for stream {stream!r} came before its SCHEMA message")
        encoding = message.get("encoding") or {}
        if encoding.get("format") != "jsonl":
            raise LoaderError(
                f"stream {stream!r}: BATCH format {encoding.get('format')!r} is not supported (jsonl is)"
            )
        compression = encoding.get("compression") or "none"
        if compression not in ("gzip", "none"):
            raise LoaderError(
                f"stream {stream!r}: BATCH compression {compression!r} is not supported (gzip, none)"
            )
        files = []
        for uri in message.get("manifest") or []:
            parsed = urlparse(uri)
            if parsed.scheme not in ("file", ""):
                raise LoaderError(f"stream {stream!r}: BATCH file {uri!r} is not a local file:// path")
            files.append(unquote(parsed.path))
        self.flush()
        self.wait()
        if files:
            stage = "_target_duckdb_fast_stage_batch"
            batched_at = datetime.now().isoformat()
            self._transaction(
                [
                    (
                        stream,
                        target.upsert,
                        target.upsert.stage_files_sql(stage, files, compression, batched_at),
                        stage,
                    )
                ],
                rows={stream: len(files)},
                unit="files",
            )
        self.emit_state()

    # -- flushing -------------------------------------------------------------------------------------

    def flush(self) -> None:
        """Commit every stream's buffered records in one transaction, in the background.

        The buffers are handed over whole (new records go to new files) with the latest STATE received:
        the committer writes that state once the transaction has committed. A commit still in flight is
        waited for first, so commits (and their states) keep their order.
        """
        pending = [batch for batch in self.batches.values() if batch.rows]
        if not pending:
            return
        self.wait()
        batched_at = datetime.now().isoformat()
        work = []
        for index, batch in enumerate(pending):
            batch.close()
            del self.batches[batch.stream]
            upsert = self.targets[batch.stream].upsert
            stage = f"_target_duckdb_fast_stage_{index}"
            work.append(
                (batch.stream, upsert, upsert.stage_messages_sql(stage, batch.path, batched_at), stage)
            )
        rows = {batch.stream: batch.rows for batch in pending}
        state = self.state
        self.buffered = 0

        def commit() -> None:
            self._transaction(work, rows=rows, unit="records")
            for batch in pending:
                batch.discard()
            self.emit(state)

        self.inflight = self.committer.submit(commit)

    def _transaction(self, work: list[tuple[str, Upsert, str, str]], rows: dict[str, int], unit: str) -> None:
        """One transaction for ``work``; a configured ``memory_limit`` is a target, not a wall.

        A batch that runs out of memory under the configured limit is rolled back and loaded again
        once with DuckDB's default limit (the staged files are still there), with a warning; the
        limit is set again afterwards. Without a configured limit an out-of-memory error fails the
        batch like any other error.
        """
        limit = self.settings.duckdb_settings.get("memory_limit")
        try:
            self._attempt(work, rows, unit)
        except duckdb.OutOfMemoryException as exc:
            if not limit:
                raise self._failed(exc, OUT_OF_MEMORY_ADVICE) from None
            LOG.warning(
                "a batch needed more memory than memory_limit %s (%s); loading it again without the limit",
                limit,
                first_line(exc),
            )
            # SET, not RESET: DuckDB 1.2's RESET reports the default but keeps enforcing the old limit
            set_option(self.conn, "memory_limit", default_memory_limit())
            try:
                self._attempt(work, rows, unit)
            except duckdb.OutOfMemoryException as retry_exc:
                raise self._failed(retry_exc, OUT_OF_MEMORY_ADVICE) from None
            except duckdb.Error as retry_exc:
                raise self._failed(retry_exc) from None
            finally:
                set_option(self.conn, "memory_limit", limit)
        except duckdb.Error as exc:
            raise self._failed(exc) from None

    def _failed(
        self, exc: duckdb.Error, advice: str = "fix the data or the schema and run again"
    ) -> LoaderError:
        stream, table = self._failing
        return LoaderError(
            f"loading stream {stream!r} into {table} failed, so this batch was rolled back and no "
            f"state after it was emitted ({advice}): {first_line(exc)}"
        )

    def _attempt(self, work: list[tuple[str, Upsert, str, str]], rows: dict[str, int], unit: str) -> None:
        """Run ``work`` in one transaction; on a DuckDB error roll back and re-raise it."""
        self.conn.execute("BEGIN TRANSACTION")
        self._failing = ("", "")
        try:
            for stream, upsert, stage_sql, stage in work:
                table = upsert.table.sql
                self._failing = (stream, table)
                started = time.perf_counter()
                self.conn.execute(stage_sql)
                for statement in upsert.load_sql(stage):
                    self.conn.execute(statement)
                LOG.info(
                    "stream %s: %d %s -> %s in %.3f s",
                    stream,
                    rows[stream],
                    unit,
                    table,
                    time.perf_counter() - started,
                )
            self.conn.execute("COMMIT")
        except duckdb.Error:
            try:
                self.conn.execute("ROLLBACK")
            except duckdb.Error:
                pass
            raise

    def emit_state(self) -> None:
        """Write the latest STATE received, unless it is the one written last (nothing in flight)."""
        self.emit(self.state)

    def emit(self, state: bytes | None) -> None:
        if state is not None and state != self.emitted:
            self.out.write(state + b"\n")
            self.out.flush()
            self.emitted = state
