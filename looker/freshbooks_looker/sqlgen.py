"""Turn LookML fields into SQL, per Looker dialect, the way Looker does it (closely enough to
execute every field, join and dashboard tile against a real warehouse).

What is emulated: ``@{constants}``; Liquid with ``_dialect._name`` and ``view.param._parameter_value``;
``${TABLE}``, ``${field}``, ``${view.field}``, ``${view.SQL_TABLE_NAME}``; dimension-group
timeframes and durations; ``case:``; yesno; measure types sum / count / count_distinct / average /
min / max / number with ``filters:``; ``required_fields``; joins pulled in by the fields a query
uses (or all of them); ``sql_always_where`` and ``always_filter``; a subset of Looker's filter
expressions.

Fan-out: Looker protects sums and counts over one-to-many joins with symmetric aggregates. This
module gets the same numbers exactly (no floating point): every aggregated row is deduplicated on
(group-by values, primary key of the measure's view) with ROW_NUMBER() before summing.

Not emulated: Looker's exact SQL text, time zone conversion (run the connection in UTC),
``{% condition %}`` / ``{% parameter %}`` tags, templated filters, native derived tables, pivots
(a pivoted field is just another group-by column here), table calculations.
"""

from __future__ import annotations

import re
import typing as t
from dataclasses import dataclass, field

from .dialects import DURATION_INTERVALS, Dialect
from .extras import needs
from .lookml import CONSTANT_RE, REF_RE, Explore, Field, Project, View, _filters

with needs("dev", "freshbooks-looker's SQL generation (sqlgen)"):
    from liquid import Environment, StrictUndefined

LIQUID = Environment(undefined=StrictUndefined)


class LookMLError(Exception):
    """A field, reference or filter that cannot be turned into SQL."""


def timeframe(dialect: Dialect, e: str, tf: str) -> str:
    """SQL of one timeframe of a ``type: time`` dimension group."""
    if tf in ("raw", "time"):
        return e
    if tf == "date":
        return dialect.cast_date(e)
    if tf in ("week", "month", "quarter"):
        return dialect.trunc(tf, e)
    if tf == "hour":
        return dialect.trunc_hour(e)
    part = {"year": "YEAR", "month_num": "MONTH", "quarter_of_year": "QUARTER", "day_of_month": "DAY"}.get(tf)
    if part is None:
        raise LookMLError(f"timeframe {tf} is not supported by the offline checker")
    return f"EXTRACT({part} FROM {e})"


def duration(dialect: Dialect, start: str, end: str, interval: str) -> str:
    """SQL of one interval of a ``type: duration`` dimension group."""
    if interval not in DURATION_INTERVALS:
        raise LookMLError(f"duration interval {interval} is not supported")
    return dialect.duration(start, end, interval)


@dataclass
class Compiled:
    sql: str
    columns: list[str]  # field names, in column order (c0, c1, ...)
    aliases: list[str] = field(default_factory=list)  # joined aliases, base first


_DATE_UNITS = {"day", "week", "month", "quarter", "year"}
_NUM_RE = re.compile(r"^-?\d+(\.\d+)?$")


