"""A lease that knows whether its holder is alive, on a local file, S3 or PostgreSQL.

The lease is one small JSON record per lock key::

    {"token", "host", "pid", "pid_started", "acquired_at", "heartbeat_at", "ttl", "what"}

and every change is a compare-and-swap on the record's version, so two runners that share no disk
can never both take it:

* file: ``<dir>/<key>.json``, changed under an ``flock`` on ``<dir>/<key>.json.mutex`` (version: a
  hash of the content);
* S3: ``s3://bucket/prefix/<key>.json`` with conditional writes (``If-None-Match: *`` to create,
  ``If-Match: <ETag>`` to renew, take over or delete); endpoint and credentials from the standard
  AWS variables (``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``, ...);
* PostgreSQL: a row in ``tap_freshbooks_pipeline_locks`` with a version counter.

Whether the holder is alive: on the same machine (same host name, boot id and pid namespace) the
holder's pid must exist, not be a zombie and have the recorded start time, so a holder that was
killed with -9 frees the lease at once. From another machine only the heartbeat tells: the holder
renews it every ``HEARTBEAT_SECONDS`` and the lease is free ``ttl`` seconds after the last renewal.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import os
import re
import socket
import time
import typing as t
import uuid
from pathlib import Path
from urllib.parse import urlparse

from tap_freshbooks.errors import ConfigError

LEASE_TTL_SECONDS = 30.0
HEARTBEAT_SECONDS = 5.0
PG_TABLE = "tap_freshbooks_pipeline_locks"


# ================================================================================================
# who holds it, and is that process alive


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read().strip()
    except OSError:
        return ""


def machine_id() -> str:
    """Host name + boot id + pid namespace: equal only where a pid names the same process."""
    try:
        pid_ns = os.readlink("/proc/self/ns/pid")
    except OSError:
        pid_ns = ""
    return f"{socket.gethostname()}/{_read('/proc/sys/kernel/random/boot_id')}/{pid_ns}"


def process_started(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (clock ticks since boot), or None if it is gone or a zombie."""
    stat = _read(f"/proc/{pid}/stat")
    if not stat:
        if os.path.isdir("/proc/self"):
            return None
        try:  # no /proc (macOS): existence only
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
        return "?"
    fields = stat[stat.rfind(")") + 2 :].split()  # after "pid (comm) "
    if not fields or fields[0] in ("Z", "X"):
        return None
    return fields[19]


def process_alive(pid: int, started: str | None) -> bool:
    now_started = process_started(pid)
    return now_started is not None and (started in (None, "?") or now_started == started)


@dataclasses.dataclass(frozen=True)
class Holder:
    token: str
    host: str
    pid: int
    pid_started: str | None
    acquired_at: float
    heartbeat_at: float
    ttl: float
    what: str = ""

    @classmethod
    def for_this_process(cls, what: str, ttl: float = LEASE_TTL_SECONDS) -> Holder:
        now = time.time()
        pid = os.getpid()
        return cls(uuid.uuid4().hex, machine_id(), pid, process_started(pid), now, now, ttl, what)

    @classmethod
    def from_record(cls, record: t.Mapping[str, t.Any]) -> Holder:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in record.items() if k in names})

    def record(self) -> dict[str, t.Any]:
        return dataclasses.asdict(self)

    def alive(self, now: float | None = None) -> bool:
        if self.host == machine_id():
            return process_alive(self.pid, self.pid_started)
        return (time.time() if now is None else now) < self.heartbeat_at + self.ttl

    def describe(self, now: float | None = None) -> str:
        now = time.time() if now is None else now
        since = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(self.acquired_at))
        host = self.host.split("/", 1)[0]
        return (
            f"{self.what or 'a run'} on {host}, pid {self.pid}, since {since}, "
            f"last heartbeat {max(0, round(now - self.heartbeat_at))} s ago"
        )


# ================================================================================================
# stores: read / create / replace / delete with a version (compare-and-swap)


class LeaseStore(t.Protocol):
    where: str

    def read(self) -> tuple[dict[str, t.Any] | None, str | None]: ...

    def create(self, record: dict[str, t.Any]) -> str | None: ...

    def replace(self, record: dict[str, t.Any], version: str) -> str | None: ...

    def delete(self, version: str) -> bool: ...


def _dump(record: dict[str, t.Any]) -> bytes:
    return json.dumps(record, sort_keys=True, separators=(",", ":")).encode()


