"""The warehouses, one class each: everything that differs between them is declared here once.

From these classes come the sqlglot dialect names (``check``), the Looker dialect names and the
Liquid branches of the manifest's internal constants (``generate`` writes them), the money cast,
the SQL spelling of dates and durations (``sqlgen``), the dialect lint (``check``) and how
timestamps are handled after a load (``post-load``). Plain Python, no third-party import: the
runtime install (post-load, drift) reads it too.

Adding a warehouse means adding one subclass below (it registers itself), then running
``freshbooks-looker generate`` to write its Liquid branch into ``manifest.lkml``;
``tests/looker/test_dialects.py`` fails until both are done.
"""

from __future__ import annotations

import re
import typing as t

_REGISTRY: dict[str, type[Dialect]] = {}


class Dialect:
    """One warehouse. ``Dialect("snowflake")`` returns the registered class's instance.

    The base class spells SQL the PostgreSQL way; a subclass overrides what its warehouse spells
    differently. Every class attribute without a default must be set by each subclass.
    """

    #: the key: Looker's ``_dialect._name`` for a Looker dialect, else the engine's name
    name: t.ClassVar[str]
    label: t.ClassVar[str]
    #: sqlglot's name of the dialect (``check`` parses every query with it)
    sqlglot: t.ClassVar[str]
    #: the Looker dialect Liquid sees: its own name, or the one Looker reaches this warehouse through
    liquid_name: t.ClassVar[str]
    #: how the loader writes money and what the LookML casts it to (``@{DECIMAL_TYPE}``)
    decimal_type: t.ClassVar[str]
    #: the limit of that cast (manifest comment, README "Exact amounts")
    decimal_note: t.ClassVar[str]
    string_type: t.ClassVar[str] = "VARCHAR"
    #: the timestamps the loader writes and what keeps them UTC
    timestamps: t.ClassVar[str]
    #: ``post-load``'s ``timestamptz`` step turns ``timestamp`` columns into ``timestamptz``
    converts_timestamptz: t.ClassVar[bool] = False
    #: (regex, what is wrong): text this Looker dialect rejects although sqlglot parses it
    lint: t.ClassVar[tuple[tuple[str, str], ...]] = ()
    #: the Liquid ``else`` branch of every manifest constant is this dialect's
    liquid_default: t.ClassVar[bool] = False

    REQUIRED: t.ClassVar[tuple[str, ...]] = (
        "name", "label", "sqlglot", "liquid_name", "decimal_type", "decimal_note", "timestamps",
    )  # fmt: skip

    def __init_subclass__(cls, abstract: bool = False, **kwargs: t.Any) -> None:
        super().__init_subclass__(**kwargs)
        if abstract:  # a family of warehouses, not one
            return
        missing = [a for a in cls.REQUIRED if not hasattr(cls, a)]
        if missing:
            raise TypeError(f"dialect {cls.__name__} does not set {', '.join(missing)}")
        _REGISTRY[cls.name] = cls

    def __new__(cls, name: str | None = None) -> Dialect:
        if cls is not Dialect:
            return super().__new__(cls)
        if name not in _REGISTRY:
            raise ValueError(f"unknown dialect {name} (known: {', '.join(_REGISTRY)})")
        return super().__new__(_REGISTRY[name])

    def __init__(self, name: str | None = None) -> None:
        del name  # chosen in __new__

    def __repr__(self) -> str:
        return f"Dialect({self.name!r})"

    @property
    def is_looker(self) -> bool:
        """A Looker dialect: the manifest has a Liquid branch for it."""
        return self.liquid_name == self.name

    @property
    def constants(self) -> dict[str, str]:
        """The value of each manifest constant in this dialect (what its Liquid branch renders)."""
        offset, dso = "@{FISCAL_MONTH_OFFSET}", "@{DSO_WINDOW_DAYS}"
        return {
            "DECIMAL_TYPE": self.decimal_type,
            "STRING_TYPE": self.string_type,
            "MONTH_START_DATE": self.trunc("month", self.today),
            "FISCAL_YEAR_START_DATE": self.add(
                self.trunc("year", self.add(self.today, f"-{offset}", "month")), offset, "month"
            ),
            "DSO_WINDOW_START_DATE": self.add(self.today, f"-{dso}", "day"),
        }

    @property
    def offline_constants(self) -> dict[str, str]:
        """For a warehouse Looker reaches through another dialect: the constants whose Liquid
        branch (the host's) means something else on this engine. The offline check uses these."""
        if self.is_looker:
            return {}
        host = Dialect(self.liquid_name).constants
        return {k: v for k, v in self.constants.items() if v != host[k]}

    def lint_problem(self, sql: str) -> str | None:
        for pattern, what in self.lint:
            if re.search(pattern, sql):
                return what
        return None

    # -- SQL spelling (PostgreSQL's; subclasses override theirs) -------------------------------
    @property
    def today(self) -> str:
        return "CURRENT_DATE"

    def cast_date(self, e: str) -> str:
        """``e`` as a DATE (no cast when it is one already: today, or a whole ``CAST(... AS DATE)``)."""
        return e if e == self.today or _whole_date_cast(e) else f"CAST({e} AS DATE)"

    def trunc(self, unit: str, e: str) -> str:
        """First day of the ``unit`` (week: ISO, Monday) containing ``e``, as a DATE."""
        return f"CAST(DATE_TRUNC('{unit}', {e}) AS DATE)"

    def trunc_hour(self, e: str) -> str:
        return f"DATE_TRUNC('hour', {e})"

    def add(self, e: str, n: int | str, unit: str) -> str:
        """The DATE ``n`` ``unit``s after ``e`` (``n`` may be a ``@{CONSTANT}`` or negative)."""
        return f"CAST({self.cast_date(e)} + INTERVAL '{n} {unit}s' AS DATE)"

    def duration(self, start: str, end: str, interval: str) -> str:
        """Whole ``interval``s from ``start`` to ``end`` (a LookML duration dimension group)."""
        if interval == "day":
            return f"(CAST({end} AS DATE) - CAST({start} AS DATE))"
        if interval == "week":
            return f"FLOOR((CAST({end} AS DATE) - CAST({start} AS DATE)) / 7)"
        if interval in _SECONDS:
            return (
                f"FLOOR(EXTRACT(EPOCH FROM (CAST({end} AS TIMESTAMP) - CAST({start} AS TIMESTAMP))) "
                f"/ {_SECONDS[interval]})"
            )
        months = _MONTHS[interval]
        return (
            f"FLOOR(((EXTRACT(YEAR FROM {end}) - EXTRACT(YEAR FROM {start})) * 12 + "
            f"EXTRACT(MONTH FROM {end}) - EXTRACT(MONTH FROM {start})) / {months})"
        )


