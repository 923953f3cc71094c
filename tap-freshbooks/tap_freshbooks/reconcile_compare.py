"""The comparison behind ``tap-freshbooks reconcile``: one stream of one account, both sides.

Pure functions over :class:`Fact` rows, so the rules are the same whichever warehouse the rows
came from. Money amounts are compared as exact decimals, timestamps as UTC instants.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import json
import typing as t

#: how many ids / keys each list in the report shows (the counts are always complete)
ID_CAP = 20

Money = tuple[decimal.Decimal | None, str | None]


@dataclasses.dataclass(frozen=True)
class StreamSpec:
    """What reconcile compares for one stream (derived from the tap's stream declaration)."""

    name: str
    key_properties: tuple[str, ...]
    replication_key: str | None
    has_vis_state: bool
    money_fields: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class Fact:
    """The comparable facts of one record (FreshBooks) or one row (warehouse)."""

    key: tuple[str, ...]  # the key properties but account_id: (id,), or (invoice_id, id) for lines
    vis_state: int | None
    updated: dt.datetime | None
    money: dict[str, Money]


# -- value normalisation ---------------------------------------------------------------------------
def as_utc(value: t.Any) -> dt.datetime | None:
    """A UTC instant from a warehouse/record value (naive values are UTC: the tap emits UTC)."""
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        moment = value
    elif isinstance(value, dt.date):
        moment = dt.datetime.combine(value, dt.time())
    else:
        try:
            moment = dt.datetime.fromisoformat(str(value).strip().replace(" ", "T"))
        except ValueError:
            return None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC)


def as_decimal(value: t.Any) -> decimal.Decimal | None:
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        return decimal.Decimal(str(value).strip())
    except decimal.InvalidOperation:
        return None


