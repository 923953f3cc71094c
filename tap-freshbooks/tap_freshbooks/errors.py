"""User-actionable errors of tap-freshbooks.

Every error carries a one-line ``message`` meant for the person running the tap (and an optional
``hint``); messages never contain token, secret or key values. The classes are defined by the auth
package (``freshbooks_auth.errors``), which raises most of them: the tap's own errors subclass
:class:`FreshBooksError` like they do, so one ``except FreshBooksError`` catches both.
"""

from __future__ import annotations

from freshbooks_auth.errors import (
    REAUTH_COMMAND,
    ConfigError,
    FreshBooksError,
    LoginError,
    ReauthorizationRequired,
    TokenEndpointError,
    TokenStoreError,
)

__all__ = [
    "REAUTH_COMMAND",
    "ConfigError",
    "FreshBooksError",
    "LoginError",
    "ReauthorizationRequired",
    "TokenEndpointError",
    "TokenStoreError",
]
