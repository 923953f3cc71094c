"""The Fernet key: how to make one, and how a bad one is reported (one line, never the key).

Everything encrypted at rest uses it: the token store (every backend) and the bridge's verifiers.
"""

from __future__ import annotations

from cryptography.fernet import Fernet

from freshbooks_auth.errors import ConfigError

#: the one documented way to make a key (works wherever cryptography is installed)
GENERATE_KEY_COMMAND = (
    'python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"'
)
DEFAULT_KEY_SETTING = "token_encryption_key (TAP_FRESHBOOKS_TOKEN_ENCRYPTION_KEY)"


def new_encryption_key() -> str:
    """A fresh Fernet key for ``token_encryption_key``."""
    return Fernet.generate_key().decode()


def fernet(encryption_key: str | bytes | None, *, setting: str = DEFAULT_KEY_SETTING) -> Fernet:
    """A Fernet for ``encryption_key``.

    Raises:
        ConfigError: the key is missing or not a Fernet key; the message names ``setting`` and
            :data:`GENERATE_KEY_COMMAND`, never the key.
    """
    if not encryption_key:
        msg = f"{setting} is not set. Generate one with: {GENERATE_KEY_COMMAND}"
        raise ConfigError(msg)
    key = encryption_key.strip()
    try:
        return Fernet(key)
    except (ValueError, TypeError):
        msg = (
            f"{setting} is not a valid Fernet key (32 url-safe base64-encoded bytes). "
            f"Generate one with: {GENERATE_KEY_COMMAND}"
        )
        raise ConfigError(msg) from None
