"""PostgreSQL token store: one row per grant, rotated under ``SELECT ... FOR UPDATE``.

``token_store_url = postgresql://user@host:5432/db?grant=NAME&table=NAME`` (``grant`` defaults to
``default``, ``table`` to ``tap_freshbooks_tokens``, optionally ``schema.table``; every other query
parameter, e.g. ``sslmode``, goes to libpq; a password may come from the URL, ``PGPASSWORD`` or
``~/.pgpass``). The row key is (``client_id``, grant); the value is the same Fernet-encrypted
document as the file store, so the database never sees a token in clear.

``lock()`` opens a transaction, makes sure the grant's row exists (``INSERT ... ON CONFLICT DO
NOTHING``) and locks it with ``SELECT ... FOR UPDATE`` (``lock_timeout`` bounds the wait). Inside it
``load()`` re-reads the row on the locking connection, and ``save()`` updates it and COMMITS before it
returns, so the caller uses the new access token only once every other runner can read it. A holder
that dies releases the row with its connection; one that hangs is cut off by
``idle_in_transaction_session_timeout``.
"""

from __future__ import annotations

import contextlib
import re
import threading
import typing as t
from urllib.parse import parse_qsl, urlencode, urlsplit

from freshbooks_auth.errors import ConfigError, TokenStoreError
from freshbooks_auth.store_url import URL_SETTING, missing_extra_error, nested, redact_url
from freshbooks_auth.token_store import DEFAULT_LOCK_TIMEOUT, TokenCipher

try:
    import psycopg
    from psycopg import errors as pg_errors
    from psycopg import sql
except ImportError:  # pragma: no cover - exercised only without the extra
    psycopg = None  # type: ignore[assignment]

if t.TYPE_CHECKING:
    from collections.abc import Iterator

    from freshbooks_auth.token_store import TokenSet

DEFAULT_GRANT = "default"
DEFAULT_TABLE = "tap_freshbooks_tokens"
# A holder idle inside its transaction longer than this is cut off by the server (a hung runner);
# longer than the token POST can take with all its retries (4 x 60 s + waits).
IDLE_IN_TRANSACTION_SECONDS = 600
CONNECT_TIMEOUT_SECONDS = 10
_OUR_PARAMS = ("grant", "table")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


class _Held(threading.local):
    conn: t.Any = None
    depth: int = 0


