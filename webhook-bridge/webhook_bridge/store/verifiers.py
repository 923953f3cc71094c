"""Webhook verifiers (callback signing secrets), Fernet-encrypted with the tap's token key.

A verifier is ``pending`` until FreshBooks accepted the verify PUT, then ``verified``; only verified
ones authenticate events (a forged verification delivery can therefore never plant a key). Rows are
found by an HMAC of the verifier (keyed from the encryption key), never by the secret itself.
"""

from __future__ import annotations

import hashlib
import hmac
import time
import typing as t

from cryptography.fernet import Fernet, InvalidToken

from webhook_bridge.store.database import StoreError
from webhook_bridge.store.records import Row, StoredVerifier

if t.TYPE_CHECKING:
    from webhook_bridge.store.database import Database

MAX_PENDING_VERIFIERS_PER_ACCOUNT = 200
KEEP_REJECTED = 100
KEY_CHECK = "key_check"  # meta row: a Fernet token of this text, proves the key on open


class VerifierCipher:
    """Encrypts verifiers and proves, on open, that the key is the database's."""

    def __init__(self, encryption_key: str) -> None:
        self._fernet = Fernet(encryption_key.encode())
        self._hash_key = hashlib.sha256(b"webhook-bridge verifier id\x00" + encryption_key.encode()).digest()

    def encrypt(self, verifier: str) -> bytes:
        return self._fernet.encrypt(verifier.encode("utf-8"))

    def decrypt(self, token: bytes) -> str | None:
        """The verifier, or ``None`` for a token written with another key."""
        try:
            return self._fernet.decrypt(token).decode("utf-8")
        except (InvalidToken, UnicodeDecodeError):
            return None

    def digest(self, verifier: str) -> str:
        """The lookup key of a verifier (an HMAC: the table never holds the secret in clear)."""
        return hmac.new(self._hash_key, verifier.encode("utf-8"), hashlib.sha256).hexdigest()

    def check_key(self, db: Database) -> None:
        """Refuse a key that is not the one the verifiers were encrypted with (changing nothing).

        Without this, a wrong key would silently make every verifier unusable (every event 401).
        A database written before this check existed has no check value; its verifiers decide.

        Raises:
            StoreError: the key does not decrypt this database.
        """
        with db.tx():
            stored = db.value("SELECT value FROM meta WHERE key = ?", (KEY_CHECK,))
            if stored is None:
                samples = db.all("SELECT verifier_enc FROM verifiers LIMIT 20")
                if samples and all(self.decrypt(bytes(r["verifier_enc"])) is None for r in samples):
                    raise StoreError(self._wrong_key_message(db))
                stored = self._fernet.encrypt(KEY_CHECK.encode()).decode("ascii")
                db.run(
                    "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING",
                    (KEY_CHECK, stored),
                )
                stored = db.value("SELECT value FROM meta WHERE key = ?", (KEY_CHECK,))  # a racing replica's
            if self.decrypt(str(stored).encode("ascii")) is None:
                raise StoreError(self._wrong_key_message(db))

    @staticmethod
    def _wrong_key_message(db: Database) -> str:
        return (
            f"token_encryption_key does not decrypt the queue database {db.location}: it is not the key "
            f"the database was created with (nothing was changed); use that key, or {db.reset_hint()}"
        )