def _whole_date_cast(e: str) -> bool:
    """``e`` is one ``CAST(... AS DATE)`` (not, say, ``CAST(a AS DATE) - CAST(b AS DATE)``)."""
    if not (e.startswith("CAST(") and e.endswith(" AS DATE)")):
        return False
    depth = 0
    for i, ch in enumerate(e):
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if depth == 0 and i >= len("CAST("):
            return i == len(e) - 1
    return False


_SECONDS = {"hour": 3600, "minute": 60, "second": 1}
_MONTHS = {"month": 1, "quarter": 3, "year": 12}
#: the intervals ``duration`` knows (LookML's ``intervals:`` of a duration dimension group)
DURATION_INTERVALS = ("day", "week", *_SECONDS, *_MONTHS)


class _Datediff(Dialect, abstract=True):
    """Warehouses with ``DATEDIFF(unit, start, end)``."""

    def duration(self, start: str, end: str, interval: str) -> str:
        if interval == "week":
            return f"DATEDIFF(day, {start}, {end}) / 7"
        return f"DATEDIFF({interval}, {start}, {end})"


class Postgres(Dialect):
    name = sqlglot = liquid_name = "postgres"
    label = "PostgreSQL"
    liquid_default = True
    decimal_type = "NUMERIC"
    decimal_note = "arbitrary precision: exact, sums never overflow"
    timestamps = "the loader writes timestamp (UTC); post-load's timestamptz step makes them timestamptz"
    converts_timestamptz = True


