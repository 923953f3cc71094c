"""FreshBooksEmulator: the object tests drive (see package docstring for the API)."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta

from . import reports as REPORTS
from . import seed as SEED
from . import streams as S
from .faults import Faults
from .oauth import OAuthServer
from .render import as_utc
from .server import Server, make_handler
from .store import Store
from .webhooks import Callbacks, sign_webhook

UTC = UTC

SETTINGS = (
    "access_token_ttl",
    "token_response_delay",
    "filter_day_zone",
    "honour_updated_filter",
    "delete_bumps_updated",
    "auto_deliver",
    "bill_timestamps_utc",
    "refresh_keeps_created_at",
    "ignore_updated_filter_streams",
    "omit_fields",
)


class FreshBooksEmulator:
    def __init__(
        self,
        seed: str = "small",
        *,
        now: datetime | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        client_id: str = "test-client-id",
        client_secret: str = "test-client-secret",
        redirect_uri: str = "https://localhost/callback",
    ):
        self.seed = seed
        self.host, self.port = host, port
        self.client_id, self.client_secret, self.redirect_uri = client_id, client_secret, redirect_uri
        self._frozen: datetime | None = as_utc(now) if now else None
        self._offset = timedelta(0)
        self._clock_lock = threading.Lock()
        self.identity = dict(SEED.IDENTITY)
        self._accounts = [dict(a) for a in SEED.ACCOUNTS]
        # behaviour switches
        self.token_response_delay = 0.0
        self.filter_day_zone = "US/Eastern"
        self.honour_updated_filter = True
        self.ignore_updated_filter_streams: set = set()
        # {stream: [field, ...]}: fields the API leaves out of that stream's records (the documented
        # credit-note models show no `updated`); filters still apply to the hidden value
        self.omit_fields: dict = {}
        self.delete_bumps_updated = True
        self.auto_deliver = False
        # bills / bill vendors created_at/updated_at: naive UTC, as freshbooks-sdk 1.3.0 models.py
        # (ACCOUNTING_UTC_DATE_FIELDS) reads them; False renders them US/Eastern (the Node SDK's reading)
        self.bill_timestamps_utc = True
        # parts
        self.faults = Faults()
        self.oauth = OAuthServer(client_id, client_secret, redirect_uri, self.identity["identity_id"])
        self.webhooks = Callbacks(self)
        self.store = Store(self)
        self._log_lock = threading.Lock()
        self._request_log: list = []
        self._server = None
        self._thread = None
        self.url = None
        self.seed_info = SEED.seed_data(self, seed)

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> FreshBooksEmulator:
        if self._server is not None:
            return self
        self._server = Server((self.host, self.port), make_handler(self))
        self.port = self._server.server_address[1]
        self.url = f"http://{self.host}:{self.port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="freshbooks-emulator",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
        self._server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- settings -------------------------------------------------------------------------
    @property
    def access_token_ttl(self) -> int:
        return self.oauth.access_token_ttl

    @access_token_ttl.setter
    def access_token_ttl(self, v: int) -> None:
        self.oauth.access_token_ttl = v

    @property
    def refresh_keeps_created_at(self) -> bool:
        return self.oauth.refresh_keeps_created_at

    @refresh_keeps_created_at.setter
    def refresh_keeps_created_at(self, v: bool) -> None:
        self.oauth.refresh_keeps_created_at = bool(v)

    def configure(self, **kw) -> None:
        for k, v in kw.items():
            if k not in SETTINGS:
                raise KeyError(f"unknown setting {k!r}")
            if k == "ignore_updated_filter_streams":
                v = set(v or ())
            setattr(self, k, v)

    def settings(self) -> dict:
        out = {k: getattr(self, k) for k in SETTINGS}
        out["ignore_updated_filter_streams"] = sorted(out["ignore_updated_filter_streams"])
        return out

    def field_overrides(self, spec: S.StreamSpec) -> dict:
        if self.bill_timestamps_utc and spec.name in ("bills", "bill_vendors"):
            return {"created_at": S.UTC_NAIVE, "updated_at": S.UTC_NAIVE}
        return {}

    # -- clock ----------------------------------------------------------------------------
    def now(self) -> datetime:
        with self._clock_lock:
            if self._frozen is not None:
                return self._frozen
            return datetime.now(UTC) + self._offset

    def set_clock(self, dt: datetime | None) -> None:
        """Freeze the data clock at dt (aware or naive-UTC); None = back to real time."""
        with self._clock_lock:
            self._frozen = as_utc(dt) if dt is not None else None
            self._offset = timedelta(0)

    def advance(self, seconds: float) -> datetime:
        with self._clock_lock:
            if self._frozen is not None:
                self._frozen += timedelta(seconds=seconds)
            else:
                self._offset += timedelta(seconds=seconds)
        return self.now()

    # -- accounts / identity --------------------------------------------------------------
    @property
    def accounts(self) -> list[dict]:
        return [
            {
                "account_id": a["account_id"],
                "business_id": a["business_id"],
                "business_uuid": a["business_uuid"],
                "name": a["name"],
            }
            for a in self._accounts
        ]

    def add_account(
        self, account_id: str, business_id: int, name: str, currency: str = "USD", alt_currency: str = "CAD"
    ) -> dict:
        """One more accounting account the identity owns (no records: fill it with seed_bulk/create)."""
        if self.account(account_id, strict=False) is not None or self.account_by_business(business_id):
            raise ValueError(f"account {account_id} / business {business_id} exists")
        self._accounts.append(
            {
                "account_id": account_id,
                "business_id": int(business_id),
                "business_uuid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"fb-emulator/{account_id}")),
                "name": name,
                "currency": currency,
                "alt_currency": alt_currency,
                "date_format": "mm/dd/yyyy",
                "timezone": "America/New_York",
            }
        )
        return self.accounts[-1]

    def account(self, account_id: str, strict: bool = True):
        for a in self._accounts:
            if a["account_id"] == account_id:
                return a
        if strict:
            raise KeyError(f"unknown account_id {account_id!r}")
        return None

    def account_by_business(self, business_id: int):
        return next((a for a in self._accounts if a["business_id"] == int(business_id)), None)

    def account_by_uuid(self, business_uuid: str):
        return next((a for a in self._accounts if a["business_uuid"] == business_uuid), None)

    def users_me(self) -> dict:
        ident = self.identity
        memberships, roles, perms, subs, groups = [], [], {}, {}, []
        for i, a in enumerate(self._accounts):
            memberships.append(
                {
                    "id": 140130 + i,
                    "role": "owner",
                    "unacknowledged_change": False,
                    "fasttrack_token": None,
                    "business": {
                        "id": a["business_id"],
                        "business_uuid": a["business_uuid"],
                        "name": a["name"],
                        "account_id": a["account_id"],
                        "date_format": a["date_format"],
                        "timezone": a["timezone"],
                        "active": True,
                        "address": {
                            "id": 9100 + i,
                            "street": "100 King St W",
                            "city": "Toronto",
                            "province": "Ontario",
                            "country": "Canada",
                            "postal_code": "M5X 1A9",
                        },
                        "phone_number": None,
                        "business_clients": [],
                    },
                }
            )
            roles.append(
                {
                    "id": 770 + i,
                    "role": "admin",
                    "systemid": 88000 + i,
                    "userid": 1,
                    "created_at": "2023-01-05T15:04:05Z",
                    "links": {"destroy": f"/api/v1/users/role/{770 + i}"},
                    "accountid": a["account_id"],
                }
            )
            perms[a["account_id"]] = {"can_edit": True}
            subs[a["account_id"]] = "active"
            groups.append(
                {
                    "id": 660 + i,
                    "group_id": 550 + i,
                    "role": "owner",
                    "identity_id": ident["identity_id"],
                    "identity_uuid": ident["identity_uuid"],
                    "business_id": a["business_id"],
                    "active": True,
                }
            )
        # a client-only membership of someone else's business: no account_id
        memberships.append(
            {
                "id": 140199,
                "role": "client",
                "unacknowledged_change": False,
                "fasttrack_token": None,
                "business": {
                    "id": 4399999,
                    "business_uuid": "c4d2e6f8-1a3b-4c5d-8e7f-90a1b2c3d4e5",
                    "name": "Some Vendor I Buy From",
                    "account_id": None,
                    "date_format": "mm/dd/yyyy",
                    "active": True,
                    "address": None,
                    "phone_number": None,
                    "business_clients": [],
                },
            }
        )
        return {
            "id": ident["id"],
            "identity_id": ident["identity_id"],
            "identity_uuid": ident["identity_uuid"],
            "first_name": ident["first_name"],
            "last_name": ident["last_name"],
            "email": ident["email"],
            "language": "en",
            "confirmed_at": "2023-01-05T15:04:05Z",
            "created_at": "2023-01-05T15:00:00Z",
            "unconfirmed_email": None,
            "setup_complete": True,
            "phone_numbers": [],
            "addresses": [],
            "profile": {
                "setup_complete": True,
                "first_name": ident["first_name"],
                "last_name": ident["last_name"],
                "phone_number": None,
                "address": None,
                "professions": [],
            },
            "profession": {},
            "links": {"me": "/service/auth/api/v1/users/me", "roles": "/service/auth/api/v1/users/role"},
            "permissions": perms,
            "groups": groups,
            "subscription_statuses": subs,
            "integrations": {},
            "business_memberships": memberships,
            "identity_origin": "magnum",
            "roles": roles,
        }

    # -- OAuth helpers --------------------------------------------------------------------
    def issue_grant(self, scope: str | None = None) -> dict:
        """As if a user had authorized the app: a fresh grant's token response."""
        return self.oauth.new_grant(self.client_id, scope)

    def revoke_grant(self, grant_id: str | None = None) -> None:
        self.oauth.revoke_grant(grant_id)

    def expire_access_tokens(self) -> None:
        self.oauth.expire_access_tokens()

    # -- data -----------------------------------------------------------------------------
    @staticmethod
    def spec(stream: str) -> S.StreamSpec:
        return S.spec(stream)

    def create(self, stream: str, account_id: str, **fields) -> dict:
        return self.store.create(stream, account_id, fields)

    def update(self, stream: str, account_id: str, id, **fields) -> dict:
        return self.store.update(stream, account_id, id, fields)

    def delete(self, stream: str, account_id: str, id):
        return self.store.delete(stream, account_id, id)

    def archive(self, stream: str, account_id: str, id):
        return self.store.archive(stream, account_id, id)

    def get(self, stream: str, account_id: str, id):
        """Internal form of one record (None if absent)."""
        return self.store.get(stream, account_id, id)

    def seed_bulk(self, stream: str, n: int, account_id: str | None = None, **kw) -> list:
        return self.store.seed_bulk(stream, n, account_id or self._accounts[0]["account_id"], **kw)

    def render_one(self, stream: str, account_id: str, id, include=frozenset()) -> dict:
        return self.store.render_many(stream, account_id, [id], include)[0]

    def truth(self, stream: str, account_id: str | None = None, include=("lines",)) -> list[dict]:
        """API-shaped records (list rendering) including deleted ones, all pages, id order.
        Invoices, credit notes, estimates and invoice profiles include their lines (include[]=lines).
        account_id=None: every account, one after the other.  "invoice_lines" gives the lines
        of every invoice (each line carries its invoiceid)."""
        if stream in REPORTS.REPORT_STREAMS:  # one computed report per account (today's)
            accts = [account_id] if account_id else [a["account_id"] for a in self._accounts]
            return [REPORTS.snapshot(self, acct, stream) for acct in accts]
        if stream in S.LINE_RIDERS:  # "invoice_lines", "estimate_lines", ...
            return [
                line
                for doc in self.truth(S.LINE_RIDERS[stream], account_id)
                for line in doc.get("lines") or []
            ]
        accts = [account_id] if account_id else [a["account_id"] for a in self._accounts]
        out = []
        for acct in accts:
            pks = self.store.query(stream, acct, vis="all")
            out.extend(self.store.render_many(stream, acct, pks, frozenset(include or ())))
        return out

    # -- request log ----------------------------------------------------------------------
    def log_request(self, method, path, status) -> None:
        with self._log_lock:
            self._request_log.append((method, path, status))

    @property
    def request_log(self) -> list:
        with self._log_lock:
            return list(self._request_log)

    def clear_log(self) -> None:
        with self._log_lock:
            self._request_log.clear()

    # -- webhooks -------------------------------------------------------------------------
    @property
    def callbacks(self) -> list[dict]:
        """Registered callbacks (internal form: callbackid, event, uri, verified, verifier,
        account_id, updated_at)."""
        with self.webhooks.lock:
            return [dict(cb) for _, cb in sorted(self.webhooks.items.items())]

    @staticmethod
    def sign_webhook(fields, verifier: str) -> str:
        return sign_webhook(fields, verifier)

    @property
    def deliveries(self) -> list[dict]:
        """Every POST the emulator made to a callback uri (verification and events)."""
        with self.webhooks.lock:
            return list(self.webhooks.deliveries)

    def deliver_event(self, account_id: str, name: str, object_id, url: str | None = None) -> list:
        return self.webhooks.deliver(account_id, name, object_id, url)

    def record_changed(self, stream: str, account_id: str, pk, action: str) -> None:
        if not self.auto_deliver:
            return
        ev = S.spec(stream).event
        if not ev:
            return
        th = threading.Thread(
            target=self.webhooks.deliver, args=(account_id, f"{ev}.{action}", pk), daemon=True
        )
        th.start()
        self.webhooks.threads.append(th)