class FileLeaseStore:
    """``<directory>/<key>.json``; every change under an exclusive ``flock`` of a sibling file."""

    def __init__(self, directory: Path, key: str) -> None:
        self.path = Path(directory) / f"{key}.json"
        self.where = str(self.path)

    @contextlib.contextmanager
    def _locked(self) -> t.Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(f"{self.path}.mutex", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _current(self) -> tuple[dict[str, t.Any] | None, str | None]:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None, None
        try:
            return json.loads(raw), hashlib.sha256(raw).hexdigest()
        except ValueError:  # torn by hand: treat as free
            return None, hashlib.sha256(raw).hexdigest()

    def _write(self, record: dict[str, t.Any]) -> str:
        raw = _dump(record)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(raw)
        os.replace(tmp, self.path)
        return hashlib.sha256(raw).hexdigest()

    def read(self) -> tuple[dict[str, t.Any] | None, str | None]:
        with self._locked():
            return self._current()

    def create(self, record: dict[str, t.Any]) -> str | None:
        with self._locked():
            current, version = self._current()
            return self._write(record) if current is None and version is None else None

    def replace(self, record: dict[str, t.Any], version: str) -> str | None:
        with self._locked():
            return self._write(record) if self._current()[1] == version else None

    def delete(self, version: str) -> bool:
        with self._locked():
            if self._current()[1] != version:
                return False
            self.path.unlink(missing_ok=True)
            return True


class S3LeaseStore:
    """An object written only with conditional requests (``If-None-Match`` / ``If-Match``)."""

    CONFLICT_CODES = frozenset({"PreconditionFailed", "ConditionalRequestConflict", "412", "409"})

    def __init__(self, bucket: str, prefix: str, key: str) -> None:
        try:
            import boto3  # noqa: PLC0415
            from botocore.exceptions import ClientError  # noqa: PLC0415
        except ImportError:
            msg = (
                "pipeline_lock_url is s3://... but boto3 is not installed: "
                "pip install 'tap-freshbooks[s3]' (or boto3) into the tap's environment"
            )
            raise ConfigError(msg) from None
        self._client_error = ClientError
        self.client = boto3.client("s3")  # AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, ... as usual
        self.bucket = bucket
        self.key = f"{prefix.strip('/')}/{key}.json" if prefix.strip("/") else f"{key}.json"
        self.where = f"s3://{bucket}/{self.key}"

    def _conflict(self, exc: Exception) -> bool:
        error = getattr(exc, "response", {}).get("Error", {})
        return str(error.get("Code")) in self.CONFLICT_CODES

    def read(self) -> tuple[dict[str, t.Any] | None, str | None]:
        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=self.key)
        except self._client_error as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None, None
            raise
        raw = answer["Body"].read()
        try:
            return json.loads(raw), answer["ETag"]
        except ValueError:
            return None, answer["ETag"]

    def _put(self, record: dict[str, t.Any], **condition: str) -> str | None:
        try:
            answer = self.client.put_object(
                Bucket=self.bucket,
                Key=self.key,
                Body=_dump(record),
                ContentType="application/json",
                **condition,
            )
        except self._client_error as exc:
            if self._conflict(exc):
                return None
            raise
        return str(answer["ETag"])

    def create(self, record: dict[str, t.Any]) -> str | None:
        return self._put(record, IfNoneMatch="*")

    def replace(self, record: dict[str, t.Any], version: str) -> str | None:
        return self._put(record, IfMatch=version)

    def delete(self, version: str) -> bool:
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self.key, IfMatch=version)
        except self._client_error as exc:
            if self._conflict(exc) or exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return False
            raise
        return True


