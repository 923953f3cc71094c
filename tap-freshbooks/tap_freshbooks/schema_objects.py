"""Schema pieces shared by many streams (money, decimals, audit columns).

Money: FreshBooks sends ``{"amount": "1222.00", "code": "USD"}`` with the amount as a decimal
*string* (up to ~27 decimals seen). We keep it a string typed ``format: x-singer.decimal`` with
precision 38 / scale 27: SQL targets built on the SDK (Postgres, Snowflake) create an exact
DECIMAL(38,27) column from it, and a target that does not know the format (target-duckdb) stores
the exact text, which the LookML casts (never a rounded float).
"""

from __future__ import annotations

import typing as t

from singer_sdk import typing as th

# precision/scale: SQL targets size the column from them. Without them Snowflake creates
# NUMBER(38,0) and Redshift NUMERIC(18,0) and round the cents away. 27 decimals is the longest
# FreshBooks amount seen; 11 integer digits is ample for one money value.
DECIMAL_PRECISION, DECIMAL_SCALE = 38, 27
DECIMAL = th.CustomType(
    {
        "type": ["string", "null"],
        "format": "x-singer.decimal",
        "precision": DECIMAL_PRECISION,
        "scale": DECIMAL_SCALE,
    }
)


def decimal(name: str, description: str | None = None) -> th.Property[t.Any]:
    """A numeric value FreshBooks sends as a string (quantities, rates, percents)."""
    return th.Property(name, DECIMAL, description=description)


def money(name: str, description: str | None = None) -> th.Property[t.Any]:
    """A FreshBooks money object: exact decimal amount + ISO 4217 currency code."""
    return th.Property(
        name,
        th.ObjectType(
            th.Property("amount", DECIMAL, description="Exact decimal amount (string)"),
            th.Property("code", th.StringType, description="ISO 4217 currency code"),
            additional_properties=False,
        ),
        description=description,
    )


def money_list(name: str, description: str | None = None) -> th.Property[t.Any]:
    """Client/vendor balances: an array of ``{"amount": money}``."""
    return th.Property(
        name,
        th.ArrayType(th.ObjectType(money("amount"), additional_properties=True)),
        description=description,
    )


def string(name: str, description: str | None = None) -> th.Property[t.Any]:
    return th.Property(name, th.StringType, description=description)


def integer(name: str, description: str | None = None) -> th.Property[t.Any]:
    return th.Property(name, th.IntegerType, description=description)


def boolean(name: str, description: str | None = None) -> th.Property[t.Any]:
    return th.Property(name, th.BooleanType, description=description)


def date(name: str, description: str | None = None) -> th.Property[t.Any]:
    return th.Property(name, th.DateType, description=description)


def timestamp(name: str, description: str | None = None) -> th.Property[t.Any]:
    return th.Property(name, th.DateTimeType, description=description)


#: A free-form JSON object. No ``properties`` key on purpose: singer-sdk's flattener recurses into
#: an object that has one (even empty) and the column vanishes; without it the object is kept as
#: one JSON column.
FREE_OBJECT = th.CustomType({"type": ["object", "null"], "additionalProperties": True})


def any_object(name: str, description: str | None = None) -> th.Property[t.Any]:
    return th.Property(name, FREE_OBJECT, description=description)


def any_array(name: str, description: str | None = None) -> th.Property[t.Any]:
    return th.Property(name, th.ArrayType(th.AnyType()), description=description)


VIS_STATE = integer("vis_state", "0 active, 1 deleted, 2 archived (deleted rows are kept)")


def audit_columns(*, business_scoped: bool = False) -> list[th.Property[t.Any]]:
    """The contract's audit trail, present on every record."""
    props = [
        th.Property("id", th.StringType, required=True, description="FreshBooks object id (as a string)"),
        th.Property("account_id", th.StringType, required=True, description="FreshBooks account id"),
    ]
    if business_scoped:
        props.append(integer("business_id", "FreshBooks business id"))
    props += [
        timestamp("_fb_extracted_at", "When this tap fetched the record (UTC)"),
        th.Property(
            "_fb_trigger",
            th.StringType,
            allowed_values=["poll", "webhook"],
            description="What caused the fetch: a scheduled poll or a webhook",
        ),
        timestamp(
            "_fb_event_received_at",
            "When the webhook that caused this fetch was received (UTC); null for polls",
        ),
        th.Property(
            "_fb_unparsed",
            FREE_OBJECT,
            description=(
                "Raw values that did not match their declared type, keyed by field path (the "
                "field itself is null); null when the record was clean"
            ),
        ),
    ]
    return props


def schema(
    *properties: th.Property[t.Any] | t.Iterable[th.Property[t.Any]], business_scoped: bool = False
) -> dict[str, t.Any]:
    """Build a stream schema: audit columns first, then the stream's own properties."""
    flat: list[th.Property[t.Any]] = list(audit_columns(business_scoped=business_scoped))
    names = {p.name for p in flat}
    for item in properties:
        for prop in [item] if isinstance(item, th.Property) else item:
            if prop.name not in names:
                flat.append(prop)
                names.add(prop.name)
    return th.PropertiesList(*flat).to_dict()


def restore_decimal_sizes(node: t.Any) -> None:
    """Add the tap's DECIMAL precision/scale to every x-singer.decimal node lacking them.

    singer-sdk's catalog model drops them (sdk_compat.py, point 4): the SCHEMA messages and the
    catalog the tap prints get them back from here.
    """
    if isinstance(node, dict):
        if node.get("format") == "x-singer.decimal":
            node.setdefault("precision", DECIMAL_PRECISION)
            node.setdefault("scale", DECIMAL_SCALE)
        for value in node.values():
            restore_decimal_sizes(value)
    elif isinstance(node, list):
        for value in node:
            restore_decimal_sizes(value)
