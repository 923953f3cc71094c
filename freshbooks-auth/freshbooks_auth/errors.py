"""User-actionable errors of FreshBooks auth, and the base class every tap-freshbooks error shares.

Every error here carries a one-line ``message`` meant for the person running the tap or the bridge
(and an optional ``hint``). Messages never contain token, secret or key values.
"""

from __future__ import annotations

REAUTH_COMMAND = "tap-freshbooks auth login --config <your config>"


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


class FreshBooksError(Exception):
    """Base class for errors the user can act on; ``str(err)`` is one line."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = _one_line(message)
        self.hint = _one_line(hint) if hint else None
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message


class ConfigError(FreshBooksError):
    """A setting is missing or invalid."""


class ReauthorizationRequired(FreshBooksError):
    """The grant is unusable: the user must run ``tap-freshbooks auth login`` again."""


class TokenStoreError(FreshBooksError):
    """The encrypted token store cannot be read, decrypted, written or locked."""


class LoginError(FreshBooksError):
    """The authorization-code flow (``tap-freshbooks auth login``) failed."""


class TokenEndpointError(FreshBooksError):
    """The token endpoint failed in a way that is not a rejected grant (outage, unexpected reply)."""
