"""Thread-safe record store: tables per (stream, account_id), mutations, cached list queries.

Records are kept in their internal form (aware UTC datetimes, money objects as dicts, internal
keys with a leading ``_``).  Bulk-seeded records are kept as ``LazyRow`` stubs (id, created,
updated, vis_state) and generated on demand from the seed, so 100k invoices cost a few MB.
A mutation of a lazy row materialises it into a plain dict.
"""

from __future__ import annotations

import copy
import random
import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from . import seed as SEED
from . import streams as S
from .render import as_utc, dec_str, render

UTC = UTC


class LazyRow:
    __slots__ = ("bulk", "created", "pk", "updated", "vis")

    def __init__(self, pk, created, updated, vis, bulk):
        self.pk = pk
        self.created = created
        self.updated = updated
        self.vis = vis
        self.bulk = bulk


class Bulk:
    """Shared generator state for lazily-materialised rows of one seed_bulk call."""

    def __init__(self, store, stream, acct, ctx):
        self.store = store
        self.stream = stream
        self.acct = acct
        self.ctx = ctx

    def make(self, row: LazyRow) -> dict:
        gen = SEED.GENERATORS[self.stream]
        rng = random.Random(f"{self.store.emu.seed}/{self.stream}/{row.pk}")
        rec = gen(rng, self.ctx, row.pk, row.created, row.updated)
        if "vis_state" in rec:
            rec["vis_state"] = row.vis
        return rec


class Table:
    def __init__(self, spec: S.StreamSpec):
        self.spec = spec
        self.rows: dict = {}
        self.version = 0
        self._sorted = None
        self._sorted_version = -1

    def touch(self):
        self.version += 1

    def sorted_pks(self) -> list:
        if self._sorted_version != self.version:
            if self.spec.name == "chart_of_accounts":
                self._sorted = sorted(self.rows, key=lambda k: (self.rows[k]["number"], k))
            else:
                self._sorted = sorted(self.rows)
            self._sorted_version = self.version
        return self._sorted


def _row_vis(row) -> int:
    if isinstance(row, LazyRow):
        return row.vis
    if row.get("_deleted"):
        return 1
    return row.get("vis_state", 0) or 0


def _row_updated(spec: S.StreamSpec, row):
    if isinstance(row, LazyRow):
        return row.updated
    if spec.updated_field is None:
        return None
    v = row.get(spec.updated_field)
    return v if isinstance(v, datetime) else None


