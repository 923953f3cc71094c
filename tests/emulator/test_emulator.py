"""Tests of the FreshBooks emulator itself (tests/freshbooks_emulator)."""

from __future__ import annotations

import sys
import threading
import time
import urllib.parse
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

TESTS_DIR = Path(__file__).resolve().parents[1]
if str(TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(TESTS_DIR))

from freshbooks_emulator import FreshBooksEmulator, sign_webhook  # noqa: E402

UTC = UTC


# ------------------------------------------------------------------------------------------
# fixtures / helpers
# ------------------------------------------------------------------------------------------


@pytest.fixture
def emu():
    e = FreshBooksEmulator(seed="small").start()
    yield e
    e.stop()


@pytest.fixture
def empty_emu():
    e = FreshBooksEmulator(seed="empty").start()
    yield e
    e.stop()


def session(emu, grant=None):
    grant = grant or emu.issue_grant()
    s = requests.Session()
    s.headers["Authorization"] = f"Bearer {grant['access_token']}"
    return s


def acct_url(emu, path, account=0):
    return f"{emu.url}/accounting/account/{emu.accounts[account]['account_id']}/{path}"


def refresh(emu, rt, **extra):
    data = {
        "grant_type": "refresh_token",
        "refresh_token": rt,
        "client_id": emu.client_id,
        "client_secret": emu.client_secret,
        "redirect_uri": emu.redirect_uri,
    }
    data.update(extra)
    return requests.post(f"{emu.url}/auth/oauth/token", data=data)


class Receiver:
    """Tiny local webhook receiver collecting form posts."""

    def __init__(self, status=200):
        self.posts = []
        self.event = threading.Event()
        outer = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                outer.posts.append(
                    {
                        "fields": urllib.parse.parse_qsl(body, keep_blank_values=True),
                        "headers": dict(self.headers),
                        "raw": body,
                    }
                )
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()
                outer.event.set()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/webhooks/freshbooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait(self, n=1, timeout=5):
        end = time.time() + timeout
        while len(self.posts) < n and time.time() < end:
            time.sleep(0.02)
        return len(self.posts) >= n

    def close(self):
        self.server.shutdown()
        self.server.server_close()


# ------------------------------------------------------------------------------------------
# webhook signature
# ------------------------------------------------------------------------------------------


def test_signature_worked_example():
    body = (
        "name=invoice.create&object_id=1234567&account_id=6BApk&business_id=6543&identity_id=1234&user_id=1"
    )
    fields = urllib.parse.parse_qsl(body)
    sig = sign_webhook(fields, "scADVVi5QuKuj5qTjVkbJNYQe7V7USpGd")
    assert sig == "/S03vyYmI7CekM4YXBHUhs9o5rnMtqGLrW3aA8S9gPc="
    assert FreshBooksEmulator.sign_webhook(dict(fields), "scADVVi5QuKuj5qTjVkbJNYQe7V7USpGd") == sig


# ------------------------------------------------------------------------------------------
# OAuth
# ------------------------------------------------------------------------------------------


def test_refresh_rotates_and_reuse_is_invalid_grant(emu):
    g = emu.issue_grant()
    assert len(g["refresh_token"]) == 64 and int(g["refresh_token"], 16) >= 0
    r1 = refresh(emu, g["refresh_token"])
    assert r1.status_code == 200
    body = r1.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 43200
    assert isinstance(body["created_at"], int) and body["scope"]
    assert body["refresh_token"] != g["refresh_token"]
    # reuse of the spent token
    r2 = refresh(emu, g["refresh_token"])
    assert r2.status_code == 400 and r2.json()["error"] == "invalid_grant"
    assert r2.json()["error_description"]
    # the new one works once; JSON body accepted too; redirect_uri optional
    r3 = requests.post(
        f"{emu.url}/auth/oauth/token",
        json={
            "grant_type": "refresh_token",
            "refresh_token": body["refresh_token"],
            "client_id": emu.client_id,
            "client_secret": emu.client_secret,
        },
    )
    assert r3.status_code == 200
    s = session(emu, r3.json())
    assert s.get(f"{emu.url}/auth/api/v1/users/me").status_code == 200


def test_bad_client_secret_is_invalid_client(emu):
    g = emu.issue_grant()
    r = refresh(emu, g["refresh_token"], client_secret="nope")
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"
    # refresh token was not consumed by the failed attempt
    assert refresh(emu, g["refresh_token"]).status_code == 200


