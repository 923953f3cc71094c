"""Where the rotating FreshBooks tokens live: one interface, three backends chosen by a URL.

``token_store_url`` picks the backend (``token_store_path`` still works and means ``file://``):

* ``file:///abs/path`` (or a plain path): the encrypted local file, locked with ``flock``
  (:class:`freshbooks_auth.token_store.TokenStore`);
* ``postgresql://user@host:5432/db?grant=NAME&table=NAME``: one row per (``client_id``, grant), the
  refresh done under ``SELECT ... FOR UPDATE`` (:mod:`freshbooks_auth.token_store_postgres`);
* ``s3://bucket/key?lease_seconds=N``: one object per grant, written only with compare-and-swap
  (``If-Match`` / ``If-None-Match: *``); the endpoint and credentials come from the standard AWS
  variables (:mod:`freshbooks_auth.token_store_s3`).

Every backend keeps the same Fernet-encrypted document and honours the same contract, which is all
``auth.py`` relies on (it never asks which backend it has):

* ``load()`` outside ``lock()`` is a consistent read of the last committed pair (or ``None``);
* inside ``with lock():`` this runner is the only one, on any machine, that may rotate the grant;
  ``load()`` there returns the authoritative pair, and ``save()`` returns only once the new pair is
  durable and visible to every other runner. So the authenticator re-reads inside the lock, posts
  the refresh, saves, and only then uses the new access token.
"""

from __future__ import annotations

import typing as t
from urllib.parse import unquote, urlsplit

from freshbooks_auth.errors import ConfigError
from freshbooks_auth.store_url import URL_EXAMPLES, URL_SETTING, redact_url
from freshbooks_auth.token_store import DEFAULT_LOCK_TIMEOUT, TokenSet, TokenStore

if t.TYPE_CHECKING:
    import contextlib
    from collections.abc import Mapping

PATH_SETTING = "token_store_path"


@t.runtime_checkable
class TokenStoreBackend(t.Protocol):
    """What the authenticator and ``auth login`` need from a token store (see the module docstring)."""

    @property
    def location(self) -> str:
        """Where the tokens are, for messages: never contains a password or a token."""
        ...

    def load(self) -> TokenSet | None:
        """The stored pair, ``None`` when the store holds none yet."""
        ...

    def check_key(self) -> None:
        """Fail when the store holds something this key cannot decrypt."""
        ...

    def check_writable(self) -> None:
        """Fail, before a refresh token is spent, when a new pair could not be saved."""
        ...

    def lock(self, timeout: float | None = None) -> contextlib.AbstractContextManager[None]:
        """Hold the grant's rotation lock (one holder across processes and machines)."""
        ...

    def save(self, tokens: TokenSet) -> None:
        """Write ``tokens``; durable and visible to every runner when this returns."""
        ...


def _one_line_url_error(url: str, problem: str) -> ConfigError:
    shown = redact_url(url)
    return ConfigError(f"setting `{URL_SETTING}` ({shown}) {problem}; examples: {URL_EXAMPLES}")


def file_path_from_url(url: str) -> str:
    """The local path of a ``file:`` URL (``file:///abs``, ``file://localhost/abs``, ``file:rel``)."""
    parts = urlsplit(url)
    if parts.netloc not in ("", "localhost"):
        raise _one_line_url_error(url, "names a remote host; a file store is a local path")
    path = unquote(parts.path)
    if not path:
        raise _one_line_url_error(url, "has no path")
    return path


def open_token_store(
    url: str,
    encryption_key: str | bytes | None,
    *,
    client_id: str | None = None,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
) -> TokenStoreBackend:
    """The backend for ``url`` (a ``file:``, ``postgresql:`` or ``s3:`` URL, or a bare path).

    Raises:
        ConfigError: one line naming ``token_store_url`` when the URL is unusable, or when the
            backend's optional package is not installed.
    """
    text = str(url).strip()
    scheme = urlsplit(text).scheme.lower() if "://" in text or text.startswith("file:") else ""
    if scheme in ("", "file"):
        path = file_path_from_url(text) if scheme == "file" else text
        return TokenStore(path, encryption_key, lock_timeout=lock_timeout)  # type: ignore[arg-type]
    if scheme in ("postgresql", "postgres"):
        if not client_id:
            raise ConfigError(
                "setting `client_id` is missing: a PostgreSQL token store keys its row by client_id "
                "(set it in the config file or as TAP_FRESHBOOKS_CLIENT_ID)"
            )
        from freshbooks_auth.token_store_postgres import PostgresTokenStore  # noqa: PLC0415

        return PostgresTokenStore(text, encryption_key, client_id=client_id, lock_timeout=lock_timeout)
    if scheme == "s3":
        from freshbooks_auth.token_store_s3 import S3TokenStore  # noqa: PLC0415

        return S3TokenStore(text, encryption_key, lock_timeout=lock_timeout)
    raise _one_line_url_error(text, f"has the unsupported scheme {scheme!r}")


def store_from_config(
    config: Mapping[str, t.Any], *, lock_timeout: float = DEFAULT_LOCK_TIMEOUT
) -> TokenStoreBackend:
    """The token store a tap config selects: ``token_store_url`` wins over ``token_store_path``.

    Raises:
        ConfigError: neither is set, or the URL is unusable (one line naming the setting).
    """
    url = config.get(URL_SETTING)
    path = config.get(PATH_SETTING)
    location = url if isinstance(url, str) and url.strip() else path
    if not isinstance(location, str) or not location.strip():
        msg = (
            f"setting `{PATH_SETTING}` is missing: set it in the config file or as "
            f"TAP_FRESHBOOKS_{PATH_SETTING.upper()} (or choose another backend with "
            f"`{URL_SETTING}` / TAP_FRESHBOOKS_{URL_SETTING.upper()}, e.g. {URL_EXAMPLES})"
        )
        raise ConfigError(msg)
    if location is path:
        return TokenStore(path, config.get("token_encryption_key"), lock_timeout=lock_timeout)  # type: ignore[arg-type]
    client_id = config.get("client_id")
    return open_token_store(
        location,
        config.get("token_encryption_key"),
        client_id=str(client_id) if client_id else None,
        lock_timeout=lock_timeout,
    )
