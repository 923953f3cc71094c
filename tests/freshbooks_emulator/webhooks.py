"""Webhook callbacks: registration, verification handshake, signed event delivery (§7).

Signature (``X-FreshBooks-Hmac-SHA256``): base64(HMAC-SHA256(key=verifier,
msg=json.dumps({field: str(value)} in body order)))  with Python's default separators.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
import secrets
import threading
import urllib.parse
from datetime import UTC, datetime

from .issued_secrets import record as record_secret


def sign_webhook(fields, verifier: str) -> str:
    """fields: list of (key, value) pairs in body order, or a dict (insertion order)."""
    items = fields.items() if isinstance(fields, dict) else fields
    msg = dict((k, str(v)) for k, v in items)
    dig = hmac.new(
        verifier.encode("utf-8"), msg=json.dumps(msg).encode("utf-8"), digestmod=hashlib.sha256
    ).digest()
    return record_secret("webhook_signature", base64.b64encode(dig).decode())


_ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def new_verifier() -> str:
    return record_secret("callback_verifier", "".join(secrets.choice(_ALNUM) for _ in range(33)))


def event_matches(subscribed: str, event: str) -> bool:
    """A subscription to a parent name ("invoice") matches its children ("invoice.create")."""
    return event == subscribed or event.startswith(subscribed + ".")


class Callbacks:
    def __init__(self, emu):
        self.emu = emu
        self.lock = threading.RLock()
        self.items: dict[int, dict] = {}  # callbackid -> callback (internal)
        self.next_id = 2001
        self.deliveries: list[dict] = []  # log of every POST the emulator made
        self.timeout = 10.0
        self.verification_name = "callback.verify"  # UNCONFIRMED (§7.2)
        self.sign_verification = False  # UNCONFIRMED whether FreshBooks signs it
        self.threads: list[threading.Thread] = []

    # -- registry -------------------------------------------------------------------------
    def create(self, account_id: str, event: str, uri: str, send_verification: bool = True) -> dict:
        with self.lock:
            cid = self.next_id
            self.next_id += 1
            cb = {
                "callbackid": cid,
                "event": event,
                "uri": uri,
                "verified": False,
                "verifier": new_verifier(),
                "account_id": account_id,
                "updated_at": self.emu.now(),
            }
            self.items[cid] = cb
        if send_verification:
            self.send_verification(cid)
        return cb

    def get(self, account_id: str, cid: int):
        cb = self.items.get(cid)
        if cb is None or cb["account_id"] != account_id:
            return None
        return cb

    def list(self, account_id: str, event: str | None = None) -> list[dict]:
        with self.lock:
            out = [cb for cid, cb in sorted(self.items.items()) if cb["account_id"] == account_id]
        if event:
            # "matches event and parent event"
            out = [cb for cb in out if event_matches(cb["event"], event) or event_matches(event, cb["event"])]
        return out

    def delete(self, account_id: str, cid: int) -> bool:
        with self.lock:
            cb = self.get(account_id, cid)
            if cb is None:
                return False
            del self.items[cid]
            return True

    def verify(self, account_id: str, cid: int, verifier: str) -> bool:
        with self.lock:
            cb = self.get(account_id, cid)
            if cb is None or not secrets.compare_digest(cb["verifier"], str(verifier)):
                return False
            cb["verified"] = True
            cb["updated_at"] = self.emu.now()
            return True

    @staticmethod
    def public(cb: dict) -> dict:
        return {
            "callbackid": cb["callbackid"],
            "event": cb["event"],
            "uri": cb["uri"],
            "verified": cb["verified"],
            "updated_at": cb["updated_at"],
        }

    # -- HTTP out -------------------------------------------------------------------------
    def _fields(self, account_id, name, object_id, user_id=1):
        account = self.emu.account(account_id)
        return [
            ("name", name),
            ("object_id", str(object_id)),
            ("account_id", account_id),
            ("business_id", str(account["business_id"])),
            ("identity_id", str(self.emu.identity["identity_id"])),
            ("user_id", str(user_id)),
        ]

    def post(self, uri: str, fields: list, signature: str | None, kind: str, callbackid=None) -> int | None:
        body = urllib.parse.urlencode(fields).encode()
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "User-Agent": "FreshBooks-Webhooks-Emulator/1.0",
        }
        if signature is not None:
            headers["X-FreshBooks-Hmac-SHA256"] = signature
        status, error = None, None
        try:
            u = urllib.parse.urlsplit(uri)
            conn_cls = http.client.HTTPSConnection if u.scheme == "https" else http.client.HTTPConnection
            conn = conn_cls(u.hostname, u.port, timeout=self.timeout)
            try:
                path = (u.path or "/") + (f"?{u.query}" if u.query else "")
                conn.request("POST", path, body=body, headers=headers)  # header case preserved
                resp = conn.getresponse()
                resp.read()
                status = resp.status
            finally:
                conn.close()
        except Exception as e:  # noqa: BLE001 - any failure (refused, timeout, bad answer) is recorded, never raised
            error = repr(e)
        with self.lock:
            self.deliveries.append(
                {
                    "kind": kind,
                    "uri": uri,
                    "fields": fields,
                    "signature": signature,
                    "status": status,
                    "error": error,
                    "callbackid": callbackid,
                    "at": datetime.now(UTC),
                }
            )
        return status

    def send_verification(self, cid: int, background: bool = True):
        cb = self.items.get(cid)
        if cb is None:
            return
        fields = self._fields(cb["account_id"], self.verification_name, cid)
        fields.insert(2, ("verifier", cb["verifier"]))
        sig = sign_webhook(fields, cb["verifier"]) if self.sign_verification else None
        if background:
            th = threading.Thread(
                target=self.post, args=(cb["uri"], fields, sig, "verification", cid), daemon=True
            )
            th.start()
            self.threads.append(th)
        else:
            self.post(cb["uri"], fields, sig, "verification", cid)

    def deliver(self, account_id: str, name: str, object_id, url: str | None = None, user_id=1) -> list:
        """POST a signed event to every verified matching callback; returns HTTP statuses
        (None for a connection error)."""
        with self.lock:
            targets = [
                cb
                for cb in self.items.values()
                if cb["account_id"] == account_id
                and cb["verified"]
                and event_matches(cb["event"], name)
                and (url is None or cb["uri"] == url)
            ]
        statuses = []
        for cb in targets:
            fields = self._fields(account_id, name, object_id, user_id)
            statuses.append(
                self.post(cb["uri"], fields, sign_webhook(fields, cb["verifier"]), "event", cb["callbackid"])
            )
        return statuses

    def join(self, timeout: float = 5.0) -> None:
        """Wait for background verification/auto-delivery POSTs to finish."""
        for th in list(self.threads):
            th.join(timeout)
        self.threads = [t for t in self.threads if t.is_alive()]