class ExploreSQL:
    """SQL for one explore in one dialect, with given parameter values."""

    def __init__(
        self, project: Project, explore: Explore, dialect: Dialect, params: dict[str, str] | None = None
    ):
        self.project = project
        self.explore = explore
        self.dialect = dialect
        self.params = dict(params or {})
        self.aliases = explore.aliases()
        self._dim_cache: dict[tuple[str, str], tuple[str, frozenset[str]]] = {}
        self._in_progress: set[tuple[str, str]] = set()

    # -- plumbing ------------------------------------------------------------------------------
    def view(self, alias: str) -> View:
        name = self.aliases.get(alias)
        if name is None or name not in self.project.views:
            raise LookMLError(f"unknown view alias {alias!r} in explore {self.explore.name}")
        return self.project.views[name]

    def liquid_context(self) -> dict[str, t.Any]:
        ctx: dict[str, t.Any] = {
            "_dialect": {"_name": self.dialect.liquid_name},
            "_user_attributes": {},
            "_model": {"_name": self.explore.model},
            "_explore": {"_name": self.explore.name},
        }
        for alias in self.aliases:
            view = self.project.views.get(self.aliases[alias])
            if view is None:
                continue
            params = {}
            for pname, p in view.parameters.items():
                value = self.params.get(f"{alias}.{pname}", p.get("default_value", ""))
                params[pname] = {"_parameter_value": value if p.get("type") == "unquoted" else f"'{value}'"}
            ctx[alias] = params
        return ctx

    def render(self, text: str, where: str) -> str:
        for name, value in self.dialect.offline_constants.items():
            text = text.replace(f"@{{{name}}}", value) if text else text
        text = self.project.substitute_constants(text, where)
        unknown = CONSTANT_RE.search(text or "")
        if unknown:
            raise LookMLError(f"{where}: unknown constant {unknown.group(0)}")
        if "{%" not in text and "{{" not in text:
            return text
        try:
            return LIQUID.from_string(text).render(**self.liquid_context())
        except Exception as exc:
            raise LookMLError(f"{where}: Liquid error: {exc}".splitlines()[0]) from exc

    def table_sql(self, alias: str) -> str:
        view = self.view(alias)
        if view.derived_sql:
            return "(" + self.expand(view.derived_sql, alias, f"view {view.name} derived_table")[0] + ")"
        if view.sql_table_name:
            return self.expand(view.sql_table_name, alias, f"view {view.name} sql_table_name")[0]
        return f"{view.name}"

    def expand(
        self,
        text: str,
        alias: str,
        where: str,
        measure_ref: t.Callable[[str, str], str] | None = None,
        dim_hook: t.Callable[[str, str, str], str] | None = None,
    ) -> tuple[str, frozenset[str]]:
        """Render constants and Liquid, then replace ``${...}`` references.

        Returns the SQL and the aliases it uses. ``measure_ref(alias, field)`` resolves measure
        references (only inside measures); ``dim_hook(alias, field, sql)`` lets a caller place
        dimension SQL elsewhere (type: number measures project it into the row-level subquery).
        """
        text = self.render(text, where)
        used = {alias}

        def repl(m: re.Match[str]) -> str:
            ref = m.group(1).strip()
            if ref == "TABLE":
                return alias
            if "." in ref:
                a, fname = ref.split(".", 1)
                if a not in self.aliases:
                    raise LookMLError(f"{where}: ${{{ref}}}: no view {a!r} in explore {self.explore.name}")
                if fname == "SQL_TABLE_NAME":
                    used.add(a)
                    return self.table_sql(a)
            else:
                a, fname = alias, ref
            fld = self.view(a).fields.get(fname)
            if fld is None:
                raise LookMLError(f"{where}: ${{{ref}}}: view {self.aliases[a]} has no field {fname!r}")
            used.add(a)
            if fld.category == "measure":
                if measure_ref is None:
                    raise LookMLError(f"{where}: ${{{ref}}} is a measure, not allowed here")
                return measure_ref(a, fname)
            if fld.category != "dimension":
                raise LookMLError(f"{where}: ${{{ref}}} is a {fld.category}, use Liquid to read it")
            sql, more = self.dim_ref(a, fname)
            used.update(more)
            if dim_hook is not None:
                return dim_hook(a, fname, f"({sql})")
            return f"({sql})"

        return REF_RE.sub(repl, text), frozenset(used)

    # -- dimensions ----------------------------------------------------------------------------
    def dim_ref(self, alias: str, fname: str) -> tuple[str, frozenset[str]]:
        """SQL of a dimension as other fields see it (yesno: the condition)."""
        key = (alias, fname)
        if key in self._dim_cache:
            return self._dim_cache[key]
        if key in self._in_progress:
            raise LookMLError(f"reference cycle through {self.aliases[alias]}.{fname}")
        self._in_progress.add(key)
        try:
            result = self._dim_ref(alias, fname)
        finally:
            self._in_progress.discard(key)
        self._dim_cache[key] = result
        return result

    def _dim_ref(self, alias: str, fname: str) -> tuple[str, frozenset[str]]:
        fld = self.view(alias).fields[fname]
        where = f"{self.aliases[alias]}.{fname}"
        p = fld.params
        if fld.timeframe is not None:
            base, used = self.expand(p.get("sql") or f"${{TABLE}}.{fld.group}", alias, where)
            sql = timeframe(self.dialect, base, fld.timeframe)
        elif fld.interval is not None:
            if "sql_start" not in p or "sql_end" not in p:
                raise LookMLError(f"{where}: duration needs sql_start and sql_end")
            start, u1 = self.expand(p["sql_start"], alias, where)
            end, u2 = self.expand(p["sql_end"], alias, where)
            sql, used = duration(self.dialect, start, end, fld.interval), u1 | u2
        elif "case" in p:
            parts, used = [], frozenset({alias})
            for w in p["case"].get("whens", []):
                cond, u = self.expand(w["sql"], alias, where)
                used |= u
                parts.append(f"WHEN {cond} THEN {_lit(w.get('label', ''))}")
            sql = (
                "CASE " + " ".join(parts) + f" ELSE {_lit(p['case'].get('else', ''))} END"
                if "else" in p["case"]
                else "CASE " + " ".join(parts) + " END"
            )
        else:
            sql, used = self.expand(p.get("sql") or f"${{TABLE}}.{fname}", alias, where)
        return sql, used

    def dim_select(self, alias: str, fname: str) -> tuple[str, frozenset[str]]:
        fld = self.view(alias).fields[fname]
        sql, used = self.dim_ref(alias, fname)
        if fld.type == "yesno":
            return f"CASE WHEN {sql} THEN 'Yes' ELSE 'No' END", used
        return sql, used

    def field(self, full: str) -> tuple[str, str, Field]:
        if "." not in full:
            raise LookMLError(f"field {full!r} must be view.field")
        alias, fname = full.split(".", 1)
        fld = self.view(alias).fields.get(fname)
        if fld is None:
            raise LookMLError(f"explore {self.explore.name}: no field {full}")
        return alias, fname, fld

    # -- filters -------------------------------------------------------------------------------
    def filter_sql(self, alias: str, fname: str, expr: str) -> tuple[str, frozenset[str]]:
        fld = self.view(alias).fields[fname]
        if fld.category == "parameter":
            return "1 = 1", frozenset({alias})
        if fld.timeframe is not None and fld.timeframe not in (
            "year",
            "month_num",
            "quarter_of_year",
            "day_of_month",
        ):
            base, used = self.expand(
                fld.params.get("sql") or f"${{TABLE}}.{fld.group}", alias, f"{alias}.{fname}"
            )
            return self._date_filter(self.dialect.cast_date(base), expr), used
        sql, used = self.dim_ref(alias, fname)
        if fld.type == "yesno":
            return _yesno_filter(sql, expr), used
        if fld.type in ("number", "duration") or fld.interval is not None or fld.timeframe is not None:
            return _number_filter(sql, expr), used
        return _string_filter(sql, expr), used

    def _date_filter(self, d: str, expr: str) -> str:
        e = expr.strip().lower()
        dl, today = self.dialect, self.dialect.today
        if e in ("", "any time"):
            return "1 = 1"
        if e == "null":
            return f"{d} IS NULL"
        if e == "not null":
            return f"{d} IS NOT NULL"
        if e == "today":
            return f"{d} = {today}"
        if e == "yesterday":
            return f"{d} = {dl.add(today, -1, 'day')}"
        m = re.fullmatch(r"(\d+) (day|week|month|quarter|year)s?", e) or re.fullmatch(
            r"this (day|week|month|quarter|year)", e
        )
        if m:
            n, unit = (int(m.group(1)), m.group(2)) if m.lastindex == 2 else (1, m.group(1))
            start = (
                dl.add(today, -(n - 1), "day")
                if unit == "day"
                else dl.add(
                    dl.trunc(unit, today),
                    -(n - 1) * (3 if unit == "quarter" else 1),
                    "month" if unit == "quarter" else unit,
                )
            )
            end = (
                dl.add(today, 1, "day")
                if unit == "day"
                else dl.add(
                    dl.trunc(unit, today),
                    3 if unit == "quarter" else 1,
                    "month" if unit == "quarter" else unit,
                )
            )
            return f"({d} >= {start} AND {d} < {end})"
        m = re.fullmatch(r"last (day|week|month|quarter|year)", e)
        if m:
            unit = m.group(1)
            cur = today if unit == "day" else dl.trunc(unit, today)
            step, u = (3, "month") if unit == "quarter" else (1, unit)
            return f"({d} >= {dl.add(cur, -step, u)} AND {d} < {cur})"
        m = re.fullmatch(r"(\d{4}-\d{2}-\d{2}) to (\d{4}-\d{2}-\d{2})", e)
        if m:
            return f"({d} >= CAST('{m.group(1)}' AS DATE) AND {d} < CAST('{m.group(2)}' AS DATE))"
        m = re.fullmatch(r"(before|after) (\d{4}-\d{2}-\d{2})", e)
        if m:
            op = "<" if m.group(1) == "before" else ">="
            return f"{d} {op} CAST('{m.group(2)}' AS DATE)"
        m = re.fullmatch(r"\d{4}-\d{2}-\d{2}", e)
        if m:
            return f"{d} = CAST('{e}' AS DATE)"
        raise LookMLError(f"date filter expression {expr!r} is not supported by the offline checker")

    # -- queries -------------------------------------------------------------------------------
    def compile(
        self,
        fields: list[str],
        filters: dict[str, str] | None = None,
        sorts: list[str] | None = None,
        limit: int | None = None,
        all_joins: bool = False,
    ) -> Compiled:
        filters = dict(filters or {})
        for f, expr in self._always_filters().items():
            filters.setdefault(f, expr)
        dims: list[str] = []
        measures: list[str] = []
        for full in fields:
            alias, fname, fld = self.field(full)
            if fld.category == "measure":
                measures.append(full)
                for rf in fld.params.get("required_fields", []) or []:
                    rf_full = rf if "." in rf else f"{alias}.{rf}"
                    self.field(rf_full)
                    if rf_full not in dims and rf_full not in fields:
                        dims.append(rf_full)
            elif fld.category == "dimension" and full not in dims:
                dims.append(full)
        used: set[str] = {self.explore.base_alias}
        where: list[str] = []
        having_filters: list[tuple[str, str]] = []
        for full, expr in filters.items():
            alias, fname, fld = self.field(full)
            if fld.category == "measure":
                having_filters.append((full, expr))
                continue
            cond, u = self.filter_sql(alias, fname, expr)
            used |= u
            where.append(cond)
        if self.explore.params.get("sql_always_where"):
            cond, u = self.expand(
                self.explore.params["sql_always_where"],
                self.explore.base_alias,
                f"explore {self.explore.name} sql_always_where",
            )
            used |= u
            where.insert(0, cond)

        dim_sql: list[str] = []
        for full in dims:
            alias, fname, _ = self.field(full)
            s, u = self.dim_select(alias, fname)
            used |= u
            dim_sql.append(s)

        agg = _Aggregator(self, dim_sql)
        measure_sql = []
        for full in measures:
            alias, fname, _ = self.field(full)
            measure_sql.append(agg.measure(alias, fname))
        having = []
        for full, expr in having_filters:
            alias, fname, _ = self.field(full)
            having.append(_number_filter(agg.measure(alias, fname), expr))
        used |= agg.used

        joins = self._joins(used, all_joins)
        from_sql = f"{self.table_sql(self.explore.base_alias)} AS {self.explore.base_alias}"
        for alias, kind, on in joins:
            from_sql += f"\n{kind} {self.table_sql(alias)} AS {alias}" + (f" ON {on}" if on else "")
        where_sql = ("\nWHERE " + " AND ".join(f"({w})" for w in where)) if where else ""
        columns = dims + measures
        order = self._order(sorts, columns)
        limit_sql = f"\nLIMIT {int(limit)}" if limit else ""

        if not measures:
            select = ", ".join(f"{s} AS c{i}" for i, s in enumerate(dim_sql))
            group = ("\nGROUP BY " + ", ".join(str(i + 1) for i in range(len(dim_sql)))) if dim_sql else ""
            sql = f"SELECT {select}\nFROM {from_sql}{where_sql}{group}{order}{limit_sql}"
        else:
            inner_cols = [f"{s} AS g{i}" for i, s in enumerate(dim_sql)] + agg.inner_columns()
            inner = f"SELECT {', '.join(inner_cols)}\nFROM {from_sql}{where_sql}"
            outer = [f"g{i} AS c{i}" for i in range(len(dim_sql))]
            outer += [f"{m} AS c{len(dim_sql) + j}" for j, m in enumerate(measure_sql)]
            group = ("\nGROUP BY " + ", ".join(f"g{i}" for i in range(len(dim_sql)))) if dim_sql else ""
            having_sql = ("\nHAVING " + " AND ".join(having)) if having else ""
            sql = f"SELECT {', '.join(outer)}\nFROM (\n{inner}\n) AS q{group}{having_sql}{order}{limit_sql}"
        return Compiled(sql, columns, [self.explore.base_alias] + [a for a, _, _ in joins])

    def _always_filters(self) -> dict[str, str]:
        af = self.explore.params.get("always_filter") or {}
        return dict(_filters(af))

    def _order(self, sorts: list[str] | None, columns: list[str]) -> str:
        items = []
        for s in sorts or []:
            parts = s.split()
            name, desc = parts[0], len(parts) > 1 and parts[1].lower() == "desc"
            if name not in columns:
                continue  # Looker ignores sorts on fields the query does not select
            items.append(f"c{columns.index(name)}{' DESC' if desc else ''}")
        return ("\nORDER BY " + ", ".join(items)) if items else ""

    def _joins(self, used: set[str], all_joins: bool) -> list[tuple[str, str, str]]:
        needed = set(used) | set(self.explore.params.get("always_join", []) or [])
        if all_joins:
            needed |= {j.alias for j in self.explore.joins}
        on_sql: dict[str, tuple[str, frozenset[str]]] = {}
        changed = True
        while changed:
            changed = False
            for j in self.explore.joins:
                if j.alias in needed and j.alias not in on_sql:
                    if "sql_on" in j.params:
                        on_sql[j.alias] = self.expand(
                            j.params["sql_on"], j.alias, f"explore {self.explore.name} join {j.alias} sql_on"
                        )
                    else:
                        on_sql[j.alias] = ("", frozenset())
                    new = set(on_sql[j.alias][1]) - needed
                    if new:
                        needed |= new
                        changed = True
        kinds = {
            "left_outer": "LEFT JOIN",
            "inner": "INNER JOIN",
            "full_outer": "FULL OUTER JOIN",
            "cross": "CROSS JOIN",
        }
        out = []
        for j in self.explore.joins:
            if j.alias in needed:
                out.append((j.alias, kinds.get(j.type, "LEFT JOIN"), on_sql[j.alias][0]))
        return out

    def all_field_names(self, category: str) -> list[str]:
        out = []
        for alias, view_name in self.aliases.items():
            view = self.project.views.get(view_name)
            for fname, f in view.fields.items() if view else []:
                if f.category == category:
                    out.append(f"{alias}.{fname}")
        return out