class PostgresTokenStore:
    """The grant's row in a PostgreSQL table (see the module docstring)."""

    def __init__(
        self,
        url: str,
        encryption_key: str | bytes | None,
        *,
        client_id: str,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    ) -> None:
        """Parse the URL (no connection yet).

        Raises:
            ConfigError: psycopg is missing, the URL or its ``grant``/``table`` is unusable, or the
                encryption key is malformed.
        """
        if psycopg is None:
            raise missing_extra_error("PostgreSQL", "postgres", "psycopg")
        self._cipher = TokenCipher(encryption_key)
        parts = urlsplit(url)
        params = parse_qsl(parts.query, keep_blank_values=True)
        ours = {k: v for k, v in params if k in _OUR_PARAMS}
        self.grant = ours.get("grant") or DEFAULT_GRANT
        table = ours.get("table") or DEFAULT_TABLE
        names = table.split(".")
        if len(names) > 2 or not all(_IDENTIFIER.fullmatch(n) for n in names):
            msg = f"setting `{URL_SETTING}` has table={table!r}: use a plain name or schema.name"
            raise ConfigError(msg)
        if not parts.hostname and not parts.path.strip("/") and not params:
            msg = f"setting `{URL_SETTING}` ({redact_url(url)}) names no PostgreSQL server or database"
            raise ConfigError(msg)
        self.client_id = client_id
        self.table = sql.Identifier(*names)
        self._table_name = table
        passthrough = urlencode([(k, v) for k, v in params if k not in _OUR_PARAMS])
        self._conninfo = parts._replace(scheme="postgresql", query=passthrough).geturl()
        self.lock_timeout = float(lock_timeout)
        self._location = (
            f"{redact_url(parts._replace(query='').geturl())} (table {table}, grant {self.grant!r})"
        )
        self._held = _Held()
        self._table_ready = False

    def __repr__(self) -> str:
        return f"PostgresTokenStore({self._location!r})"

    @property
    def location(self) -> str:
        """URL without password, table and grant."""
        return self._location

    # connection --------------------------------------------------------------------------------

    def _fail(self, action: str, exc: Exception) -> TokenStoreError:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return TokenStoreError(f"cannot {action} the token store {self._location}: {first}")

    def _connect(self) -> t.Any:
        try:
            conn = psycopg.connect(
                self._conninfo,
                connect_timeout=CONNECT_TIMEOUT_SECONDS,
                application_name="tap-freshbooks token store",
            )
        except psycopg.Error as exc:
            raise self._fail("connect to", exc) from None
        try:
            self._ensure_table(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def _ensure_table(self, conn: t.Any) -> None:
        if self._table_ready:
            return
        create = sql.SQL(
            "CREATE TABLE IF NOT EXISTS {} ("
            " client_id text NOT NULL,"
            " grant_name text NOT NULL,"
            " blob text,"  # the Fernet token of the document; NULL until the first save
            " updated_at timestamptz NOT NULL DEFAULT now(),"
            " PRIMARY KEY (client_id, grant_name))"
        ).format(self.table)
        try:
            with conn.transaction():
                # Two first runs at once: CREATE TABLE IF NOT EXISTS is not atomic in PostgreSQL
                # (a unique violation on pg_type), so serialise it on an advisory lock.
                conn.execute(
                    "SELECT pg_advisory_xact_lock(hashtext(%s))", [f"tap-freshbooks:{self._table_name}"]
                )
                conn.execute(create)
        except psycopg.Error as exc:
            raise self._fail(f"create the table {self._table_name} in", exc) from None
        self._table_ready = True

    def _key(self) -> list[str]:
        return [self.client_id, self.grant]

    def _decode(self, blob: str | None) -> TokenSet | None:
        if blob is None:
            return None
        document = self._cipher.open(blob.encode(), location=self._location, medium="row")
        return self._cipher.tokens(document, location=self._location)

    def _select(self, conn: t.Any, *, for_update: bool) -> str | None:
        query = sql.SQL("SELECT blob FROM {} WHERE client_id = %s AND grant_name = %s").format(self.table)
        if for_update:
            query = query + sql.SQL(" FOR UPDATE")
        row = conn.execute(query, self._key()).fetchone()
        return row[0] if row else None

    # the interface ------------------------------------------------------------------------------

    def load(self) -> TokenSet | None:
        """The committed pair; inside ``lock()`` the row as locked by this runner."""
        if self._held.conn is not None:
            try:
                blob = self._select(self._held.conn, for_update=False)
            except psycopg.Error as exc:
                raise self._fail("read", exc) from None
            return self._decode(blob)
        conn = self._connect()
        try:
            blob = self._select(conn, for_update=False)
            conn.rollback()
        except psycopg.Error as exc:
            raise self._fail("read", exc) from None
        finally:
            conn.close()
        return self._decode(blob)

    def check_key(self) -> None:
        """Fail when the row holds a blob this key does not decrypt."""
        self.load()

    def check_writable(self) -> None:
        """Inside ``lock()`` the row is ours; outside, connect and make sure the table exists."""
        if self._held.conn is not None:
            return
        self._connect().close()

    @contextlib.contextmanager
    def lock(self, timeout: float | None = None) -> Iterator[None]:
        """Lock the grant's row in a transaction (re-entrant within a thread).

        Raises:
            TokenStoreError: the row stayed locked by another runner for ``timeout`` seconds, or the
                database cannot be reached.
        """
        if self._held.conn is not None:
            with nested(self._held):
                yield
            return
        wait = self.lock_timeout if timeout is None else float(timeout)
        conn = self._connect()
        try:
            try:
                conn.execute("SELECT set_config('lock_timeout', %s, true)", [f"{max(1, int(wait * 1000))}ms"])
                conn.execute(
                    "SELECT set_config('idle_in_transaction_session_timeout', %s, true)",
                    [f"{IDLE_IN_TRANSACTION_SECONDS}s"],
                )
                conn.execute(
                    sql.SQL(
                        "INSERT INTO {} (client_id, grant_name, blob) VALUES (%s, %s, NULL) "
                        "ON CONFLICT (client_id, grant_name) DO NOTHING"
                    ).format(self.table),
                    self._key(),
                )
                self._select(conn, for_update=True)
            except pg_errors.LockNotAvailable:
                msg = (
                    f"timed out after {wait:g} s waiting for the token store lock on {self._location} "
                    "(another tap-freshbooks process holds it: a refresh or login in progress, or a hung run)"
                )
                raise TokenStoreError(msg) from None
            except psycopg.Error as exc:
                raise self._fail("lock", exc) from None
            self._held.conn = conn
            self._held.depth = 1
            try:
                yield
            finally:
                self._held.conn = None
                self._held.depth = 0
        finally:
            with contextlib.suppress(psycopg.Error):
                conn.rollback()  # nothing to undo after save() committed; releases the row lock
            conn.close()

    def save(self, tokens: TokenSet) -> None:
        """Write ``tokens`` and commit before returning (takes the lock itself when not held)."""
        if self._held.conn is None:
            with self.lock():
                self.save(tokens)
            return
        conn = self._held.conn
        blob = self._cipher.seal(tokens).decode()
        try:
            conn.execute(
                sql.SQL(
                    "UPDATE {} SET blob = %s, updated_at = now() WHERE client_id = %s AND grant_name = %s"
                ).format(self.table),
                [blob, *self._key()],
            )
            # Durable and visible to every runner before the caller uses the new access token. The
            # commit also releases the row: the rotation is complete, and nothing the caller does
            # after save() needs it (a later save in the same block updates the row again).
            conn.commit()
        except psycopg.Error as exc:
            raise self._fail("write", exc) from None
