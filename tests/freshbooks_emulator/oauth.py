"""OAuth 2.0 authorization-code flow with FreshBooks' single-use, rotating refresh tokens.

Token lifetimes use the real wall clock (``time.time()``), not the emulator's data clock,
because clients compute expiry from ``created_at + expires_in`` against their own clock.
``OAuthServer.expire_access_tokens()`` makes every current access token expire at once.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from dataclasses import dataclass

from .issued_secrets import record as record_secret

DEFAULT_SCOPE = (
    "user:profile:read user:clients:read user:invoices:read user:payments:read "
    "user:expenses:read user:bills:read user:bill_payments:read user:bill_vendors:read "
    "user:billable_items:read user:taxes:read user:credit_notes:read "
    "user:other_income:read user:journal_entries:read user:projects:read "
    "user:time_entries:read user:teams:read user:reports:read"
)

CODE_TTL = 300


class OAuthError(Exception):
    def __init__(self, status: int, error: str, description: str):
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description

    def body(self) -> dict:
        return {"error": self.error, "error_description": self.description}


@dataclass
class Grant:
    grant_id: str
    client_id: str
    scope: str
    identity_id: int
    revoked: bool = False
    created_at: int = 0


@dataclass
class AccessToken:
    token: str
    grant_id: str
    issued: float
    expires: float


def _b64(d: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(d, separators=(",", ":")).encode()).rstrip(b"=").decode()


class OAuthServer:
    def __init__(self, client_id: str, client_secret: str, redirect_uri: str, identity_id: int):
        self.lock = threading.RLock()
        self.apps: dict[str, dict] = {}
        self.register_app(client_id, client_secret, redirect_uri)
        self.identity_id = identity_id
        self.access_token_ttl = 43200
        self.refresh_keeps_created_at = False  # UNCONFIRMED live quirk (freshbooks-api.md §2.2)
        self.grants: dict[str, Grant] = {}
        self.codes: dict[str, dict] = {}
        self.refresh_tokens: dict[str, str] = {}  # live refresh token -> grant id
        self.used_refresh_tokens: dict[str, str] = {}  # spent refresh token -> grant id
        self.access_tokens: dict[str, AccessToken] = {}
        self.refresh_count = 0
        self.refresh_redirect_uris: list = []  # redirect_uri of each accepted refresh (None: absent)

    # -- apps ---------------------------------------------------------------------------
    def register_app(self, client_id: str, client_secret: str, redirect_uri: str) -> None:
        with self.lock:
            record_secret("client_secret", client_secret)
            self.apps[client_id] = {"client_secret": client_secret, "redirect_uri": redirect_uri}

    def check_client(self, client_id: str | None, client_secret: str | None) -> None:
        app = self.apps.get(client_id or "")
        if (
            app is None
            or not client_secret
            or not secrets.compare_digest(app["client_secret"], client_secret)
        ):
            raise OAuthError(
                401,
                "invalid_client",
                "Client authentication failed due to unknown client, no client "
                "authentication included, or unsupported authentication method.",
            )

    # -- authorize ----------------------------------------------------------------------
    def authorize(self, client_id: str, redirect_uri: str, scope: str | None) -> str:
        with self.lock:
            app = self.apps.get(client_id or "")
            if app is None:
                raise OAuthError(400, "invalid_client", "Unknown client_id.")
            if redirect_uri != app["redirect_uri"]:
                raise OAuthError(400, "invalid_request", "The redirect uri included is not valid.")
            code = record_secret("authorization_code", secrets.token_hex(32))
            self.codes[code] = {
                "client_id": client_id,
                "redirect_uri": redirect_uri,
                "scope": scope or DEFAULT_SCOPE,
                "expires": time.time() + CODE_TTL,
            }
            return code

    # -- tokens -------------------------------------------------------------------------
    def _new_access(self, grant: Grant, now: float) -> AccessToken:
        payload = {
            "iss": "freshbooks-emulator",
            "sub": grant.identity_id,
            "gid": grant.grant_id,
            "iat": int(now),
            "exp": int(now + self.access_token_ttl),
            "jti": secrets.token_hex(16),
            "scope": grant.scope,
        }
        tok = ".".join(
            [
                _b64({"alg": "HS256", "typ": "JWT"}),
                _b64(payload),
                base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode(),
            ]
        )
        record_secret("access_token", tok)
        at = AccessToken(tok, grant.grant_id, now, now + self.access_token_ttl)
        self.access_tokens[tok] = at
        return at

    def _token_response(self, grant: Grant, now: float) -> dict:
        at = self._new_access(grant, now)
        rt = record_secret("refresh_token", secrets.token_hex(32))
        self.refresh_tokens[rt] = grant.grant_id
        created = grant.created_at if self.refresh_keeps_created_at else int(now)
        return {
            "access_token": at.token,
            "token_type": "Bearer",
            "expires_in": self.access_token_ttl,
            "refresh_token": rt,
            "scope": grant.scope,
            "created_at": created,
            "direct_buy_tokens": {},
        }

    def new_grant(self, client_id: str, scope: str | None = None) -> dict:
        with self.lock:
            now = time.time()
            g = Grant(
                secrets.token_hex(8), client_id, scope or DEFAULT_SCOPE, self.identity_id, created_at=int(now)
            )
            self.grants[g.grant_id] = g
            return self._token_response(g, now)

    def exchange_code(self, client_id, client_secret, code, redirect_uri) -> dict:
        with self.lock:
            self.check_client(client_id, client_secret)
            if not code:
                raise OAuthError(400, "invalid_request", "Missing required parameter: code.")
            info = self.codes.pop(code, None)
            if info is None or info["expires"] < time.time() or info["client_id"] != client_id:
                raise OAuthError(
                    400,
                    "invalid_grant",
                    "The provided authorization grant is invalid, expired, revoked, "
                    "does not match the redirection URI used in the authorization "
                    "request, or was issued to another client.",
                )
            if redirect_uri != info["redirect_uri"]:
                raise OAuthError(
                    400,
                    "invalid_grant",
                    "The redirect_uri does not match the one used in the authorization request.",
                )
            return self.new_grant(client_id, info["scope"])

    def refresh(self, client_id, client_secret, refresh_token, redirect_uri=None) -> dict:
        with self.lock:
            self.check_client(client_id, client_secret)
            if not refresh_token:
                raise OAuthError(400, "invalid_request", "Missing required parameter: refresh_token.")
            gid = self.refresh_tokens.pop(refresh_token, None)
            grant = self.grants.get(gid) if gid else None
            if grant is None or grant.revoked or grant.client_id != client_id:
                raise OAuthError(
                    400,
                    "invalid_grant",
                    "The provided authorization grant is invalid, expired, revoked, "
                    "does not match the redirection URI used in the authorization "
                    "request, or was issued to another client.",
                )
            if redirect_uri and redirect_uri != self.apps[client_id]["redirect_uri"]:
                self.refresh_tokens[refresh_token] = gid  # not consumed
                raise OAuthError(400, "invalid_grant", "The redirect_uri does not match.")
            self.used_refresh_tokens[refresh_token] = gid
            self.refresh_count += 1
            self.refresh_redirect_uris.append(redirect_uri)
            return self._token_response(grant, time.time())

    def revoke_token(self, client_id, client_secret, token) -> None:
        with self.lock:
            self.check_client(client_id, client_secret)
            gid = None
            if token in self.access_tokens:
                gid = self.access_tokens[token].grant_id
            elif token in self.refresh_tokens:
                gid = self.refresh_tokens[token]
            if gid:
                self.revoke_grant(gid)

    def revoke_grant(self, grant_id: str | None = None) -> None:
        """Revoke one grant (or every grant): its access and refresh tokens stop working."""
        with self.lock:
            for g in self.grants.values():
                if grant_id is None or g.grant_id == grant_id:
                    g.revoked = True
            for rt, gid in list(self.refresh_tokens.items()):
                if self.grants[gid].revoked:
                    del self.refresh_tokens[rt]

    def expire_access_tokens(self) -> None:
        with self.lock:
            now = time.time()
            for at in self.access_tokens.values():
                at.expires = min(at.expires, now - 1)

    def check_access(self, token: str | None) -> Grant | None:
        if not token:
            return None
        with self.lock:
            at = self.access_tokens.get(token)
            if at is None or at.expires <= time.time():
                return None
            g = self.grants.get(at.grant_id)
            if g is None or g.revoked:
                return None
            return g
