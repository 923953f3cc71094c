"""What the shared token store backends have in common: their URL setting, redaction, re-entrancy.

A module of its own so the backends (``token_store_postgres``, ``token_store_s3``) and the factory
that picks them (``token_backends``) import it without importing each other.
"""

from __future__ import annotations

import contextlib
import typing as t
from urllib.parse import urlsplit

from freshbooks_auth.errors import ConfigError

if t.TYPE_CHECKING:
    from collections.abc import Iterator


class HeldLock(t.Protocol):
    """A thread's hold on a backend's lock: how deep its ``with store.lock()`` blocks are nested."""

    depth: int


DISTRIBUTION = "freshbooks-warehouse-auth"  # this package's PyPI name (it owns the extras)
URL_SETTING = "token_store_url"
URL_EXAMPLES = "file:///path/tokens.fernet, postgresql://user@host:5432/db, s3://bucket/key"


def redact_url(url: str) -> str:
    """``url`` without its password (for messages and logs)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return parts._replace(netloc=f"{user}:***@{netloc}").geturl()


def missing_extra_error(backend: str, extra: str, module: str) -> ConfigError:
    """One line saying which optional extra a backend needs."""
    return ConfigError(
        f"setting `{URL_SETTING}` selects the {backend} token store, which needs the `{module}` "
        f"package: pip install '{DISTRIBUTION}[{extra}]' (Meltano: add [{extra}] to the extractor's pip_url)"
    )


@contextlib.contextmanager
def nested(held: HeldLock) -> Iterator[None]:
    """A ``with store.lock()`` inside one this thread already holds: count it, take nothing."""
    held.depth += 1
    try:
        yield
    finally:
        held.depth -= 1
