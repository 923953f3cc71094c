"""Accounts and callbacks that ``webhook-bridge register`` created, so a verification delivery can be
tied to its account (and verifications of unknown accounts are refused)."""

from __future__ import annotations

import time
import typing as t

if t.TYPE_CHECKING:
    from webhook_bridge.store.database import Database


class CallbackRepository:
    """The ``accounts`` and ``callbacks`` tables."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def remember_account(self, account_id: str) -> None:
        """``register`` is about to create callbacks for this account: accept its verifications."""
        with self.db.tx():
            self.db.run(
                "INSERT INTO accounts (account_id, registered_ts) VALUES (?, ?) ON CONFLICT DO NOTHING",
                (account_id, time.time()),
            )

    def known_account(self, account_id: str) -> bool:
        """Registered here, or has a callback or a verified verifier."""
        row = self.db.one(
            "SELECT 1 AS yes FROM accounts WHERE account_id = ?"
            " UNION ALL SELECT 1 FROM callbacks WHERE account_id = ?"
            " UNION ALL SELECT 1 FROM verifiers WHERE account_id = ? AND status = 'verified'"
            " LIMIT 1",
            (account_id, account_id, account_id),
        )
        return row is not None

    def remember_callback(self, account_id: str, callback_id: str, event: str, uri: str) -> None:
        with self.db.tx():
            self.db.run(
                "INSERT INTO callbacks (account_id, callback_id, event, uri, created_ts)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (account_id, callback_id)"
                " DO UPDATE SET event = excluded.event, uri = excluded.uri",
                (account_id, callback_id, event, uri, time.time()),
            )

    def callback_account(self, callback_id: str) -> str | None:
        """The account a registered callback id belongs to (``None``: unknown or ambiguous)."""
        rows = self.db.all("SELECT DISTINCT account_id FROM callbacks WHERE callback_id = ?", (callback_id,))
        return str(rows[0]["account_id"]) if len(rows) == 1 else None

    def forget_callback(self, account_id: str, callback_id: str) -> int:
        """Delete a callback's verifiers and registration (after ``register --delete``)."""
        with self.db.tx():
            n = self.db.run(
                "DELETE FROM verifiers WHERE account_id = ? AND callback_id = ?", (account_id, callback_id)
            )
            self.db.run(
                "DELETE FROM callbacks WHERE account_id = ? AND callback_id = ?", (account_id, callback_id)
            )
            return n