class _Aggregator:
    """Builds the inner (row-level) columns and outer (aggregate) SQL of the measures."""

    def __init__(self, xs: ExploreSQL, group_sql: list[str]):
        self.xs = xs
        self.group_sql = group_sql
        self.inner: dict[str, str] = {}  # column name -> SQL
        self.used: set[str] = set()
        self.pk_cols: dict[str, tuple[str, str]] = {}  # alias -> (pk column, rn column)
        self._stack: list[str] = []

    def inner_columns(self) -> list[str]:
        return [f"{sql} AS {name}" for name, sql in self.inner.items()]

    def _col(self, sql: str, prefix: str) -> str:
        for name, existing in self.inner.items():
            if existing == sql and name.startswith(prefix):
                return name
        name = f"{prefix}{len(self.inner)}"
        self.inner[name] = sql
        return name

    def _dedupe(self, alias: str) -> tuple[str, str]:
        if alias in self.pk_cols:
            return self.pk_cols[alias]
        view = self.xs.view(alias)
        pks = view.primary_keys
        if not pks:
            raise LookMLError(f"view {view.name} has no primary_key: measures cannot be deduplicated")
        pk_sql, u = self.xs.dim_ref(alias, pks[0])
        self.used |= u
        part = ", ".join([*self.group_sql, pk_sql])
        pk_col = self._col(pk_sql, "pk")
        rn_col = self._col(f"ROW_NUMBER() OVER (PARTITION BY {part})", "rn")
        self.pk_cols[alias] = (pk_col, rn_col)
        return pk_col, rn_col

    def measure(self, alias: str, fname: str) -> str:
        key = f"{alias}.{fname}"
        if key in self._stack:
            raise LookMLError(f"measure reference cycle through {key}")
        self._stack.append(key)
        try:
            return self._measure(alias, fname)
        finally:
            self._stack.pop()

    def _measure(self, alias: str, fname: str) -> str:
        xs = self.xs
        fld = xs.view(alias).fields[fname]
        where = f"{xs.aliases[alias]}.{fname}"
        typ = fld.type
        self.used.add(alias)
        if typ == "number":
            sql, u = xs.expand(
                fld.params.get("sql", "NULL"),
                alias,
                where,
                measure_ref=self.measure,
                dim_hook=lambda _a, _f, dim_sql: self._col(dim_sql, "d"),
            )
            self.used |= u
            return f"({sql})"
        conds = []
        for f_name, expr in _filters(fld.params):
            fa, ff = f_name.split(".", 1) if "." in f_name else (alias, f_name)
            if fa not in xs.aliases or ff not in xs.view(fa).fields:
                raise LookMLError(f"{where}: filter on unknown field {f_name}")
            cond, u = xs.filter_sql(fa, ff, expr)
            self.used |= u
            conds.append(cond)
        fcol = self._col(" AND ".join(f"({c})" for c in conds), "f") if conds else None
        fcond = f" AND {fcol}" if fcol else ""
        if typ == "count":
            pk_col, rn_col = self._dedupe(alias)
            return f"COUNT(CASE WHEN {rn_col} = 1{fcond} AND {pk_col} IS NOT NULL THEN 1 END)"
        if "sql" not in fld.params:
            raise LookMLError(f"{where}: measure of type {typ} needs sql")
        val, u = xs.expand(fld.params["sql"], alias, where)
        self.used |= u
        mcol = self._col(val, "m")
        if typ == "sum":
            _, rn_col = self._dedupe(alias)
            return f"SUM(CASE WHEN {rn_col} = 1{fcond} THEN {mcol} END)"
        if typ == "average":
            _, rn_col = self._dedupe(alias)
            return (
                f"(SUM(CASE WHEN {rn_col} = 1{fcond} THEN {mcol} END) * 1.0 / NULLIF(COUNT(CASE WHEN "
                f"{rn_col} = 1{fcond} AND {mcol} IS NOT NULL THEN 1 END), 0))"
            )
        if typ == "count_distinct":
            return f"COUNT(DISTINCT CASE WHEN 1 = 1{fcond} THEN {mcol} END)"
        if typ in ("min", "max"):
            return f"{typ.upper()}(CASE WHEN 1 = 1{fcond} THEN {mcol} END)"
        raise LookMLError(f"{where}: measure type {typ} is not supported by the offline checker")


