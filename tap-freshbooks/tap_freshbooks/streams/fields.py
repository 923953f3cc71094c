"""Fields that several FreshBooks objects share, declared once, and ``fields()`` for plain runs.

A stream's schema lists its fields in the API's order (the order is the warehouse's column order
and the LookML's). Runs of fields of one type without a description are written as one
``*fields(string, "fname", "lname")``; field groups that FreshBooks repeats across objects (a
postal address, phone numbers) are named here.
"""

from __future__ import annotations

import typing as t

from tap_freshbooks.schema_objects import string

if t.TYPE_CHECKING:
    from singer_sdk import typing as th


def fields(kind: t.Callable[[str], th.Property[t.Any]], *names: str) -> list[th.Property[t.Any]]:
    """Fields of one type (``string``, ``integer``, ...) without descriptions, in this order."""
    return [kind(name) for name in names]


def address(prefix: str = "", *, code: str = "code") -> list[th.Property[t.Any]]:
    """A postal address as FreshBooks spells it; clients have two (``p_`` and ``s_``)."""
    return fields(
        string, *(prefix + part for part in ("street", "street2", "city", "province", code, "country"))
    )


#: a client's or staff member's phone numbers
PHONES = fields(string, "bus_phone", "mob_phone", "home_phone", "fax")

#: the customer's address as printed on an invoice, estimate or recurring profile
BILL_TO = [string("address"), *address(), *fields(string, "vat_name", "vat_number")]