def as_int(value: t.Any) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def money_of(value: t.Any) -> Money:
    """``{"amount", "code"}`` (a dict, or its JSON text when flattening was off) -> (amount, code)."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return None, None
    if not isinstance(value, dict):
        return None, None
    code = value.get("code")
    return as_decimal(value.get("amount")), (str(code) if code is not None else None)


def iso(moment: dt.datetime | None) -> str | None:
    if moment is None:
        return None
    text = moment.astimezone(dt.UTC).isoformat()
    return text.replace("+00:00", "Z")


def decimal_text(value: decimal.Decimal) -> str:
    """Exact, plain, at least two decimals: 1222.5 -> "1222.50", 7.6013352408 stays."""
    text = format(value.normalize(), "f") if value != 0 else "0"
    whole, _, frac = text.partition(".")
    return f"{whole}.{frac.ljust(2, '0')}"


# -- comparison ------------------------------------------------------------------------------------
def money_sums(facts: t.Iterable[Fact], fields: t.Sequence[str]) -> dict[str, dict[str, decimal.Decimal]]:
    """{field: {currency: sum}} over every fact (duplicated rows count twice, as in a query)."""
    sums: dict[str, dict[str, decimal.Decimal]] = {}
    for fact in facts:
        for name in fields:
            amount, code = fact.money.get(name, (None, None))
            if amount is None:
                continue
            per_code = sums.setdefault(name, {})
            currency = code or "(none)"
            per_code[currency] = per_code.get(currency, decimal.Decimal(0)) + amount
    return sums


def _capped(items: list[t.Any]) -> dict[str, t.Any]:
    return {"count": len(items), "items": items[:ID_CAP]}


def _sort_key(value: str) -> tuple[int, t.Any]:
    return (0, int(value)) if value.isdigit() else (1, value)


def compare(
    spec: StreamSpec,
    freshbooks: list[Fact],
    warehouse: list[Fact] | None,
) -> dict[str, t.Any]:
    """The drift of one (stream, account): a JSON-ready dict with ``drift`` true/false.

    ``warehouse`` is None when the stream's table does not exist (every record is missing).
    """
    table_exists = warehouse is not None
    rows = warehouse or []
    fb_by_key = {fact.key: fact for fact in freshbooks}
    wh_by_key: dict[tuple[str, ...], list[Fact]] = {}
    for fact in rows:
        wh_by_key.setdefault(fact.key, []).append(fact)

    def show(key: tuple[str, ...]) -> str:
        # ids are unique inside an (account, stream) except for line streams: show the whole key
        return key[-1] if len(key) == 1 else "/".join(key)

    missing = sorted((show(k) for k in fb_by_key.keys() - wh_by_key.keys()), key=_sort_key)
    extra = sorted((show(k) for k in wh_by_key.keys() - fb_by_key.keys()), key=_sort_key)
    duplicates = sorted(
        ({"id": show(k), "rows": len(v)} for k, v in wh_by_key.items() if len(v) > 1),
        key=lambda d: _sort_key(str(d["id"])),
    )
    vis_state: list[dict[str, t.Any]] = []
    updated: list[dict[str, t.Any]] = []
    money: list[dict[str, t.Any]] = []
    for key in sorted(fb_by_key.keys() & wh_by_key.keys(), key=lambda k: [_sort_key(p) for p in k]):
        want = fb_by_key[key]
        for got in wh_by_key[key]:
            if spec.has_vis_state and want.vis_state != got.vis_state:
                vis_state.append({"id": show(key), "freshbooks": want.vis_state, "warehouse": got.vis_state})
            if spec.replication_key and want.updated != got.updated:
                updated.append(
                    {"id": show(key), "freshbooks": iso(want.updated), "warehouse": iso(got.updated)}
                )
            for name in spec.money_fields:
                fb_money = want.money.get(name, (None, None))
                wh_money = got.money.get(name, (None, None))
                if fb_money != wh_money:
                    money.append(
                        {
                            "id": show(key),
                            "field": name,
                            "freshbooks": _money_json(fb_money),
                            "warehouse": _money_json(wh_money),
                        }
                    )
    fb_sums = money_sums(freshbooks, spec.money_fields)
    wh_sums = money_sums(rows, spec.money_fields)
    sum_mismatches = [
        {
            "field": name,
            "currency": code,
            "freshbooks": decimal_text(fb_sums.get(name, {}).get(code, decimal.Decimal(0))),
            "warehouse": decimal_text(wh_sums.get(name, {}).get(code, decimal.Decimal(0))),
        }
        for name in spec.money_fields
        for code in sorted(set(fb_sums.get(name, {})) | set(wh_sums.get(name, {})))
        if fb_sums.get(name, {}).get(code, decimal.Decimal(0))
        != wh_sums.get(name, {}).get(code, decimal.Decimal(0))
    ]
    fb_newest = max((f.updated for f in freshbooks if f.updated), default=None)
    wh_newest = max((f.updated for f in rows if f.updated), default=None)
    newest_differs = bool(spec.replication_key) and fb_newest != wh_newest
    drift = bool(
        missing or extra or duplicates or vis_state or updated or money or sum_mismatches or newest_differs
    )
    if not table_exists and not freshbooks:
        drift = False  # nothing in FreshBooks, nothing loaded: no table is right
    return {
        "drift": drift,
        "freshbooks": {
            "records": len(fb_by_key),
            "newest_updated": iso(fb_newest),
            "money": _sums_json(fb_sums),
        },
        "warehouse": {
            "table_exists": table_exists,
            "rows": len(rows),
            "distinct_keys": len(wh_by_key),
            "newest_updated": iso(wh_newest),
            "money": _sums_json(wh_sums),
        },
        "missing_in_warehouse": _capped(missing),
        "extra_in_warehouse": _capped(extra),
        "duplicates": _capped(duplicates),
        "vis_state_mismatches": _capped(vis_state),
        "updated_mismatches": _capped(updated),
        "money_mismatches": _capped(money),
        "money_sum_mismatches": sum_mismatches,
        "newest_updated_differs": newest_differs,
    }


def _money_json(value: Money) -> dict[str, str | None] | None:
    amount, code = value
    if amount is None and code is None:
        return None
    return {"amount": decimal_text(amount) if amount is not None else None, "code": code}


def _sums_json(sums: dict[str, dict[str, decimal.Decimal]]) -> dict[str, dict[str, str]]:
    return {
        name: {code: decimal_text(v) for code, v in sorted(per.items())} for name, per in sorted(sums.items())
    }