def test_expired_access_token_401(emu):
    emu.access_token_ttl = 1
    g = emu.issue_grant()
    assert g["expires_in"] == 1
    s = session(emu, g)
    assert s.get(acct_url(emu, "users/clients/clients")).status_code in (200, 404)
    time.sleep(1.1)
    r = s.get(acct_url(emu, "users/clients"))
    assert r.status_code == 401
    assert r.json() == {
        "error": "unauthenticated",
        "error_description": "This action requires authentication to continue.",
    }
    # forced expiry helper
    emu.access_token_ttl = 3600
    s2 = session(emu)
    assert s2.get(acct_url(emu, "users/clients")).status_code == 200
    emu.expire_access_tokens()
    assert s2.get(acct_url(emu, "users/clients")).status_code == 401


def test_missing_or_garbage_token_401(emu):
    assert requests.get(acct_url(emu, "users/clients")).status_code == 401
    r = requests.get(f"{emu.url}/auth/api/v1/users/me", headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401 and r.json()["error"] == "unauthenticated"


def test_revoke_grant(emu):
    g = emu.issue_grant()
    s = session(emu, g)
    assert s.get(f"{emu.url}/auth/api/v1/users/me").status_code == 200
    emu.revoke_grant()
    assert s.get(f"{emu.url}/auth/api/v1/users/me").status_code == 401
    r = refresh(emu, g["refresh_token"])
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"


def test_revoke_endpoint(emu):
    g = emu.issue_grant()
    r = requests.post(
        f"{emu.url}/auth/oauth/revoke",
        data={"client_id": emu.client_id, "client_secret": emu.client_secret, "token": g["access_token"]},
    )
    assert r.status_code == 200 and r.json() == {}
    assert session(emu, g).get(f"{emu.url}/auth/api/v1/users/me").status_code == 401


def test_authorize_redirect_and_code_exchange(emu):
    r = requests.get(
        f"{emu.url}/oauth/authorize",
        params={
            "client_id": emu.client_id,
            "response_type": "code",
            "redirect_uri": emu.redirect_uri,
            "state": "xyz 123",
            "scope": "user:profile:read user:clients:read",
        },
        allow_redirects=False,
    )
    assert r.status_code == 302
    loc = urllib.parse.urlsplit(r.headers["Location"])
    assert f"{loc.scheme}://{loc.netloc}{loc.path}" == emu.redirect_uri
    q = dict(urllib.parse.parse_qsl(loc.query))
    assert q["state"] == "xyz 123" and q["code"]

    def exchange_code() -> requests.Response:
        return requests.post(
            f"{emu.url}/auth/oauth/token",
            data={
                "grant_type": "authorization_code",
                "code": q["code"],
                "client_id": emu.client_id,
                "client_secret": emu.client_secret,
                "redirect_uri": emu.redirect_uri,
            },
        )

    tok = exchange_code()
    assert tok.status_code == 200
    assert tok.json()["scope"] == "user:profile:read user:clients:read"
    # codes are single use
    again = exchange_code()
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    # bad redirect / unknown client -> 400 page
    bad = requests.get(
        f"{emu.url}/oauth/authorize",
        params={"client_id": emu.client_id, "response_type": "code", "redirect_uri": "https://evil/cb"},
        allow_redirects=False,
    )
    assert bad.status_code == 400
    assert (
        requests.get(
            f"{emu.url}/oauth/authorize",
            params={"client_id": "who", "response_type": "code", "redirect_uri": emu.redirect_uri},
            allow_redirects=False,
        ).status_code
        == 400
    )


def test_token_response_delay_rotates_first(emu):
    g = emu.issue_grant()
    emu.token_response_delay = 1.0
    results = {}

    def slow():
        results["r"] = refresh(emu, g["refresh_token"])

    th = threading.Thread(target=slow)
    th.start()
    time.sleep(0.3)
    # while the first refresh is still "in flight", its refresh token is already spent
    emu.token_response_delay = 0.0
    assert refresh(emu, g["refresh_token"]).status_code == 400
    th.join()
    assert results["r"].status_code == 200


# ------------------------------------------------------------------------------------------
# identity
# ------------------------------------------------------------------------------------------


def test_users_me_shape(emu):
    me = session(emu).get(f"{emu.url}/auth/api/v1/users/me").json()
    assert "result" not in me["response"]
    ms = me["response"]["business_memberships"]
    owners = [m for m in ms if m["role"] == "owner"]
    assert [m["business"]["account_id"] for m in owners] == [a["account_id"] for a in emu.accounts]
    assert [m["business"]["id"] for m in owners] == [a["business_id"] for a in emu.accounts]
    assert all(isinstance(m["business"]["id"], int) for m in owners)
    clients = [m for m in ms if m["role"] == "client"]
    assert clients and not clients[0]["business"].get("account_id")


# ------------------------------------------------------------------------------------------
# accounting envelope, paging, filters
# ------------------------------------------------------------------------------------------


def test_accounting_envelopes(emu):
    s = session(emu)
    res = s.get(acct_url(emu, "invoices/invoices")).json()["response"]["result"]
    assert set(res) == {"invoices", "page", "pages", "per_page", "total"}
    assert res["per_page"] == 15 and res["page"] == 1
    inv = res["invoices"][0]
    assert "lines" not in inv
    assert inv["id"] == inv["invoiceid"] and isinstance(inv["id"], int)
    assert set(inv["amount"]) == {"amount", "code"} and isinstance(inv["amount"]["amount"], str)
    withlines = s.get(acct_url(emu, "invoices/invoices"), params={"include[]": "lines"}).json()
    inv2 = withlines["response"]["result"]["invoices"][0]
    assert [line["lineid"] for line in inv2["lines"]] == list(range(1, len(inv2["lines"]) + 1))

    for i in withlines["response"]["result"]["invoices"]:
        assert Decimal(i["amount"]["amount"]) == sum(Decimal(line["amount"]["amount"]) for line in i["lines"])
        assert Decimal(i["outstanding"]["amount"]) == Decimal(i["amount"]["amount"]) - Decimal(
            i["paid"]["amount"]
        )
    one = s.get(acct_url(emu, f"invoices/invoices/{inv['id']}")).json()
    assert set(one["response"]["result"]) == {"invoice"}
    assert one["response"]["result"]["invoice"]["id"] == inv["id"]
    nf = s.get(acct_url(emu, "invoices/invoices/1"))
    assert nf.status_code == 404
    err = nf.json()["response"]["errors"][0]
    assert err["errno"] == 1012 and err["message"].endswith("not found.")
    # keys per stream
    for path, key, pk in [
        ("users/clients", "clients", "id"),
        ("payments/payments", "payments", "id"),
        ("expenses/expenses", "expenses", "id"),
        ("expenses/categories", "categories", "id"),
        ("bills/bills", "bills", "id"),
        ("bill_payments/bill_payments", "bill_payments", "id"),
        ("bill_vendors/bill_vendors", "bill_vendors", "vendorid"),
        ("items/items", "items", "id"),
        ("taxes/taxes", "taxes", "id"),
        ("credit_notes/credit_notes", "credit_notes", "id"),
        ("other_incomes/other_incomes", "other_income", "incomeid"),
        ("users/staffs", "staffs", "id"),
        ("journal_entries/journal_entry_details", "journal_entry_details", "id"),
    ]:
        r = s.get(acct_url(emu, path))
        assert r.status_code == 200, path
        items = r.json()["response"]["result"][key]
        assert items, path
        assert all(pk in it for it in items), path
    vendors = s.get(acct_url(emu, "bill_vendors/bill_vendors")).json()["response"]["result"]["bill_vendors"]
    assert "id" not in vendors[0]
    bill = s.get(acct_url(emu, "bills/bills")).json()["response"]["result"]["bills"][0]
    assert bill["lines"] and bill["vendor"]["vendorid"] == bill["vendorid"]


def test_bills_show_their_current_bill_payments_after_every_change(emu):
    """Bill payments nested in bills are cached per table version: each change shows at once."""
    acct = emu.accounts[0]["account_id"]
    s = session(emu)

    def nested() -> dict:
        bills = s.get(acct_url(emu, "bills/bills")).json()["response"]["result"]["bills"]
        return {b["id"]: sorted(bp["id"] for bp in b["bill_payments"]) for b in bills}

    def truth() -> dict:
        out: dict = {}
        for bp in emu.truth("bill_payments", acct):
            if bp["vis_state"] != 1:
                out.setdefault(bp["billid"], []).append(bp["id"])
        return {k: sorted(v) for k, v in out.items()}

    before = nested()
    assert {k: v for k, v in before.items() if v} == truth()
    bill_id = next(iter(before))
    paid = emu.create("bill_payments", acct, billid=bill_id, amount={"amount": "1.00", "code": "USD"})
    assert paid["id"] in nested()[bill_id]
    emu.update("bill_payments", acct, paid["id"], amount={"amount": "2.00", "code": "USD"})
    amounts = [
        bp["amount"]["amount"]
        for b in s.get(acct_url(emu, "bills/bills")).json()["response"]["result"]["bills"]
        for bp in b["bill_payments"]
        if bp["id"] == paid["id"]
    ]
    assert amounts == ["2.00"]
    emu.delete("bill_payments", acct, paid["id"])
    assert paid["id"] not in nested()[bill_id]
    assert {k: v for k, v in nested().items() if v} == truth()


def test_paging_cap_pages_and_past_end(emu, empty_emu):
    acct = emu.accounts[0]["account_id"]
    emu.seed_bulk("invoices", 250, acct)
    s = session(emu)
    total = len(emu.truth("invoices", acct))
    hidden = sum(1 for i in emu.truth("invoices", acct) if i["vis_state"] == 1)
    res = s.get(acct_url(emu, "invoices/invoices"), params={"per_page": 500}).json()["response"]["result"]
    assert res["per_page"] == 100 and len(res["invoices"]) == 100
    visible = total - hidden
    assert res["total"] == visible and res["pages"] == -(-visible // 100)
    p0 = s.get(acct_url(emu, "invoices/invoices"), params={"page": 0, "per_page": 10}).json()["response"][
        "result"
    ]
    p1 = s.get(acct_url(emu, "invoices/invoices"), params={"page": 1, "per_page": 10}).json()["response"][
        "result"
    ]
    assert p0["page"] == 1 and p0["invoices"] == p1["invoices"]
    past = s.get(acct_url(emu, "invoices/invoices"), params={"page": 99, "per_page": 100}).json()["response"][
        "result"
    ]
    assert past["invoices"] == [] and past["pages"] == res["pages"] and past["page"] == 99
    # walking all pages gives every visible id once, ascending
    ids, page = [], 1
    while True:
        r = s.get(acct_url(emu, "invoices/invoices"), params={"page": page, "per_page": 100}).json()[
            "response"
        ]["result"]
        ids += [i["id"] for i in r["invoices"]]
        if page >= r["pages"]:
            break
        page += 1
    assert ids == sorted(set(ids)) and len(ids) == visible
    # empty collection -> pages 0
    er = session(empty_emu).get(acct_url(empty_emu, "users/clients")).json()["response"]["result"]
    assert er == {"clients": [], "page": 1, "pages": 0, "per_page": 15, "total": 0}
    bad = s.get(acct_url(emu, "users/clients"), params={"page": "x"})
    assert bad.status_code == 400 and bad.json()["response"]["errors"][0]["errno"] == 1014


def test_vis_state_filter(emu):
    s = session(emu)
    acct = emu.accounts[0]["account_id"]
    deleted = emu.seed_info["deleted"]["clients"][acct]
    archived = emu.seed_info["archived"]["clients"][acct]

    def ids(**params):
        return {
            c["id"]
            for c in s.get(acct_url(emu, "users/clients"), params=params).json()["response"]["result"][
                "clients"
            ]
        }

    default = ids()
    assert not default & set(deleted) and set(archived) <= default
    assert ids(**{"search[vis_state]": 1}) == set(deleted)
    assert ids(**{"search[vis_state]": 2}) == set(archived)
    assert ids(**{"search[vis_state]": 0}) == default - set(archived)
    # single GET returns deleted ones with their vis_state
    one = s.get(acct_url(emu, f"users/clients/{deleted[0]}")).json()["response"]["result"]["client"]
    assert one["vis_state"] == 1
    # truth includes deleted
    assert set(deleted) <= {c["id"] for c in emu.truth("clients", acct)}


def test_delete_bumps_updated_switch(empty_emu):
    emu = empty_emu
    acct = emu.accounts[0]["account_id"]
    emu.set_clock(datetime(2026, 1, 5, 12, 0, tzinfo=UTC))
    c = emu.create("clients", acct, organization="Bump Co")
    emu.advance(3600)
    emu.delete("clients", acct, c["id"])
    t = next(x for x in emu.truth("clients", acct) if x["id"] == c["id"])
    assert t["vis_state"] == 1 and t["updated"] == "2026-01-05 08:00:00"
    emu.delete_bumps_updated = False
    c2 = emu.create("clients", acct)
    emu.advance(3600)
    emu.archive("clients", acct, c2["id"])
    t2 = next(x for x in emu.truth("clients", acct) if x["id"] == c2["id"])
    assert t2["vis_state"] == 2 and t2["updated"] == "2026-01-05 08:00:00"


def test_updated_min_day_filter_eastern_and_utc(empty_emu):
    emu = empty_emu
    acct = emu.accounts[0]["account_id"]
    # 2025-06-10 02:30Z == 2025-06-09 22:30 EDT
    emu.set_clock(datetime(2025, 6, 10, 2, 30, tzinfo=UTC))
    late = emu.create("clients", acct, organization="Late evening Eastern")
    emu.set_clock(datetime(2025, 6, 10, 14, 0, tzinfo=UTC))
    noon = emu.create("clients", acct, organization="Midday")
    emu.set_clock(datetime(2025, 6, 11, 3, 59, 59, tzinfo=UTC))  # 06-10 23:59:59 EDT
    night = emu.create("clients", acct, organization="Just before Eastern midnight")
    s = session(emu)

    def ids(**params):
        r = s.get(acct_url(emu, "users/clients"), params=params)
        assert r.status_code == 200, r.text
        return [c["id"] for c in r.json()["response"]["result"]["clients"]]

    assert ids(**{"search[updated_min]": "2025-06-10"}) == [noon["id"], night["id"]]
    assert ids(**{"search[updated_min]": "2025-06-09", "search[updated_max]": "2025-06-10"}) == [late["id"]]
    assert ids(**{"search[updated_max]": "2025-06-11"}) == [late["id"], noon["id"], night["id"]]
    emu.filter_day_zone = "UTC"
    assert ids(**{"search[updated_min]": "2025-06-10"}) == [late["id"], noon["id"], night["id"]]
    assert ids(**{"search[updated_min]": "2025-06-10", "search[updated_max]": "2025-06-11"}) == [
        late["id"],
        noon["id"],
    ]
    emu.honour_updated_filter = False
    assert len(ids(**{"search[updated_min]": "2030-01-01"})) == 3
    emu.honour_updated_filter = True
    bad = s.get(acct_url(emu, "users/clients"), params={"search[updated_min]": "yesterday"})
    assert bad.status_code == 400


def test_dst_records_render_eastern(emu):
    acct = emu.accounts[0]["account_id"]
    dst = emu.seed_info["dst"]
    clients = {c["id"]: c for c in emu.truth("clients", acct)}
    assert clients[dst["clients"]["dst_spring_before"]]["updated"] == "2025-03-09 01:59:30"
    assert clients[dst["clients"]["dst_spring_after"]]["updated"] == "2025-03-09 03:00:00"
    invoices = {i["id"]: i for i in emu.truth("invoices", acct)}
    a, b = invoices[dst["invoices"]["dst_fall_edt"]], invoices[dst["invoices"]["dst_fall_est"]]
    assert a["updated"] == b["updated"] == "2025-11-02 01:30:00"
    assert emu.get("invoices", acct, a["id"])["updated"] == datetime(2025, 11, 2, 5, 30, tzinfo=UTC)
    assert emu.get("invoices", acct, b["id"])["updated"] == datetime(2025, 11, 2, 6, 30, tzinfo=UTC)
    expenses = {e["id"]: e for e in emu.truth("expenses", acct)}
    assert expenses[dst["expenses"]["dst_fall_est"]]["updated"] == "2025-11-02 01:30:00"
    # client signup_date is naive UTC
    c = emu.get("clients", acct, dst["clients"]["dst_spring_after"])
    assert clients[c["id"]]["signup_date"] == c["signup_date"].strftime("%Y-%m-%d %H:%M:%S")


def test_seed_determinism_and_content():
    now = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    a = FreshBooksEmulator(seed="small", now=now)
    b = FreshBooksEmulator(seed="small", now=now)
    for stream in (
        "clients",
        "invoices",
        "payments",
        "expenses",
        "bills",
        "journal_entry_details",
        "chart_of_accounts",
        "time_entries",
        "projects",
    ):
        assert a.truth(stream) == b.truth(stream), stream
    codes = {i["currency_code"] for i in a.truth("invoices")}
    assert {"USD", "CAD"} <= codes
    nets = [i["net_paid_amount"]["amount"] for i in a.truth("invoices")]
    assert "7.60133524082021936099189318" in nets
    # payments reference invoices of the same account
    for acc in a.accounts:
        inv_ids = {i["id"] for i in a.truth("invoices", acc["account_id"])}
        for p in a.truth("payments", acc["account_id"]):
            assert p["invoiceid"] in inv_ids


def test_emulator_mutations_visible_over_http(emu):
    acct = emu.accounts[0]["account_id"]
    s = session(emu)
    inv = emu.create(
        "invoices",
        acct,
        lines=[{"name": "X", "qty": 2, "unit_cost": "10.05"}, {"name": "Y", "qty": "1", "unit_cost": "0.10"}],
    )
    got = s.get(acct_url(emu, f"invoices/invoices/{inv['id']}"), params={"include[]": "lines"}).json()
    i = got["response"]["result"]["invoice"]
    assert i["amount"]["amount"] == "20.20"
    assert [line["qty"] for line in i["lines"]] == ["2", "1"]
    emu.advance(5)
    emu.update("invoices", acct, inv["id"], notes="changed")
    i2 = s.get(acct_url(emu, f"invoices/invoices/{inv['id']}")).json()["response"]["result"]["invoice"]
    assert i2["notes"] == "changed" and i2["updated"] >= i["updated"]
    # taxes have no vis_state: delete is a hard delete
    tax = emu.truth("taxes", acct)[0]
    assert "vis_state" not in tax
    emu.delete("taxes", acct, tax["id"])
    assert s.get(acct_url(emu, f"taxes/taxes/{tax['id']}")).status_code == 404


# ------------------------------------------------------------------------------------------
# project family, ledger
# ------------------------------------------------------------------------------------------


def test_project_family(emu):
    s = session(emu)
    bid = emu.accounts[0]["business_id"]
    r = s.get(f"{emu.url}/projects/business/{bid}/projects").json()
    assert set(r) == {"projects", "meta"}
    assert {"total", "per_page", "page", "pages"} <= set(r["meta"]) and r["meta"]["per_page"] == 30
    p = r["projects"][0]
    assert "T" in p["updated_at"] and not p["updated_at"].endswith("Z")
    one = s.get(f"{emu.url}/projects/business/{bid}/project/{p['id']}").json()
    assert one["project"]["id"] == p["id"]
    assert s.get(f"{emu.url}/projects/business/{bid}/project/1").status_code == 404
    # updated_since bare param filters; search[updated_since] is ignored
    future = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert (
        s.get(f"{emu.url}/projects/business/{bid}/projects", params={"updated_since": future}).json()[
            "projects"
        ]
        == []
    )
    ign = s.get(f"{emu.url}/projects/business/{bid}/projects", params={"search[updated_since]": "notadate"})
    assert ign.status_code == 200 and len(ign.json()["projects"]) == len(r["projects"])
    bad = s.get(f"{emu.url}/timetracking/business/{bid}/time_entries", params={"updated_since": "notadate"})
    assert bad.status_code == 422
    assert bad.json() == {
        "errno": 2001,
        "error": {"updated_since": "Input should be a valid datetime or date, input is too short"},
    }
    # services
    sv = s.get(f"{emu.url}/comments/business/{bid}/services").json()
    assert sv["services"] and "meta" in sv
    assert s.get(f"{emu.url}/comments/business/{bid}/service/{sv['services'][0]['id']}").json()["service"]


def test_time_entries_team_and_deleted(emu):
    s = session(emu)
    acct, bid = emu.accounts[0]["account_id"], emu.accounts[0]["business_id"]
    url = f"{emu.url}/timetracking/business/{bid}/time_entries"
    mine = s.get(url).json()["time_entries"]
    team = s.get(url, params={"team": "true"}).json()["time_entries"]
    alld = s.get(url, params={"team": "true", "include_deleted": "true"}).json()["time_entries"]
    me = emu.identity["identity_id"]
    assert all(t["identity_id"] == me for t in mine)
    assert len(team) > len(mine)
    deleted = emu.seed_info["deleted"]["time_entries"][acct]
    assert {t["id"] for t in alld} - {t["id"] for t in team} == set(deleted)
    te = alld[0]
    assert te["started_at"].endswith("Z") and "updated_at" not in te
    one = s.get(f"{url}/{te['id']}").json()
    assert one["time_entry"]["id"] == te["id"]
    # updated_since filters on the hidden update time
    emu.advance(10)
    since = emu.now().strftime("%Y-%m-%dT%H:%M:%SZ")
    emu.advance(10)
    emu.update("time_entries", acct, te["id"], note="edited")
    got = s.get(url, params={"team": "true", "updated_since": since}).json()["time_entries"]
    assert [t["id"] for t in got] == [te["id"]]


def test_ledger_accounts(emu):
    s = session(emu)
    uuid = emu.accounts[0]["business_uuid"]
    r = s.get(f"{emu.url}/accounting/businesses/{uuid}/ledger_accounts/accounts").json()
    assert set(r) == {"data"} and r["data"]
    a = r["data"][0]
    for k in (
        "uuid",
        "name",
        "number",
        "description",
        "type",
        "sub_type",
        "parent_account",
        "sub_accounts",
        "auto_created",
        "state",
        "updated_at",
        "jea_id",
        "jesa_id",
    ):
        assert k in a
    assert isinstance(a["number"], str) and a["updated_at"].endswith("Z") and "." in a["updated_at"]
    one = s.get(f"{emu.url}/accounting/businesses/{uuid}/ledger_accounts/accounts/{a['uuid']}").json()
    assert one["data"]["uuid"] == a["uuid"]
    assert s.get(f"{emu.url}/accounting/businesses/{uuid}/ledger_accounts/accounts/nope").status_code == 404


# ------------------------------------------------------------------------------------------
# faults
# ------------------------------------------------------------------------------------------


def test_rate_limit_injection(emu):
    s = session(emu)
    emu.faults.rate_limit_every = 3
    statuses = [s.get(acct_url(emu, "users/clients")).status_code for _ in range(6)]
    assert statuses == [200, 200, 429, 200, 200, 429]
    r = None
    for _ in range(3):
        r = s.get(acct_url(emu, "users/clients"))
    assert r.status_code == 429 and r.headers["Retry-After"] == "0"
    assert r.json() == {"response": {"errors": [{"errno": 429, "message": "Rate limit exceeded."}]}}
    # the token endpoint is never rate limited
    emu.faults.rate_limit_every = 1
    assert refresh(emu, emu.issue_grant()["refresh_token"]).status_code == 200
    emu.faults.rate_limit_every = 0
    emu.faults.fail_next(2, 503)
    assert [s.get(acct_url(emu, "users/clients")).status_code for _ in range(3)] == [503, 503, 200]
    assert (
        "GET",
        f"/accounting/account/{emu.accounts[0]['account_id']}/users/clients",
        503,
    ) in emu.request_log


def test_concurrent_requests(emu):
    emu.faults.latency = 0.2
    s_grant = emu.issue_grant()
    out = []

    def hit():
        out.append(
            requests.get(
                acct_url(emu, "users/clients"), headers={"Authorization": f"Bearer {s_grant['access_token']}"}
            ).status_code
        )

    t0 = time.time()
    ths = [threading.Thread(target=hit) for _ in range(8)]
    [t.start() for t in ths]
    [t.join() for t in ths]
    assert out == [200] * 8
    assert time.time() - t0 < 1.2  # served in parallel


def test_hold_keeps_api_requests_waiting_until_released_but_not_the_token_endpoint(emu):
    grant = emu.issue_grant()
    emu.faults.configure(hold=True)
    statuses: list[int] = []
    th = threading.Thread(
        target=lambda: statuses.append(
            requests.get(
                acct_url(emu, "users/clients"),
                headers={"Authorization": f"Bearer {grant['access_token']}"},
                timeout=30,
            ).status_code
        )
    )
    th.start()
    time.sleep(0.5)
    assert statuses == [] and th.is_alive()  # held
    assert refresh(emu, grant["refresh_token"]).status_code == 200  # token endpoint not held
    emu.faults.configure(hold=False)
    th.join(10)
    assert statuses == [200]
    emu.faults.configure(hold=True, hold_seconds=0.2)  # a hold never outlasts hold_seconds
    t0 = time.monotonic()
    assert session(emu).get(acct_url(emu, "users/clients")).status_code == 200
    assert 0.2 <= time.monotonic() - t0 < 5
    emu.faults.hold = False  # the attribute and configure() are one switch
    assert emu.faults.state()["hold"] is False
    assert session(emu).get(acct_url(emu, "users/clients")).status_code == 200


# ------------------------------------------------------------------------------------------
# webhooks
# ------------------------------------------------------------------------------------------


def test_callback_verification_and_signed_delivery(emu):
    rcv = Receiver()
    try:
        s = session(emu)
        acct = emu.accounts[0]["account_id"]
        cb_url = f"{emu.url}/events/account/{acct}/events/callbacks"
        r = s.post(cb_url, json={"callback": {"event": "invoice", "uri": rcv.url}})
        assert r.status_code == 200
        cb = r.json()["response"]["result"]["callback"]
        assert cb["verified"] is False and isinstance(cb["callbackid"], int)
        assert rcv.wait(1)
        post = rcv.posts[0]
        fields = dict(post["fields"])
        assert fields["object_id"] == str(cb["callbackid"]) and fields["verifier"]
        assert fields["account_id"] == acct
        assert post["headers"]["Content-Type"] == "application/x-www-form-urlencoded"
        # wrong verifier
        bad = s.put(f"{cb_url}/{cb['callbackid']}", json={"callback": {"verifier": "wrong"}})
        assert bad.status_code == 422
        ok = s.put(f"{cb_url}/{cb['callbackid']}", json={"callback": {"verifier": fields["verifier"]}})
        assert ok.status_code == 200 and ok.json()["response"]["result"]["callback"]["verified"] is True
        lst = s.get(cb_url).json()["response"]["result"]
        assert lst["total"] == 1 and lst["callbacks"][0]["callbackid"] == cb["callbackid"]
        # event delivery: parent subscription matches children; signature verifiable
        statuses = emu.deliver_event(acct, "invoice.update", 200001)
        assert statuses == [200]
        ev = rcv.posts[-1]
        assert [k for k, _ in ev["fields"]] == [
            "name",
            "object_id",
            "account_id",
            "business_id",
            "identity_id",
            "user_id",
        ]
        assert ev["headers"]["X-FreshBooks-Hmac-SHA256"] == sign_webhook(ev["fields"], fields["verifier"])
        assert emu.deliver_event(acct, "client.create", 1) == []
        # resend sends a second verification
        n = len(rcv.posts)
        s.put(f"{cb_url}/{cb['callbackid']}", json={"callback": {"resend": True}})
        assert rcv.wait(n + 1)
        # auto delivery
        emu.auto_deliver = True
        emu.create("invoices", acct)
        assert rcv.wait(n + 2)
        emu.webhooks.join()
        assert dict(rcv.posts[-1]["fields"])["name"] == "invoice.create"
        # delete
        assert s.delete(f"{cb_url}/{cb['callbackid']}").status_code == 204
        assert s.get(f"{cb_url}/{cb['callbackid']}").status_code == 404
        assert s.get(cb_url).json()["response"]["result"]["pages"] == 0
        bad_ev = s.post(cb_url, json={"callback": {"event": "nonsense.thing", "uri": "not a url"}})
        assert bad_ev.status_code == 422 and len(bad_ev.json()["details"]) == 2
    finally:
        rcv.close()


# ------------------------------------------------------------------------------------------
# admin API + CLI
# ------------------------------------------------------------------------------------------


def test_admin_api(emu):
    acct = emu.accounts[1]["account_id"]
    base = f"{emu.url}/_emulator"
    assert requests.get(f"{base}/accounts").json()["accounts"] == emu.accounts
    c = requests.post(
        f"{base}/create",
        json={"stream": "clients", "account_id": acct, "fields": {"organization": "Admin Co"}},
    ).json()
    assert c["record"]["organization"] == "Admin Co"
    requests.post(
        f"{base}/update",
        json={"stream": "clients", "account_id": acct, "id": c["id"], "fields": {"fname": "Ada"}},
    )
    requests.post(f"{base}/delete", json={"stream": "clients", "account_id": acct, "id": c["id"]})
    truth = requests.get(f"{base}/truth/clients", params={"account_id": acct}).json()["records"]
    rec = next(r for r in truth if r["id"] == c["id"])
    assert rec["fname"] == "Ada" and rec["vis_state"] == 1
    g = requests.post(f"{base}/grant").json()
    assert refresh(emu, g["refresh_token"]).status_code == 200
    requests.post(f"{base}/faults", json={"rate_limit_every": 2})
    assert emu.faults.rate_limit_every == 2
    requests.post(f"{base}/faults", json={"reset": True})
    requests.post(f"{base}/revoke")
    assert refresh(emu, g["refresh_token"]).status_code == 400


def test_cli_serve_with_state_file(tmp_path):
    """`python -m freshbooks_emulator serve` through the launcher the demo and benchmarks use."""
    from freshbooks_emulator import process

    with (tmp_path / "emulator.log").open("w") as log:
        proc, st = process.start(
            tmp_path / "emu.json", seed="small", bulk=["invoices:250"], output=log, timeout=20
        )
    try:
        assert st["client_id"] == "test-client-id" and st["grant"]["refresh_token"]
        r = requests.get(
            f"{st['url']}/auth/api/v1/users/me",
            headers={"Authorization": f"Bearer {st['grant']['access_token']}"},
        )
        assert r.status_code == 200
        account = st["accounts"][0]["account_id"]
        truth = requests.get(f"{st['url']}/_emulator/truth/invoices", params={"account_id": account}).json()
        assert len(truth["records"]) >= 250  # the bulk spec went to the first account
    finally:
        process.stop(proc)
    assert proc.returncode is not None
    assert "listening on" in (tmp_path / "emulator.log").read_text()


def test_the_launcher_says_when_the_emulator_does_not_start(tmp_path):
    from freshbooks_emulator import process

    with pytest.raises(process.EmulatorDidNotStart, match="did not start"):
        process.start(tmp_path / "emu.json", seed="no-such-seed", timeout=20)
    assert not (tmp_path / "emu.json").exists()


def test_bulk_seed_is_lazy_and_fast(empty_emu):
    emu = empty_emu
    acct = emu.accounts[0]["account_id"]
    emu.create("clients", acct)
    t0 = time.time()
    first, last = emu.seed_bulk("invoices", 100_000, acct)
    assert time.time() - t0 < 5
    assert last - first + 1 == 100_000
    s = session(emu)
    t0 = time.time()
    res = s.get(
        acct_url(emu, "invoices/invoices"), params={"per_page": 100, "page": 500, "include[]": "lines"}
    ).json()["response"]["result"]
    assert res["total"] == 100_000 and res["pages"] == 1000 and len(res["invoices"]) == 100
    assert all(2 <= len(i["lines"]) <= 3 for i in res["invoices"])
    assert time.time() - t0 < 3
    # deterministic rendering of a lazy row, and mutation materialises it
    a = emu.render_one("invoices", acct, first + 5)
    assert a == emu.render_one("invoices", acct, first + 5)
    emu.update("invoices", acct, first + 5, notes="touched")
    assert emu.render_one("invoices", acct, first + 5)["notes"] == "touched"