def _lit(text: str) -> str:
    return "'" + str(text).replace("'", "''") + "'"


def _split_terms(expr: str) -> list[str]:
    terms, cur, esc = [], "", False
    for ch in expr:
        if esc:
            cur, esc = cur + ch, False
        elif ch == "^":
            esc = True
        elif ch == ",":
            terms.append(cur.strip())
            cur = ""
        else:
            cur += ch
    terms.append(cur.strip())
    return [t for t in terms if t != ""]


def _string_filter(sql: str, expr: str) -> str:
    pos: list[str] = []
    neg: list[str] = []
    for term in _split_terms(expr):
        negate = term.startswith("-")
        t = term[1:] if negate else term
        if t == "NULL":
            c = f"{sql} IS NULL"
        elif t == "EMPTY":
            c = f"({sql} IS NULL OR {sql} = '')"
        elif "%" in t or ("_" in t and t.startswith("%")):
            c = f"{sql} LIKE {_lit(t)}"
        else:
            c = f"{sql} = {_lit(t)}"
        (neg if negate else pos).append(c)
    parts = []
    if pos:
        parts.append("(" + " OR ".join(pos) + ")")
    parts += [f"NOT COALESCE({c}, FALSE)" if "IS NULL" not in c else f"NOT ({c})" for c in neg]
    return " AND ".join(parts) if parts else "1 = 1"


