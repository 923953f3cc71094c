"""The settings auth reads from a tap config (the contract's names), and where FreshBooks is.

Both the authenticator and ``auth login`` read them through here, so neither imports the other for
a helper.
"""

from __future__ import annotations

import typing as t

from freshbooks_auth.errors import ConfigError
from freshbooks_auth.fernet import GENERATE_KEY_COMMAND

if t.TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

DEFAULT_API_URL = "https://api.freshbooks.com"
DEFAULT_AUTH_URL = "https://auth.freshbooks.com"
TOKEN_PATH = "/auth/oauth/token"


def require_settings(config: Mapping[str, t.Any], names: Iterable[str]) -> None:
    """Raise ConfigError for the first missing/empty setting, naming its environment variable."""
    for name in names:
        value = config.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            env = f"TAP_FRESHBOOKS_{name.upper()}"
            hint = f"; generate one with: {GENERATE_KEY_COMMAND}" if name == "token_encryption_key" else ""
            msg = f"setting `{name}` is missing: set it in the config file or as {env}{hint}"
            raise ConfigError(msg)


def api_base_url(config: Mapping[str, t.Any]) -> str:
    """``api_url`` without a trailing slash (the token endpoint lives there too)."""
    return str(config.get("api_url") or DEFAULT_API_URL).rstrip("/")


def token_url(base_api_url: str) -> str:
    """The OAuth token endpoint under ``base_api_url``."""
    return f"{base_api_url.rstrip('/')}{TOKEN_PATH}"
