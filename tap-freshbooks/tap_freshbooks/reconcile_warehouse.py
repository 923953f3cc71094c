"""Read-only access to the warehouse that ``tap-freshbooks reconcile`` checks.

``duckdb:///path/to/file.duckdb`` opens the file read-only with the ``duckdb`` package;
``postgresql://user:pass@host:port/db`` connects with ``psycopg`` (v3) in a read-only session.
Both packages are the optional extra ``tap-freshbooks[reconcile]`` and are imported lazily, so the
tap itself never needs them.
"""

from __future__ import annotations

import datetime as dt
import re
import typing as t
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from tap_freshbooks.errors import ConfigError, FreshBooksError
from tap_freshbooks.reconcile_compare import Fact, Money, StreamSpec, as_decimal, as_int, as_utc, money_of

INSTALL_HINT = "install tap-freshbooks[reconcile] (pip install 'tap-freshbooks[reconcile]')"
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
FETCH_ROWS = 5_000


class WarehouseError(FreshBooksError):
    """The warehouse could not be read (connection refused, file locked, query failed)."""


def redact(url: str) -> str:
    """The URL with any password replaced by ``***`` (safe for logs and reports)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def check_identifier(name: str, what: str) -> str:
    """A schema/table/column name we are willing to put in SQL (quoted, but still plain)."""
    if not _IDENTIFIER.match(name or ""):
        msg = f"{what} {name!r} is not a plain SQL identifier (letters, digits, underscore)"
        raise ConfigError(msg)
    return name


def _quote(name: str) -> str:
    return '"' + check_identifier(name, "identifier") + '"'


class Warehouse:
    """Tables of one schema: which columns they have, and their rows (read-only)."""

    kind = "warehouse"

    def __init__(self, url: str, schema: str) -> None:
        self.url = redact(url)
        self.schema = check_identifier(schema, "--schema")
        self._columns: dict[str, list[str]] | None = None

    # -- backend hooks ---------------------------------------------------------------------------
    def _execute(self, sql: str, params: t.Sequence[t.Any] = ()) -> t.Any:  # pragma: no cover
        raise NotImplementedError

    def close(self) -> None:  # pragma: no cover
        raise NotImplementedError

    # -- queries ---------------------------------------------------------------------------------
    def columns(self, table: str) -> list[str] | None:
        """Column names of ``schema.table`` as stored, or None when the table does not exist."""
        if self._columns is None:
            cursor = self._execute(
                "SELECT table_name, column_name FROM information_schema.columns "
                "WHERE table_schema = ? ORDER BY table_name, ordinal_position",
                [self.schema],
            )
            found: dict[str, list[str]] = {}
            for table_name, column_name in cursor.fetchall():
                found.setdefault(str(table_name).lower(), []).append(str(column_name))
            self._columns = found
        return self._columns.get(table.lower())

    def rows(self, table: str, columns: t.Sequence[str]) -> t.Iterator[tuple[t.Any, ...]]:
        """Every row of ``schema.table`` as tuples of ``columns``, streamed."""
        select = ", ".join(_quote(c) for c in columns)
        cursor = self._execute(f"SELECT {select} FROM {_quote(self.schema)}.{_quote(table)}")
        while True:
            batch = cursor.fetchmany(FETCH_ROWS)
            if not batch:
                return
            yield from batch

    def __enter__(self) -> Warehouse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class DuckDBWarehouse(Warehouse):
    kind = "duckdb"

    def __init__(self, url: str, schema: str) -> None:
        super().__init__(url, schema)
        self.path = Path(url[len("duckdb://") :]).expanduser()
        if str(self.path) in {"", ".", "/"}:
            msg = "--warehouse duckdb URL names no file; expected duckdb:///path/to/file.duckdb"
            raise ConfigError(msg)
        if not self.path.is_file():
            msg = f"DuckDB file not found: {self.path} (expected duckdb:///path/to/file.duckdb)"
            raise ConfigError(msg)
        try:
            import duckdb  # noqa: PLC0415  (optional extra)
        except ImportError:
            msg = f"reading a DuckDB warehouse needs the duckdb package: {INSTALL_HINT}"
            raise ConfigError(msg) from None
        self._duckdb = duckdb
        self._con: t.Any = None

    def _execute(self, sql: str, params: t.Sequence[t.Any] = ()) -> t.Any:
        error = self._duckdb.Error
        if self._con is None:
            try:  # read_only: never a write, and a concurrent reader is fine
                self._con = self._duckdb.connect(str(self.path), read_only=True)
            except error as exc:
                msg = f"cannot open {self.path} read-only: {_first_line(exc)}"
                raise WarehouseError(msg) from None
        try:
            return self._con.execute(sql, list(params))
        except error as exc:
            msg = f"DuckDB query failed: {_first_line(exc)}"
            raise WarehouseError(msg) from None

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None


class PostgresWarehouse(Warehouse):
    kind = "postgresql"

    def __init__(self, url: str, schema: str) -> None:
        super().__init__(url, schema)
        try:
            import psycopg  # noqa: PLC0415  (optional extra)
        except ImportError:
            msg = f"reading a PostgreSQL warehouse needs psycopg (v3): {INSTALL_HINT}"
            raise ConfigError(msg) from None
        self._psycopg = psycopg
        self._dsn = url
        self._con: t.Any = None

    def _execute(self, sql: str, params: t.Sequence[t.Any] = ()) -> t.Any:
        error = self._psycopg.Error
        if self._con is None:
            try:
                con = self._psycopg.connect(self._dsn, autocommit=True, connect_timeout=30)
                con.execute("SET TIME ZONE 'UTC'")
                con.execute("SET default_transaction_read_only = on")
            except error as exc:
                msg = f"cannot connect to {self.url}: {self._safe(exc)}"
                raise WarehouseError(msg) from None
            self._con = con
        try:
            return self._con.cursor().execute(sql.replace("?", "%s"), list(params))
        except error as exc:
            msg = f"PostgreSQL query failed: {self._safe(exc)}"
            raise WarehouseError(msg) from None

    def _safe(self, exc: BaseException) -> str:
        text = _first_line(exc)
        secret = urlsplit(self._dsn).password
        return text.replace(secret, "***") if secret else text

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None


def open_warehouse(url: str, schema: str) -> Warehouse:
    """The warehouse at ``url`` (checked now, connected read-only on first query).

    Raises ConfigError for a URL, file or missing package the user must fix.
    """
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if scheme == "duckdb":
        return DuckDBWarehouse(url, schema)
    if scheme in {"postgresql", "postgres"}:
        return PostgresWarehouse(url, schema)
    msg = (
        f"--warehouse {redact(url)!r} is not supported; use duckdb:///path/to/file.duckdb or "
        "postgresql://user:pass@host:port/db"
    )
    raise ConfigError(msg)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def warehouse_facts(
    warehouse: Warehouse,
    spec: StreamSpec,
    accounts: t.Collection[str],
    since: dt.datetime | None,
) -> tuple[dict[str, list[Fact]] | None, set[str]]:
    """Rows of the stream's table as facts, per account (None when the table does not exist),
    and the other account ids found in it. With ``since``, rows whose replication key is older
    (or null) are left out, as on the FreshBooks side."""
    columns = warehouse.columns(spec.name)
    if columns is None:
        return None, set()
    # loaders fold names to lower case (taxAmount1 -> taxamount1__amount): match case-insensitively
    stored = {c.lower(): c for c in columns}

    def column(name: str) -> str | None:
        return stored.get(name.lower())

    missing_keys = [k for k in spec.key_properties if column(k) is None]
    if missing_keys:
        msg = f"table {warehouse.schema}.{spec.name} has no key column {', '.join(missing_keys)}"
        raise WarehouseError(msg)
    wanted: list[tuple[str, str]] = [(k, column(k)) for k in spec.key_properties]  # type: ignore[misc]
    want_vis = spec.has_vis_state and column("vis_state") is not None
    want_updated = bool(spec.replication_key) and column(spec.replication_key or "") is not None
    if want_vis:
        wanted.append(("vis_state", column("vis_state")))  # type: ignore[arg-type]
    if want_updated:
        wanted.append(("updated", column(spec.replication_key)))  # type: ignore[arg-type]
    money_columns: dict[str, tuple[str, ...]] = {}
    for name in spec.money_fields:
        flat = (f"{name}__amount", f"{name}__code")
        if all(column(c) for c in flat):
            money_columns[name] = flat  # flattening on (depth 1): the project's setting
        elif column(name):
            money_columns[name] = (name,)  # flattening off: the object as JSON text
        else:
            continue
        wanted += [(c, column(c)) for c in money_columns[name]]  # type: ignore[misc]
    select = [label for label, _ in wanted]
    per_account: dict[str, list[Fact]] = {account: [] for account in accounts}
    others: set[str] = set()
    account_at = spec.key_properties.index("account_id")
    key_at = [i for i, k in enumerate(spec.key_properties) if k != "account_id"]
    for row in warehouse.rows(spec.name, [actual for _, actual in wanted]):
        values = dict(zip(select, row, strict=True))
        account = str(row[account_at])
        if account not in per_account:
            others.add(account)
            continue
        updated = as_utc(values.get("updated")) if want_updated else None
        if since is not None and spec.replication_key and (updated is None or updated < since):
            continue
        money: dict[str, Money] = {}
        for name, cols in money_columns.items():
            if len(cols) == 2:
                code = values[cols[1]]
                money[name] = (as_decimal(values[cols[0]]), str(code) if code is not None else None)
            else:
                money[name] = money_of(values[cols[0]])
        per_account[account].append(
            Fact(
                key=tuple(str(row[i]) for i in key_at),
                vis_state=as_int(values.get("vis_state")) if want_vis else None,
                updated=updated,
                money={name: money.get(name, (None, None)) for name in spec.money_fields},
            )
        )
    return per_account, others
