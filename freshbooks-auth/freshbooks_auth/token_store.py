"""Encrypted, atomically written, inter-process locked storage for FreshBooks OAuth tokens.

FreshBooks refresh tokens are single-use: every refresh returns a new pair and the old refresh token
stops working. Meltano deletes the plugin config after a run, so the current pair lives here:

* the whole file is one Fernet token (AES-128-CBC + HMAC-SHA256) of the JSON token set; plain text
  never touches the disk;
* ``save`` writes a temp file (mode 0600) in the same directory, fsyncs it, ``os.replace``s it over
  the store and fsyncs the directory, so a crash leaves either the old or the new file, never a torn one;
* ``lock`` is an exclusive inter-process lock on ``<path>.lock`` that serialises refreshes.

This is the ``file://`` backend (and what ``token_store_path`` selects). The PostgreSQL and S3 backends
(``token_store_postgres``, ``token_store_s3``) store the same encrypted document through
:class:`TokenCipher`; ``token_backends`` picks one from ``token_store_url``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import os
import tempfile
import time
import typing as t
from pathlib import Path

import filelock
from cryptography.fernet import InvalidToken

from freshbooks_auth.errors import ConfigError, TokenStoreError
from freshbooks_auth.fernet import fernet

if t.TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

LOGGER = logging.getLogger(__name__)

STORE_FORMAT_VERSION = 1
DEFAULT_LOCK_TIMEOUT = 120.0


@dataclasses.dataclass(frozen=True)
class TokenSet:
    """One FreshBooks token pair with its expiry.

    ``expires_at`` is unix seconds (``created_at + expires_in`` as FreshBooks and its SDKs compute it).
    ``obtained_at`` is this machine's clock when the pair was received; it bounds the refresh margin so a
    token with a short lifetime (or a skewed ``created_at``) is still used for half its life instead
    of being refreshed on every request.
    """

    access_token: str
    refresh_token: str
    expires_at: float
    created_at: int
    scope: str | None = None
    token_type: str = "Bearer"
    obtained_at: float | None = None

    @classmethod
    def from_token_response(
        cls,
        payload: Mapping[str, t.Any],
        *,
        obtained_at: float | None = None,
        previous_refresh_token: str | None = None,
    ) -> TokenSet:
        """Build a token set from the JSON body of ``POST /auth/oauth/token``.

        Raises:
            ValueError: the body has no usable ``access_token``/``refresh_token``/``expires_in``
                (the message never contains token values).
        """
        now = time.time() if obtained_at is None else float(obtained_at)
        access_token = payload.get("access_token")
        if not isinstance(access_token, str) or not access_token:
            msg = "token response has no access_token"
            raise ValueError(msg)
        refresh_token = payload.get("refresh_token") or previous_refresh_token
        if not isinstance(refresh_token, str) or not refresh_token:
            msg = "token response has no refresh_token"
            raise ValueError(msg)
        try:
            expires_in = float(payload.get("expires_in", 43200))
        except (TypeError, ValueError):
            msg = "token response has a non-numeric expires_in"
            raise ValueError(msg) from None
        try:
            created_at = int(payload["created_at"])
        except (KeyError, TypeError, ValueError):
            created_at = int(now)
        expires_at = created_at + expires_in
        if expires_at <= now:
            # created_at is far in the past (clock skew, or a created_at carried over from an older
            # grant): the token cannot already be expired at the moment we receive it. Trust our clock.
            LOGGER.warning(
                "FreshBooks token response created_at is %.0f s old; computing expiry from local time",
                now - created_at,
            )
            expires_at = now + expires_in
        scope = payload.get("scope")
        return cls(
            access_token=access_token,
            refresh_token=refresh_token,
            expires_at=float(expires_at),
            created_at=created_at,
            scope=scope if isinstance(scope, str) else None,
            token_type=str(payload.get("token_type") or "Bearer"),
            obtained_at=now,
        )

    def effective_margin(self, margin_seconds: float) -> float:
        """The refresh margin, capped at half of the token's lifetime as received."""
        margin = max(0.0, float(margin_seconds))
        if self.obtained_at is not None:
            margin = min(margin, max(0.0, (self.expires_at - self.obtained_at) / 2))
        return margin

    def is_fresh(self, margin_seconds: float = 0.0, *, now: float | None = None) -> bool:
        """True when the access token is valid for more than the (capped) margin."""
        now = time.time() if now is None else now
        return now < self.expires_at - self.effective_margin(margin_seconds)

    def is_expired(self, *, now: float | None = None) -> bool:
        """True when the access token is past its expiry."""
        now = time.time() if now is None else now
        return now >= self.expires_at

    def to_dict(self) -> dict[str, t.Any]:
        """JSON-ready dict (contains the secrets: only ever written encrypted)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, t.Any]) -> TokenSet:
        """Inverse of :meth:`to_dict`.

        Raises:
            ValueError: a required field is missing or has the wrong type.
        """
        try:
            access_token = data["access_token"]
            refresh_token = data["refresh_token"]
            if not isinstance(access_token, str) or not isinstance(refresh_token, str):
                raise TypeError
            expires_at = float(data["expires_at"])
            if not math.isfinite(expires_at):
                raise TypeError
            created_at = int(data.get("created_at") or 0)
            obtained = data.get("obtained_at")
            return cls(
                access_token=access_token,
                refresh_token=refresh_token,
                expires_at=expires_at,
                created_at=created_at,
                scope=data.get("scope"),
                token_type=str(data.get("token_type") or "Bearer"),
                obtained_at=float(obtained) if obtained is not None else None,
            )
        except (KeyError, TypeError, ValueError):
            msg = "token data is missing access_token, refresh_token or expires_at"
            raise ValueError(msg) from None

    def __repr__(self) -> str:
        return (
            f"TokenSet(access_token={_redact(self.access_token)}, "
            f"refresh_token={_redact(self.refresh_token)}, expires_at={self.expires_at!r}, "
            f"created_at={self.created_at!r}, scope={self.scope!r}, token_type={self.token_type!r})"
        )

    __str__ = __repr__


def _redact(value: str | None) -> str:
    return "None" if value is None else f"'<redacted {len(value)} chars>'"


class TokenCipher:
    """Fernet encryption of the stored token document, shared by every backend.

    The document is ``{"version": 1, "tokens": {...} | null, ...extra}``; a backend may add its own
    fields (the S3 backend keeps its rotation lease there). Plain text never leaves this object.
    """

    def __init__(self, encryption_key: str | bytes | None) -> None:
        """Raises ConfigError when ``encryption_key`` is missing or not a Fernet key."""
        self._fernet = fernet(encryption_key)

    def seal(self, tokens: TokenSet | None, **extra: t.Any) -> bytes:
        """Encrypt a document holding ``tokens`` (``None``: no token yet) and ``extra`` fields."""
        document = {
            "version": STORE_FORMAT_VERSION,
            "tokens": tokens.to_dict() if tokens is not None else None,
            **extra,
        }
        return self._fernet.encrypt(json.dumps(document, separators=(",", ":")).encode())

    def open(self, blob: bytes, *, location: str, medium: str = "stored value") -> dict[str, t.Any]:
        """Decrypt ``blob`` into the document dict (without checking the token set).

        Raises:
            TokenStoreError: the key does not decrypt it, or it is not a JSON object.
        """
        try:
            plain = self._fernet.decrypt(blob.strip())
        except InvalidToken:
            msg = (
                f"token_encryption_key does not decrypt {location}: the key is not the one the store "
                f"was written with, or the {medium} is corrupt"
            )
            raise TokenStoreError(
                msg,
                hint="Use the original key, or clear the store and run: tap-freshbooks auth login",
            ) from None
        try:
            data = json.loads(plain)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            msg = f"token store {location} decrypts but does not hold a FreshBooks token set"
            raise TokenStoreError(msg)
        return data

    @staticmethod
    def tokens(document: Mapping[str, t.Any], *, location: str) -> TokenSet | None:
        """The token set in a decrypted document (``None`` when it holds none yet).

        Raises:
            TokenStoreError: the document does not hold a token set.
        """
        if "version" in document and document.get("tokens") is None:
            return None
        try:
            return TokenSet.from_dict(document.get("tokens", document))
        except ValueError:
            msg = f"token store {location} decrypts but does not hold a FreshBooks token set"
            raise TokenStoreError(msg) from None


class TokenStore:
    """The encrypted token file at ``path`` (the ``file://`` backend)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        encryption_key: str | bytes,
        *,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    ) -> None:
        """Create a store handle (no file access yet).

        Raises:
            ConfigError: ``path`` is empty or ``encryption_key`` is not a Fernet key.
        """
        if not path or not str(path).strip():
            msg = "token_store_path is not set (TAP_FRESHBOOKS_TOKEN_STORE_PATH)"
            raise ConfigError(msg)
        self.path = Path(path).expanduser()
        self._cipher = TokenCipher(encryption_key)
        self._fernet = self._cipher._fernet  # noqa: SLF001
        self.lock_timeout = float(lock_timeout)
        self.lock_path = self.path.with_name(self.path.name + ".lock")
        self._filelock: filelock.BaseFileLock | None = None

    def __repr__(self) -> str:
        return f"TokenStore(path={str(self.path)!r})"

    @property
    def location(self) -> str:
        """Where the tokens are, for messages (the file's path)."""
        return str(self.path)

    # reading ------------------------------------------------------------------------------------

    def load(self) -> TokenSet | None:
        """Read and decrypt the store; ``None`` when the file does not exist.

        Raises:
            TokenStoreError: the file cannot be read, the key does not decrypt it, or the content is
                not a token set.
        """
        try:
            blob = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            msg = f"cannot read token store {self.path}: {exc.strerror or type(exc).__name__}"
            raise TokenStoreError(msg) from None
        document = self._cipher.open(blob, location=str(self.path), medium="file")
        return self._cipher.tokens(document, location=str(self.path))

    # writing ------------------------------------------------------------------------------------

    def check_key(self) -> None:
        """Fail when a store exists that this key does not decrypt (before anything replaces it).

        Raises:
            TokenStoreError: the file exists and cannot be read or decrypted with this key.
        """
        try:
            blob = self.path.read_bytes()
        except FileNotFoundError:
            return
        except OSError:
            self.load()  # raises the one-line read error
            return
        try:
            self._fernet.decrypt(blob.strip())
        except InvalidToken:
            self.load()  # raises the one-line wrong-key error

    def check_writable(self) -> None:
        """Fail early (before a refresh consumes the refresh token) if the store cannot be written.

        Raises:
            TokenStoreError: the directory is missing/not writable.
        """
        directory = self.path.parent
        try:
            make_private_dirs(directory)
        except OSError as exc:
            msg = f"cannot create token store directory {directory}: {exc.strerror or exc}"
            raise TokenStoreError(msg) from None
        if not os.access(directory, os.W_OK | os.X_OK):
            msg = f"token store directory {directory} is not writable"
            raise TokenStoreError(msg)

    def save(self, tokens: TokenSet) -> None:
        """Encrypt and atomically replace the store (temp file 0600 + fsync + rename + dir fsync).

        Raises:
            TokenStoreError: the file could not be written; the previous file is left untouched.
        """
        self.check_writable()
        blob = self._cipher.seal(tokens)
        directory = self.path.parent
        tmp_name: str | None = None
        try:
            fd, tmp_name = tempfile.mkstemp(
                prefix=f".{self.path.name}.", suffix=".tmp", dir=directory
            )  # mkstemp creates the file with mode 0600
            with os.fdopen(fd, "wb") as fh:
                if hasattr(os, "fchmod"):
                    os.fchmod(fh.fileno(), 0o600)
                fh.write(blob)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp_name, self.path)
            tmp_name = None
        except OSError as exc:
            msg = f"cannot write token store {self.path}: {exc.strerror or type(exc).__name__}"
            raise TokenStoreError(msg) from None
        finally:
            if tmp_name is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp_name)
        _fsync_directory(directory)

    # locking ------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def lock(self, timeout: float | None = None) -> Iterator[None]:
        """Hold the exclusive inter-process lock on ``<path>.lock`` (re-entrant within a thread).

        Raises:
            TokenStoreError: the lock was not acquired within ``timeout`` seconds.
        """
        self.check_writable()
        if self._filelock is None:
            # thread_local: each thread takes its own flock, so threads of one process exclude each
            # other like separate processes do, while nested ``with store.lock()`` is re-entrant.
            self._filelock = filelock.FileLock(str(self.lock_path), mode=0o600, thread_local=True)
        wait = self.lock_timeout if timeout is None else timeout
        try:
            self._filelock.acquire(timeout=wait)
        except filelock.Timeout:
            msg = (
                f"timed out after {wait:g} s waiting for the token store lock {self.lock_path} "
                "(another tap-freshbooks process holds it: a refresh or login in progress, or a hung run)"
            )
            raise TokenStoreError(msg) from None
        try:
            yield
        finally:
            self._filelock.release()


def make_private_dirs(directory: Path) -> None:
    """Create ``directory`` and its missing parents as 0700 whatever the umask; leave existing ones alone."""
    missing: list[Path] = []
    while not directory.exists() and directory != directory.parent:
        missing.append(directory)
        directory = directory.parent
    for new in reversed(missing):
        try:
            new.mkdir(mode=0o700)
        except FileExistsError:
            continue  # created meanwhile by another process: not ours to change
        os.chmod(new, 0o700)  # mkdir's mode is filtered through the umask


def _fsync_directory(directory: Path) -> None:
    """Make the rename durable; best effort where directories cannot be opened (Windows)."""
    try:
        dir_fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)