class PostgresLeaseStore:
    """A row per key in ``tap_freshbooks_pipeline_locks`` (created on first use)."""

    def __init__(self, dsn: str, key: str) -> None:
        try:
            import psycopg  # noqa: PLC0415
        except ImportError:
            msg = (
                "pipeline_lock_url is postgresql://... but psycopg is not installed: "
                "pip install 'tap-freshbooks[postgres]' (or psycopg[binary]) into the tap's environment"
            )
            raise ConfigError(msg) from None
        self._psycopg = psycopg
        self.dsn = re.sub(r"^postgres(ql)?(\+\w+)?://", "postgresql://", dsn)
        self.key = key
        parsed = urlparse(self.dsn)
        self.where = (
            f"postgresql://{parsed.hostname}:{parsed.port or 5432}{parsed.path} table {PG_TABLE}, key {key}"
        )
        self._ready = False

    def _run(self, sql: str, params: tuple[t.Any, ...]) -> tuple[t.Any, ...] | None:
        with self._psycopg.connect(self.dsn, autocommit=True, connect_timeout=10) as conn:
            if not self._ready:
                with contextlib.suppress(self._psycopg.errors.UniqueViolation):
                    conn.execute(
                        f"CREATE TABLE IF NOT EXISTS {PG_TABLE} "
                        "(key text PRIMARY KEY, record jsonb NOT NULL, version bigint NOT NULL)"
                    )
                self._ready = True
            return conn.execute(sql, params).fetchone()

    def read(self) -> tuple[dict[str, t.Any] | None, str | None]:
        row = self._run(f"SELECT record, version FROM {PG_TABLE} WHERE key = %s", (self.key,))
        return (row[0], str(row[1])) if row else (None, None)

    def create(self, record: dict[str, t.Any]) -> str | None:
        row = self._run(
            f"INSERT INTO {PG_TABLE} (key, record, version) VALUES (%s, %s, 1) "
            "ON CONFLICT (key) DO NOTHING RETURNING version",
            (self.key, json.dumps(record)),
        )
        return str(row[0]) if row else None

    def replace(self, record: dict[str, t.Any], version: str) -> str | None:
        row = self._run(
            f"UPDATE {PG_TABLE} SET record = %s, version = version + 1 "
            "WHERE key = %s AND version = %s RETURNING version",
            (json.dumps(record), self.key, int(version)),
        )
        return str(row[0]) if row else None

    def delete(self, version: str) -> bool:
        row = self._run(
            f"DELETE FROM {PG_TABLE} WHERE key = %s AND version = %s RETURNING key", (self.key, int(version))
        )
        return row is not None


def store_for(url: str, key: str) -> LeaseStore:
    """``file:///dir`` (or a plain path), ``s3://bucket/prefix`` or ``postgresql://...``."""
    parsed = urlparse(url)
    if parsed.scheme in ("", "file"):
        return FileLeaseStore(Path(parsed.path if parsed.scheme else url).expanduser(), key)
    if parsed.scheme == "s3":
        if not parsed.netloc:
            msg = f"pipeline_lock_url {url!r} names no bucket; expected s3://bucket/prefix"
            raise ConfigError(msg)
        return S3LeaseStore(parsed.netloc, parsed.path, key)
    if parsed.scheme.split("+")[0] in ("postgres", "postgresql"):
        return PostgresLeaseStore(url, key)
    msg = f"pipeline_lock_url {parsed.scheme}://... is not supported; use file://, s3:// or postgresql://"
    raise ConfigError(msg)


# ================================================================================================
# the lease


class Lease:
    """Take, renew and give back one lease; every step is a compare-and-swap on the store."""

    def __init__(self, store: LeaseStore, holder: Holder) -> None:
        self.store = store
        self.holder = holder
        self.version: str | None = None
        self.took_over: Holder | None = None  # a dead holder this lease replaced

    def try_acquire(self) -> Holder | None:
        """Take the lease; on success None, else the live holder that has it."""
        for _ in range(5):  # lost races re-read; five in a row means a live holder exists
            record, version = self.store.read()
            if record is None and version is None:
                self.version = self.store.create(self.holder.record())
                if self.version is not None:
                    return None
                continue
            current = Holder.from_record(record) if record else None
            if current is not None and current.token == self.holder.token:
                self.version = version  # our own write, its answer lost and re-sent by the client
                return None
            if current is not None and current.alive():
                return current
            self.version = self.store.replace(self.holder.record(), version or "")
            if self.version is not None:
                self.took_over = current
                return None
        record, _ = self.store.read()
        return Holder.from_record(record) if record else self.holder

    def renew(self) -> bool:
        """Move the heartbeat on; False if the lease is no longer ours."""
        if self.version is None:
            return False
        self.holder = dataclasses.replace(self.holder, heartbeat_at=time.time())
        self.version = self.store.replace(self.holder.record(), self.version)
        if self.version is None:  # a lost answer re-sent by the client looks like a conflict
            record, version = self.store.read()
            if record and record.get("token") == self.holder.token:
                self.version = version
        return self.version is not None

    def release(self) -> bool:
        if self.version is None:
            return False
        version, self.version = self.version, None
        return self.store.delete(version)