def _yesno_filter(cond: str, expr: str) -> str:
    e = expr.strip().lower()
    if e == "yes":
        return f"COALESCE({cond}, FALSE)"
    if e == "no":
        return f"NOT COALESCE({cond}, FALSE)"
    if e == "":
        return "1 = 1"
    raise LookMLError(f"yesno filter {expr!r} must be Yes or No")


def _number_filter(sql: str, expr: str) -> str:
    ors = []
    for term in _split_terms(expr):
        t = term.strip()
        up = t.upper()
        if up == "NULL":
            ors.append(f"{sql} IS NULL")
        elif up in ("NOT NULL", "-NULL"):
            ors.append(f"{sql} IS NOT NULL")
        elif m := re.fullmatch(r"(>=|<=|<>|!=|>|<|=)\s*(-?\d+(\.\d+)?)", t):
            op = "<>" if m.group(1) == "!=" else m.group(1)
            ors.append(f"{sql} {op} {m.group(2)}")
        elif m := re.fullmatch(r"([\[\(])\s*(-?\d+(\.\d+)?)\s*,\s*(-?\d+(\.\d+)?)\s*([\]\)])", t):
            lo = ">=" if m.group(1) == "[" else ">"
            hi = "<=" if m.group(6) == "]" else "<"
            ors.append(f"({sql} {lo} {m.group(2)} AND {sql} {hi} {m.group(4)})")
        elif _NUM_RE.match(t):
            ors.append(f"{sql} = {t}")
        elif t.startswith("-") and _NUM_RE.match(t[1:]) is None and t[1:]:
            raise LookMLError(f"number filter {expr!r} is not supported")
        else:
            raise LookMLError(f"number filter {expr!r} is not supported")
    return "(" + " OR ".join(ors) + ")" if ors else "1 = 1"