class VerifierRepository:
    """The ``verifiers`` table."""

    def __init__(self, db: Database, cipher: VerifierCipher) -> None:
        self.db = db
        self.cipher = cipher

    def add_verifier(self, account_id: str, callback_id: str, verifier: str) -> tuple[int, str]:
        """Store a verifier (encrypted) as ``pending``; idempotent. Returns ``(id, status)``.

        Raises:
            StoreError: too many unconfirmed verifiers for the account (a flood of forged deliveries).
        """
        digest = self.cipher.digest(verifier)
        now = time.time()
        with self.db.tx():
            existing = self.db.one(
                "SELECT id, status FROM verifiers WHERE account_id = ? AND callback_id = ? AND verifier_hash = ?",
                (account_id, callback_id, digest),
            )
            if existing is not None:
                if existing["status"] == "failed":
                    self.db.run(
                        "UPDATE verifiers SET status = 'pending', attempts = 0, next_attempt_at = ? WHERE id = ?",
                        (now, existing["id"]),
                    )
                    return int(existing["id"]), "pending"
                return int(existing["id"]), str(existing["status"])
            waiting = self.db.value(
                "SELECT count(*) AS n FROM verifiers WHERE account_id = ? AND status = 'pending'",
                (account_id,),
            )
            if int(waiting) >= MAX_PENDING_VERIFIERS_PER_ACCOUNT:
                raise StoreError("too many unconfirmed verifiers for this account")
            # forged deliveries end up 'rejected'; keep only the latest of those
            self.db.run(
                "DELETE FROM verifiers WHERE status = 'rejected' AND id NOT IN"
                " (SELECT id FROM verifiers WHERE status = 'rejected' ORDER BY id DESC LIMIT ?)",
                (KEEP_REJECTED,),
            )
            verifier_id = self.db.value(
                "INSERT INTO verifiers (account_id, callback_id, verifier_hash, verifier_enc, status,"
                " next_attempt_at, created_ts) VALUES (?, ?, ?, ?, 'pending', ?, ?) RETURNING id",
                (account_id, callback_id, digest, self.cipher.encrypt(verifier), now, now),
            )
            return int(verifier_id), "pending"

    def _decrypted(self, rows: list[Row]) -> list[StoredVerifier]:
        """Rows written with another key are unusable and left out."""
        out: list[StoredVerifier] = []
        for row in rows:
            verifier = self.cipher.decrypt(bytes(row["verifier_enc"]))
            if verifier is not None:
                out.append(
                    StoredVerifier(
                        id=row["id"],
                        account_id=row["account_id"],
                        callback_id=row["callback_id"],
                        verifier=verifier,
                        status=row["status"],
                        attempts=row["attempts"],
                    )
                )
        return out

    def verified_verifiers(self) -> dict[str, list[str]]:
        """``{account_id: [verifier, ...]}`` of every verified callback (decrypted, for the app)."""
        out: dict[str, list[str]] = {}
        for stored in self.verifiers("verified"):
            out.setdefault(stored.account_id, []).append(stored.verifier)
        return out

    def verifiers(self, status: str | None = None) -> list[StoredVerifier]:
        if status:
            rows = self.db.all("SELECT * FROM verifiers WHERE status = ? ORDER BY id", (status,))
        else:
            rows = self.db.all("SELECT * FROM verifiers ORDER BY id")
        return self._decrypted(rows)

    def due_verifications(self, *, now: float | None = None) -> list[StoredVerifier]:
        """Pending verifiers whose verify PUT is due."""
        now = time.time() if now is None else now
        rows = self.db.all(
            "SELECT * FROM verifiers WHERE status = 'pending' AND next_attempt_at <= ? ORDER BY id", (now,)
        )
        return self._decrypted(rows)

    def next_verification_due(self) -> float | None:
        due = self.db.value("SELECT min(next_attempt_at) AS due FROM verifiers WHERE status = 'pending'")
        return None if due is None else float(due)

    def mark_verifier(
        self, verifier_id: int, status: str, *, error: str | None = None, retry_in: float | None = None
    ) -> None:
        """Record the verify PUT's outcome; a newly verified verifier supersedes its callback's older ones."""
        now = time.time()
        with self.db.tx():
            row = self.db.one("SELECT * FROM verifiers WHERE id = ?", (verifier_id,))
            if row is None:
                return
            if status == "pending":
                self.db.run(
                    "UPDATE verifiers SET attempts = attempts + 1, next_attempt_at = ?, last_error = ? WHERE id = ?",
                    (now + (retry_in or 0.0), error, verifier_id),
                )
                return
            self.db.run(
                "UPDATE verifiers SET status = ?, last_error = ?, attempts = attempts + 1,"
                " verified_ts = coalesce(?, verified_ts) WHERE id = ?",
                (status, error, now if status == "verified" else None, verifier_id),
            )
            if status == "verified":
                self.db.run(
                    "UPDATE verifiers SET status = 'superseded' WHERE account_id = ? AND callback_id = ?"
                    " AND id != ? AND status IN ('verified', 'pending')",
                    (row["account_id"], row["callback_id"], verifier_id),
                )

    def verifier_summary(self) -> dict[str, dict[str, int]]:
        """``{account_id: {status: count}}``."""
        rows = self.db.all(
            "SELECT account_id, status, count(*) AS n FROM verifiers GROUP BY account_id, status"
        )
        out: dict[str, dict[str, int]] = {}
        for row in rows:
            out.setdefault(row["account_id"], {})[row["status"]] = int(row["n"])
        return out
