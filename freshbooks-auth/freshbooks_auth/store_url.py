"""What every token store backend shares about its URL: the setting's name, examples, redaction.

A module of its own so the backends (``token_store_postgres``, ``token_store_s3``) and the factory
that picks them (``token_backends``) import it without importing each other.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from freshbooks_auth.errors import ConfigError

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