class Store:
    def __init__(self, emu):
        self.emu = emu
        self.lock = threading.RLock()
        self.tables: dict[tuple, Table] = {}
        self.counters: dict[str, int] = dict(SEED.ID_BASE)
        self._qcache: dict = {}
        self._bill_payment_groups: dict[str, tuple[int, dict]] = {}

    # -- low level ------------------------------------------------------------------------
    def table(self, stream: str, acct: str) -> Table:
        key = (stream, acct)
        t = self.tables.get(key)
        if t is None:
            t = self.tables[key] = Table(S.spec(stream))
        return t

    def next_id(self, stream: str) -> int:
        with self.lock:
            n = self.counters.get(stream, 1)
            self.counters[stream] = n + 1
            return n

    def _materialize(self, row):
        if isinstance(row, LazyRow):
            return row.bulk.make(row)
        return row

    def ids(self, stream: str, acct: str) -> list:
        with self.lock:
            return list(self.table(stream, acct).sorted_pks())

    def get(self, stream: str, acct: str, pk):
        with self.lock:
            row = self.table(stream, acct).rows.get(pk)
            return None if row is None else self._materialize(row)

    def get_raw(self, stream, acct, pk):
        """Materialised row, stored back so it can be mutated in place."""
        t = self.table(stream, acct)
        row = t.rows.get(pk)
        if isinstance(row, LazyRow):
            row = t.rows[pk] = row.bulk.make(row)
        return row

    def insert(self, stream: str, acct: str, rec: dict) -> dict:
        with self.lock:
            t = self.table(stream, acct)
            t.rows[rec[t.spec.pk]] = rec
            t.touch()
            return rec

    def active_ids(self, stream: str, acct: str) -> list:
        with self.lock:
            t = self.table(stream, acct)
            return [pk for pk in t.sorted_pks() if _row_vis(t.rows[pk]) == 0]

    def ctx(self, acct: str, snapshot: bool = False) -> SEED.Ctx:
        account = self.emu.account(acct)
        if snapshot:
            cache: dict = {}

            def ids_fn(stream):
                if stream not in cache:
                    cache[stream] = self.active_ids(stream, acct)
                return cache[stream]
        else:

            def ids_fn(stream):
                return self.active_ids(stream, acct)

        return SEED.Ctx(
            account, ids_fn, lambda stream, pk: self.get(stream, acct, pk), self.emu.identity["identity_id"]
        )

    # -- mutations ------------------------------------------------------------------------
    def _normalize(self, spec: S.StreamSpec, rec: dict, fields: dict, acct: str) -> dict:
        out = {}
        code = fields.get("currency_code") or rec.get("currency_code")
        if not code and isinstance(rec.get("amount"), dict):
            code = rec["amount"].get("code")
        code = code or self.emu.account(acct)["currency"]
        for k, v in fields.items():
            if isinstance(v, datetime):
                v = as_utc(v)
            if k in spec.money_fields and v is not None and not isinstance(v, dict):
                v = {"amount": dec_str(v if not isinstance(v, float) else Decimal(repr(v))), "code": code}
            out[k] = v
        return out

    def _fix_lines(self, spec, rec, lines, updated):
        code = rec.get("currency_code", "USD")
        parent = S.LINE_PARENTS[spec.name]
        fixed = []
        for i, line in enumerate(lines):
            line = dict(line)
            line.setdefault("lineid", i + 1)
            line[parent] = rec[spec.pk]
            qty = Decimal(str(line.get("qty", "1")))
            line["qty"] = dec_str(qty) if not isinstance(line.get("qty"), str) else line["qty"]
            if isinstance(line["qty"], str) and line["qty"].endswith(".00") and qty == qty.to_integral():
                line["qty"] = str(int(qty))
            uc = line.get("unit_cost", {"amount": "0.00", "code": code})
            if not isinstance(uc, dict):
                uc = {"amount": dec_str(uc), "code": code}
            line["unit_cost"] = uc
            if "amount" not in line or not isinstance(line["amount"], dict):
                amt = line.get("amount")
                if amt is None:
                    amt = SEED.c2(Decimal(uc["amount"]) * qty)
                line["amount"] = {"amount": dec_str(amt), "code": code}
            for k, v in (
                ("name", ""),
                ("description", ""),
                ("taxName1", ""),
                ("taxAmount1", None),
                ("taxName2", ""),
                ("taxAmount2", None),
                ("type", 0),
                ("expenseid", 0),
                ("compounded_tax", False),
                ("date", None),
                ("retainer_id", None),
                ("modern_project_id", None),
                ("modern_time_entries", []),
            ):
                line.setdefault(k, v)
            line["updated"] = updated
            fixed.append(line)
        return fixed

    def _derive(self, spec, rec, fields, acct, stamp):
        """Keep derived fields consistent after applying `fields`."""
        for a in spec.aliases:
            rec[a] = rec[spec.pk]
        if spec.name in S.LINE_PARENTS and "lines" in fields and fields["lines"] is not None:
            rec["lines"] = self._fix_lines(spec, rec, fields["lines"], stamp)
            if spec.name == "invoices" and "amount" not in fields:
                SEED.invoice_totals(rec)
            elif "amount" not in fields:  # credit notes, estimates, profiles: the sum of the lines
                rec["amount"] = {
                    "amount": dec_str(
                        SEED.c2(sum(Decimal(line["amount"]["amount"]) for line in rec["lines"]))
                    ),
                    "code": rec.get("currency_code", "USD"),
                }
        if spec.name == "invoices":
            if "customerid" in fields and "organization" not in fields:
                client = self.get("clients", acct, fields["customerid"])
                if client:
                    for k in ("organization", "fname", "lname"):
                        rec[k] = client.get(k, "")
            if "outstanding" not in fields and ("amount" in fields or "paid" in fields):
                code = rec["amount"]["code"]
                rec["outstanding"] = {
                    "amount": dec_str(
                        SEED.c2(Decimal(rec["amount"]["amount"]) - Decimal(rec["paid"]["amount"]))
                    ),
                    "code": code,
                }
        if spec.name == "bills" and ("lines" in fields or "paid" in fields) and "outstanding" not in fields:
            SEED.bill_totals(rec)

    def create(
        self, stream: str, acct: str, fields: dict, created=None, updated=None, notify: bool = True
    ) -> dict:
        spec = S.spec(stream)
        emu = self.emu
        with self.lock:
            now = emu.now()
            now_s = now.replace(microsecond=0) if spec.family != "ledger" else now
            created = as_utc(created) if created else now_s
            updated = as_utc(updated) if updated else created
            pk = fields.get(spec.pk)
            if pk is None:
                if spec.pk == "uuid":
                    pk = SEED.det_uuid(random.Random(f"{emu.seed}/{stream}/{self.next_id(stream)}"))
                else:
                    pk = self.next_id(stream)
            elif isinstance(pk, int) and pk >= self.counters.get(stream, 1):
                self.counters[stream] = pk + 1
            gen = SEED.GENERATORS[stream]
            rng = random.Random(f"{emu.seed}/{stream}/{pk}")
            rec = gen(rng, self.ctx(acct), pk, created, updated)
            rec[spec.pk] = pk
            fields = self._normalize(spec, rec, fields, acct)
            rec.update(fields)
            self._derive(spec, rec, fields, acct, updated)
            self.insert(stream, acct, rec)
        if notify:
            emu.record_changed(stream, acct, pk, "create")
        return rec

    def update(
        self, stream: str, acct: str, pk, fields: dict, bump: bool = True, notify: bool = True
    ) -> dict:
        spec = S.spec(stream)
        with self.lock:
            t = self.table(stream, acct)
            if pk not in t.rows:
                raise KeyError(f"{stream} {pk} not found in account {acct}")
            rec = self.get_raw(stream, acct, pk)
            stamp = self.emu.now().replace(microsecond=0) if spec.family != "ledger" else self.emu.now()
            fields = self._normalize(spec, rec, fields, acct)
            rec.update(fields)
            self._derive(spec, rec, fields, acct, stamp)
            if bump and spec.updated_field and spec.updated_field not in fields:
                rec[spec.updated_field] = stamp
                if "version" in rec and "version" not in fields:
                    rec["version"] = self.emu.now()
                if rec.get("lines") and "lines" in fields and spec.name in S.LINE_PARENTS:
                    for line in rec["lines"]:
                        line["updated"] = stamp
            t.touch()
        if notify:
            self.emu.record_changed(stream, acct, pk, "update")
        return rec

    def delete(self, stream: str, acct: str, pk, notify: bool = True):
        spec = S.spec(stream)
        with self.lock:
            t = self.table(stream, acct)
            if pk not in t.rows:
                raise KeyError(f"{stream} {pk} not found in account {acct}")
            if spec.delete_mode == "hard":
                rec = self._materialize(t.rows.pop(pk))
                t.touch()
            elif spec.delete_mode == "flag":
                rec = self.get_raw(stream, acct, pk)
                rec["_deleted"] = True
                rec["active"] = False
                rec["_updated"] = self.emu.now().replace(microsecond=0)
                t.touch()
            else:
                rec = self.update(
                    stream, acct, pk, {"vis_state": 1}, bump=self.emu.delete_bumps_updated, notify=False
                )
        if notify:
            self.emu.record_changed(stream, acct, pk, "delete")
        return rec

    def archive(self, stream: str, acct: str, pk, notify: bool = True):
        spec = S.spec(stream)
        if not spec.vis_state:
            raise ValueError(f"{stream} has no vis_state")
        return self.update(
            stream, acct, pk, {"vis_state": 2}, bump=self.emu.delete_bumps_updated, notify=notify
        )

    def seed_bulk(self, stream: str, n: int, acct: str, days: int = 400, vis_mix: bool = False) -> list:
        """Add n lazily generated records; returns [first_id, last_id]."""
        spec = S.spec(stream)
        if spec.pk == "uuid":
            raise ValueError("bulk seeding is for integer-id streams")
        with self.lock:
            ctx = self.ctx(acct, snapshot=True)
            bulk = Bulk(self, stream, acct, ctx)
            t = self.table(stream, acct)
            rng = random.Random(f"{self.emu.seed}/bulk/{stream}/{acct}/{self.counters.get(stream)}")
            now = self.emu.now().replace(microsecond=0)
            first = self.counters.get(stream, 1)
            rows = t.rows
            span = days * 86400
            for i in range(n):
                pk = first + i
                created = now - timedelta(seconds=rng.randint(0, span))
                upd = (
                    created
                    if rng.random() < 0.5
                    else min(now, created + timedelta(seconds=rng.randint(0, 60 * 86400)))
                )
                vis = 0
                if vis_mix:
                    r = rng.random()
                    vis = 1 if r < 0.02 else (2 if r < 0.04 else 0)
                rows[pk] = LazyRow(pk, created, upd, vis, bulk)
            self.counters[stream] = first + n
            t.touch()
            return [first, first + n - 1]

    # -- queries --------------------------------------------------------------------------
    def query(
        self, stream: str, acct: str, vis: str = "default", updated_min=None, updated_max=None, extra=None
    ) -> list:
        """Sorted pks matching. vis: 'default' (hide 1), 'all', or '0'/'1'/'2'.
        extra: optional (key, predicate(rec)->bool) evaluated on materialised records."""
        spec = S.spec(stream)
        with self.lock:
            t = self.table(stream, acct)
            ckey = (stream, acct, vis, updated_min, updated_max, extra[0] if extra else None)
            hit = self._qcache.get(ckey)
            if hit and hit[0] == t.version:
                return hit[1]
            out = []
            rows = t.rows
            for pk in t.sorted_pks():
                row = rows[pk]
                if spec.vis_state or spec.delete_mode == "flag":
                    v = _row_vis(row)
                    if vis == "default" and v == 1:
                        continue
                    if vis in ("0", "1", "2") and str(v) != vis:
                        continue
                if updated_min is not None or updated_max is not None:
                    u = _row_updated(spec, row)
                    if u is None:
                        continue
                    if updated_min is not None and u < updated_min:
                        continue
                    if updated_max is not None and u >= updated_max:
                        continue
                if extra is not None and not extra[1](self._materialize(row)):
                    continue
                out.append(pk)
            if len(self._qcache) > 64:
                self._qcache.clear()
            self._qcache[ckey] = (t.version, out)
            return out

    # -- rendering ------------------------------------------------------------------------
    def render_many(self, stream: str, acct: str, pks, include=frozenset()) -> list:
        spec = S.spec(stream)
        with self.lock:
            rows = self.table(stream, acct).rows
            recs = [self._materialize(rows[pk]) for pk in pks if pk in rows]
            return self._render_recs(spec, acct, recs, include)

    def _bill_payments_by_bill(self, acct) -> dict:
        """The account's visible bill payments, rendered and grouped by bill id.

        Kept until the bill_payments table changes: rendering them for every bills page made a
        page cost O(all bill payments), which FreshBooks' pages do not (100k-invoice benchmarks
        spent most of the raw fetch there).
        """
        bpt = self.table("bill_payments", acct)
        hit = self._bill_payment_groups.get(acct)
        if hit and hit[0] == bpt.version:
            return hit[1]
        bpspec = S.spec("bill_payments")
        groups: dict = {}
        for pk in bpt.sorted_pks():
            bp = self._materialize(bpt.rows[pk])
            if _row_vis(bp) != 1:
                groups.setdefault(bp.get("billid"), []).append(render(bpspec, bp))
        self._bill_payment_groups[acct] = (bpt.version, groups)
        return groups

    def _render_recs(self, spec, acct, recs, include):
        overrides = self.emu.field_overrides(spec)
        out = [render(spec, r, include, overrides) for r in recs]
        for field in (self.emu.omit_fields or {}).get(spec.name, ()):
            for rendered in out:
                rendered.pop(field, None)
        if spec.name == "bills" and out:
            vspec = S.spec("bill_vendors")
            bps = self._bill_payments_by_bill(acct)
            for b in out:
                v = self.get("bill_vendors", acct, b.get("vendorid"))
                b["vendor"] = render(vspec, v, overrides=self.emu.field_overrides(vspec)) if v else None
                # a copy per answer, as before the cache: a caller that edits one changes no other
                b["bill_payments"] = copy.deepcopy(bps.get(b["id"], []))
        return out