class Redshift(_Datediff):
    name = sqlglot = liquid_name = "redshift"
    label = "Redshift"
    decimal_type = "DECIMAL(38,27)"
    decimal_note = "38 digits at most: 11 left of the point, sums error above 10^11"
    timestamps = "Redshift cannot change a column's type: keep the Looker connection's time zone at UTC"


class Snowflake(_Datediff):
    name = sqlglot = liquid_name = "snowflake"
    label = "Snowflake"
    decimal_type = "NUMBER(38,27)"
    decimal_note = "38 digits at most: 11 left of the point, sums error above 10^11"
    timestamps = "the loader writes TIMESTAMP_TZ (timestamp_type: TIMESTAMP_TZ)"

    def add(self, e: str, n: int | str, unit: str) -> str:
        return f"DATEADD({unit}, {n}, {self.cast_date(e)})"


class BigQuery(Dialect):
    name = liquid_name = "bigquery_standard_sql"
    sqlglot = "bigquery"
    label = "BigQuery"
    decimal_type = "BIGNUMERIC"
    decimal_note = "76 digits, 38 decimals: exact"
    string_type = "STRING"
    timestamps = "the loader writes TIMESTAMP (UTC)"
    lint = (
        (r"INTERVAL\s+'", "quoted INTERVAL literal (BigQuery: INTERVAL n UNIT)"),
        (r"DATE_TRUNC\(\s*'", "DATE_TRUNC('unit', x) (BigQuery: DATE_TRUNC(x, UNIT))"),
        (r"::", ":: cast (BigQuery: CAST(x AS type))"),
        (r"DECIMAL\(\s*38\s*,\s*(1\d|[1-9]\d)", "NUMERIC scale above 9 (use BIGNUMERIC)"),
    )

    @property
    def today(self) -> str:
        return "CURRENT_DATE()"

    def trunc(self, unit: str, e: str) -> str:
        part = "ISOWEEK" if unit == "week" else unit.upper()
        return f"DATE_TRUNC({self.cast_date(e)}, {part})"

    def trunc_hour(self, e: str) -> str:
        return f"TIMESTAMP_TRUNC({e}, HOUR)"

    def add(self, e: str, n: int | str, unit: str) -> str:
        return f"DATE_ADD({self.cast_date(e)}, INTERVAL {n} {unit.upper()})"

    def duration(self, start: str, end: str, interval: str) -> str:
        if interval in ("day", "week"):
            diff = f"DATE_DIFF(CAST({end} AS DATE), CAST({start} AS DATE), DAY)"
            return diff if interval == "day" else f"DIV({diff}, 7)"
        if interval in _SECONDS:
            return f"TIMESTAMP_DIFF(CAST({end} AS TIMESTAMP), CAST({start} AS TIMESTAMP), {interval.upper()})"
        return f"DATE_DIFF(CAST({end} AS DATE), CAST({start} AS DATE), {interval.upper()})"


class DuckDB(Postgres):
    """Not a Looker dialect: Looker reaches it (MotherDuck) through the PostgreSQL dialect, so
    Liquid sees ``postgres``. The offline check runs every query on a DuckDB the pipeline loaded."""

    name = sqlglot = "duckdb"
    label = "DuckDB"
    liquid_name = "postgres"
    liquid_default = False
    # The postgres branch is NUMERIC, which DuckDB reads as DECIMAL(18,3): 3 decimals. DuckDB's
    # widest exact type keeps FreshBooks' 27.
    decimal_type = "DECIMAL(38,27)"
    decimal_note = "as Redshift; the loader writes text, cast on read"
    timestamps = "the loader writes TIMESTAMP (UTC)"
    converts_timestamptz = False


def registered() -> list[Dialect]:
    """Every warehouse, in registration order."""
    return [cls() for cls in _REGISTRY.values()]


def looker_dialects() -> list[Dialect]:
    """The dialects Looker itself has (each gets a Liquid branch in the manifest)."""
    return [d for d in registered() if d.is_looker]


def default() -> Dialect:
    """The dialect of the Liquid ``else`` branches (the one a static check resolves fields in)."""
    return next(d for d in registered() if d.liquid_default)


def names() -> list[str]:
    return list(_REGISTRY)
