"""The offline LookML check: what Looker's validator and a Spectacles SQL run would catch, without
a Looker instance.

    freshbooks-looker check                                    # static checks + all dialects (sqlglot)
    freshbooks-looker check --duckdb output/warehouse.duckdb  # + execute against the loaded DuckDB
    freshbooks-looker check --postgres postgresql://...        # + execute against PostgreSQL

Static (no warehouse):
  parse every .lkml (lkml) and .dashboard.lookml (YAML); includes match files; constants exist;
  refinements / extends / joins point at existing views; one primary key per view; joins declare
  a relationship; descriptions on visible fields; value formats on visible measures; every
  ${field} / ${view.field} / @{CONSTANT} resolves; Liquid renders for every dialect and every
  value of every parameter; each explore's SQL (all fields, all joins) and every dashboard tile's
  SQL parses in PostgreSQL, Redshift, Snowflake and BigQuery (sqlglot); dashboards reference
  existing models, explores, fields and filters.

Against a warehouse (DuckDB / PostgreSQL loaded by the pipeline):
  every explore's all-dimensions query with all joins, for each parameter value; every measure
  (with all joins, so fan-out is exercised); every dashboard tile; the datagroup trigger returns
  one row and one column; primary keys are unique and not null on the loaded data; declared
  many_to_one joins match at most one row.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import typing as t
from dataclasses import dataclass, field
from pathlib import Path

from .dialects import Dialect, looker_dialects
from .dialects import default as default_dialect
from .extras import needs
from .lookml import Explore, Issue, Project
from .warehouse import Row, Warehouse, connect

with needs("dev", "freshbooks-looker check"):
    import sqlglot
    from sqlglot.errors import ErrorLevel

    from .sqlgen import ExploreSQL, LookMLError

PROJECT_DIR = Path(__file__).resolve().parent.parent
#: a dashboard data tile: (dashboard, element, explore, fields, filters, sorts, limit)
Tile = tuple[str, dict[str, t.Any], t.Any, list[str], dict[str, t.Any], list[str], t.Any]
#: every Looker dialect of the registry: the static check renders and parses the SQL in each
LOOKER_DIALECTS = [d.name for d in looker_dialects()]


@dataclass
class Report:
    issues: list[Issue] = field(default_factory=list)
    stats: dict[str, int] = field(default_factory=dict)

    @property
    def errors(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == "error"]

    def count(self, key: str, n: int = 1) -> None:
        self.stats[key] = self.stats.get(key, 0) + n

    def text(self) -> str:
        lines = [str(i) for i in self.issues]
        stats = ", ".join(f"{k} {v}" for k, v in sorted(self.stats.items()))
        lines.append(
            f"{len(self.errors)} error(s), {len(self.issues) - len(self.errors)} warning(s); checked: {stats}"
        )
        return "\n".join(lines)


def parameter_variants(project: Project, explore: Explore) -> list[dict[str, str]]:
    """Every combination of the allowed values of the explore's parameters (defaults first)."""
    axes = []
    for alias, view_name in explore.aliases().items():
        view = project.views.get(view_name)
        for pname, p in view.parameters.items() if view else []:
            values = [a.get("value") for a in p.get("allowed_values", []) or [] if a.get("value") is not None]
            default = p.get("default_value")
            ordered = ([default] if default in values else []) + [v for v in values if v != default]
            if ordered:
                axes.append([(f"{alias}.{pname}", v) for v in ordered])
    combos = [dict(c) for c in itertools.product(*axes)] if axes else [{}]
    return combos[:16]


class Checker:
    def __init__(
        self,
        project_dir: Path | str = PROJECT_DIR,
        warehouse: Warehouse | None = None,
        constant_overrides: dict[str, str] | None = None,
        dialects: list[str] | None = None,
    ):
        self.project = Project(project_dir, constant_overrides)
        self.warehouse = warehouse
        self.dialects = dialects or LOOKER_DIALECTS
        self.report = Report(list(self.project.issues))

    # -- public --------------------------------------------------------------------------------
    def run(self) -> Report:
        self.check_views()
        self.check_explores()
        self.check_dashboards()
        if self.warehouse is not None:
            self.check_warehouse()
        return self.report

    def explore_sql(
        self, explore: str, dialect: Dialect | None = None, params: dict[str, str] | None = None
    ) -> ExploreSQL:
        dialect = dialect or (self.warehouse.dialect if self.warehouse else default_dialect())
        return ExploreSQL(self.project, self.project.explores[explore], dialect, params)

    def query(
        self,
        explore: str,
        fields: list[str],
        filters: dict[str, str] | None = None,
        sorts: list[str] | None = None,
        limit: int | None = None,
        params: dict[str, str] | None = None,
    ) -> list[dict[str, t.Any]]:
        """Run a Looker-style query on the warehouse; rows as {field: value}."""
        if self.warehouse is None:
            raise RuntimeError("no warehouse to query")
        compiled = self.explore_sql(explore, params=params).compile(fields, filters, sorts, limit)
        return [dict(zip(compiled.columns, row, strict=True)) for row in self.warehouse.query(compiled.sql)]

    # -- static checks -------------------------------------------------------------------------
    def _error(self, where: str, message: str) -> None:
        self.report.issues.append(Issue("error", where, message))

    def _warn(self, where: str, message: str) -> None:
        self.report.issues.append(Issue("warning", where, message))

    def check_views(self) -> None:
        for name, view in self.project.views.items():
            if view.extension_required:
                continue
            self.report.count("views")
            where = f"{view.file} view {name}"
            pks = view.primary_keys
            if len(pks) != 1:
                self._error(where, f"needs exactly one primary_key (has {len(pks)}: {pks})")
            if not view.sql_table_name and not view.derived_sql:
                self._error(where, "has neither sql_table_name nor derived_table")
            for fname, f in view.fields.items():
                self.report.count("fields")
                if f.hidden or f.params.get("primary_key") == "yes":
                    continue
                if not f.params.get("description"):
                    self._error(where, f"visible field {fname} has no description")
                if (
                    f.category == "measure"
                    and f.type in ("sum", "number", "average")
                    and not (f.params.get("value_format_name") or f.params.get("value_format"))
                ):
                    self._error(where, f"visible measure {fname} has no value_format_name")
            for set_name, items in view.sets.items():
                for item in items:
                    if "." not in item and item.rstrip("*") not in view.fields and not item.endswith("*"):
                        self._error(where, f"set {set_name}: unknown field {item}")

    def _sqlglot(self, sql: str, dialect: str, where: str) -> None:
        problem = _parse_problem(sql, dialect)
        if problem:
            self._error(where, problem)
        else:
            self.report.count(f"sql parsed ({dialect})")

    def _all_fields(self, xs: ExploreSQL) -> tuple[list[str], list[str]]:
        fields = self.project.explore_fields(xs.explore)
        dims = [k for k, f in fields.items() if f.category == "dimension"]
        measures = [k for k, f in fields.items() if f.category == "measure"]
        return dims, measures

    def check_explores(self) -> None:
        # every field of every view must resolve, also in views no explore uses
        explored = {v for e in self.project.explores.values() for v in e.aliases().values()}
        for name, view in self.project.views.items():
            if view.extension_required or name in explored:
                continue
            fake = Explore(f"(view {name})", "", view.file, {}, name, name)
            self._resolve_all(ExploreSQL(self.project, fake, default_dialect()), f"view {name}")
        for ex_name, explore in self.project.explores.items():
            self.report.count("explores")
            if explore.model not in self.project.models:
                self._error(explore.file, f"explore {ex_name} is not included by any model")
            for j in explore.joins:
                if j.relationship not in ("many_to_one", "one_to_one", "one_to_many", "many_to_many"):
                    self._error(
                        explore.file, f"explore {ex_name}: join {j.alias}: bad relationship {j.relationship}"
                    )
            # field-by-field resolution once (precise messages), then every dialect x parameter
            # value as whole queries: Liquid renders, SQL is built with all joins, and it parses.
            first = ExploreSQL(self.project, explore, Dialect(self.dialects[0]))
            if not self._resolve_all(first, f"explore {ex_name} [{self.dialects[0]}]"):
                continue
            for dialect in self.dialects:
                for params in parameter_variants(self.project, explore):
                    xs = ExploreSQL(self.project, explore, Dialect(dialect), params)
                    where = f"explore {ex_name} [{dialect}{' ' + str(params) if params else ''}]"
                    dims, measures = self._all_fields(xs)
                    for label, fields in (("dimensions", dims), ("measures", measures)):
                        try:
                            compiled = xs.compile(fields, all_joins=True, limit=10)
                        except LookMLError as exc:
                            self._error(where, str(exc))
                            continue
                        self.report.count("explore queries built")
                        self._sqlglot(compiled.sql, dialect, f"{where} all {label}")

    def _resolve_all(self, xs: ExploreSQL, where: str) -> bool:
        ok = True
        for alias in xs.aliases:
            view = xs.project.views.get(xs.aliases[alias])
            if view is None:
                ok = False
                continue
            try:
                xs.table_sql(alias)
            except LookMLError as exc:
                self._error(where, str(exc))
                ok = False
            for fname, f in view.fields.items():
                try:
                    if f.category == "dimension":
                        xs.dim_select(alias, fname)
                    elif f.category == "measure":
                        xs.compile([f"{alias}.{fname}"])
                    self.report.count("references resolved")
                except LookMLError as exc:
                    self._error(where, str(exc))
                    ok = False
                for rf in f.params.get("required_fields", []) or []:
                    if (rf.split(".", 1)[1] if "." in rf else rf) not in view.fields and "." not in rf:
                        self._error(where, f"{view.name}.{fname}: required field {rf} does not exist")
                for item in f.params.get("drill_fields", []) or []:
                    self._check_field_ref(xs, alias, item, f"{where} {view.name}.{fname} drill_fields")
        try:
            joined = xs.compile([], all_joins=True)
            del joined
        except LookMLError as exc:
            self._error(where, str(exc))
            ok = False
        return ok

    def _check_field_ref(self, xs: ExploreSQL, alias: str, item: str, where: str) -> None:
        if item.endswith("*"):
            set_ref = item[:-1]
            a, s = set_ref.split(".", 1) if "." in set_ref else (alias, set_ref)
            if a not in xs.aliases or s not in xs.view(a).sets:
                self._error(where, f"unknown set {item}")
            else:
                for member in xs.view(a).sets[s]:
                    self._check_field_ref(xs, a, member, where)
            return
        a, fname = item.split(".", 1) if "." in item else (alias, item)
        if a not in xs.aliases:
            # a set may name views that only some explores join; only flag it where it is used
            self._warn(where, f"{item}: view {a} is not in explore {xs.explore.name}")
            return
        if fname not in xs.view(a).fields:
            self._error(where, f"unknown field {item}")

    # -- dashboards ----------------------------------------------------------------------------
    def dashboard_tiles(self) -> t.Iterator[Tile]:
        """(dashboard, element, explore name, fields, filters, sorts, limit) for data tiles."""
        for dname, dash in self.project.dashboards.items():
            body = dash.body
            defaults = {f.get("name"): f for f in body.get("filters", []) or []}
            for el in body.get("elements", []) or []:
                if el.get("type") in ("text", "button") or not el.get("fields"):
                    continue
                filters = dict(el.get("filters") or {})
                for fname, target in (el.get("listen") or {}).items():
                    flt = defaults.get(fname)
                    if flt is not None and str(flt.get("default_value") or "") != "":
                        filters.setdefault(target, str(flt["default_value"]))
                yield (
                    dname,
                    el,
                    el.get("explore"),
                    list(el["fields"]),
                    filters,
                    list(el.get("sorts") or []),
                    el.get("limit"),
                )

    def check_dashboards(self) -> None:
        models = set(self.project.models)
        for dname, dash in self.project.dashboards.items():
            self.report.count("dashboards")
            body, where = dash.body, f"{dash.file} dashboard {dname}"
            if not any(dash.file in m.files for m in self.project.models.values()):
                self._error(where, "dashboard file is not included by any model")
            for key in ("title", "layout"):
                if key not in body:
                    self._error(where, f"missing {key}")
            filters = {}
            for flt in body.get("filters", []) or []:
                filters[flt.get("name")] = flt
                if flt.get("type") == "field_filter":
                    self._check_dash_field(
                        where,
                        f"filter {flt.get('name')}",
                        flt.get("model"),
                        flt.get("explore"),
                        [flt.get("field")],
                        models,
                    )
            names = [el.get("name") for el in body.get("elements", []) or []]
            for n in {n for n in names if names.count(n) > 1}:
                self._error(where, f"element name {n} is used twice")
            for el in body.get("elements", []) or []:
                ewhere = f"element {el.get('name')}"
                if not el.get("name"):
                    self._error(where, "element without a name")
                if el.get("type") in ("text", "button"):
                    continue
                self.report.count("dashboard tiles")
                refs = list(el.get("fields") or []) + list(el.get("pivots") or [])
                refs += [s.split()[0] for s in el.get("sorts") or []]
                refs += list((el.get("filters") or {}).keys()) + list(el.get("fill_fields") or [])
                refs += list((el.get("listen") or {}).values())
                self._check_dash_field(where, ewhere, el.get("model"), el.get("explore"), refs, models)
                for p in el.get("pivots") or []:
                    if p not in (el.get("fields") or []):
                        self._error(where, f"{ewhere}: pivot {p} is not in fields")
                for flt_name in el.get("listen") or {}:
                    if flt_name not in filters:
                        self._error(where, f"{ewhere}: listens to unknown dashboard filter {flt_name!r}")
        for dname, el, explore, fields, filters, sorts, limit in self.dashboard_tiles():
            if explore not in self.project.explores:
                continue
            for dialect in self.dialects:
                xs = ExploreSQL(self.project, self.project.explores[explore], Dialect(dialect))
                try:
                    compiled = xs.compile(fields, filters, sorts, limit)
                except LookMLError as exc:
                    self._error(f"dashboard {dname} element {el['name']} [{dialect}]", str(exc))
                    continue
                self._sqlglot(compiled.sql, dialect, f"dashboard {dname} element {el['name']}")

    def _check_dash_field(
        self,
        where: str,
        ewhere: str,
        model: str | None,
        explore: str | None,
        refs: list[str],
        models: set[str],
    ) -> None:
        if model not in models:
            self._error(where, f"{ewhere}: unknown model {model!r}")
            return
        ex = self.project.explores.get(explore or "")
        if ex is None or ex.model != model:
            self._error(where, f"{ewhere}: unknown explore {model}::{explore}")
            return
        available = self.project.explore_fields(ex)
        for ref in refs:
            if ref not in available:
                self._error(where, f"{ewhere}: field {ref} is not in explore {explore}")

    # -- warehouse -----------------------------------------------------------------------------
    def _run(self, sql: str, where: str) -> list[Row] | None:
        wh = self._warehouse()
        try:
            rows = wh.query(sql)
            self.report.count(f"queries run ({wh.engine})")
            return rows
        except Exception as exc:  # noqa: BLE001 - whatever the warehouse raises is the finding
            self._error(where, f"{wh.engine}: {str(exc).splitlines()[0]}")
            return None

    def _warehouse(self) -> Warehouse:
        if self.warehouse is None:
            raise RuntimeError("no warehouse to run the check on")
        return self.warehouse

    def check_warehouse(self) -> None:
        wh = self._warehouse()
        dialect = wh.dialect
        for ex_name, explore in self.project.explores.items():
            for params in parameter_variants(self.project, explore):
                xs = ExploreSQL(self.project, explore, dialect, params)
                where = f"explore {ex_name} [{wh.engine}{' ' + str(params) if params else ''}]"
                try:
                    dims, measures = self._all_fields(xs)
                    compiled = xs.compile(dims, all_joins=True, limit=1000)
                except LookMLError as exc:
                    self._error(where, str(exc))
                    continue
                self._run(compiled.sql, f"{where} all dimensions, all joins")
                for m in measures:
                    try:
                        compiled = xs.compile([m], all_joins=True)
                    except LookMLError as exc:
                        self._error(where, str(exc))
                        continue
                    self._run(compiled.sql, f"{where} measure {m} (all joins)")
            self._check_relationships(explore)
        for dname, el, explore, fields, filters, sorts, limit in self.dashboard_tiles():
            if explore in self.project.explores:
                try:
                    compiled = self.explore_sql(explore).compile(fields, filters, sorts, limit)
                except LookMLError as exc:
                    self._error(f"dashboard {dname} element {el['name']}", str(exc))
                    continue
                self._run(compiled.sql, f"dashboard {dname} element {el['name']}")
        for name, dg in self.project.datagroups.items():
            if "sql_trigger" in dg:
                fake = Explore(f"(datagroup {name})", "", "", {}, "_", next(iter(self.project.views)))
                xs = ExploreSQL(self.project, fake, dialect)
                sql = xs.render(dg["sql_trigger"], f"datagroup {name}")
                rows = self._run(sql, f"datagroup {name} sql_trigger")
                if rows is not None and (len(rows) != 1 or len(rows[0]) != 1):
                    self._error(
                        f"datagroup {name}", f"sql_trigger must return 1 row x 1 column, got {len(rows)} rows"
                    )
                elif rows is not None and rows[0][0] is None:
                    self._warn(f"datagroup {name}", "sql_trigger returned NULL (empty warehouse?)")
        for name, view in self.project.views.items():
            if view.extension_required or len(view.primary_keys) != 1:
                continue
            fake = Explore(f"(view {name})", "", view.file, {}, name, name)
            xs = ExploreSQL(self.project, fake, dialect)
            try:
                pk, _ = xs.dim_ref(name, view.primary_keys[0])
                table = xs.table_sql(name)
            except LookMLError:
                continue
            rows = self._run(
                f"SELECT COUNT(*), COUNT(DISTINCT {pk}), COUNT({pk}) FROM {table} AS {name}",
                f"view {name} primary key",
            )
            if rows:
                total, distinct, nonnull = rows[0]
                if total != distinct or total != nonnull:
                    self._error(
                        f"view {name}",
                        f"primary key {view.primary_keys[0]} is not unique / not null "
                        f"({total} rows, {distinct} distinct, {nonnull} non-null)",
                    )

    def _check_relationships(self, explore: Explore) -> None:
        """many_to_one / one_to_one joins: each row of what is joined before matches <= 1 row."""
        xs = ExploreSQL(self.project, explore, self._warehouse().dialect)
        for i, j in enumerate(explore.joins):
            if j.relationship not in ("many_to_one", "one_to_one"):
                continue
            prior = [explore.base_alias] + [x.alias for x in explore.joins[:i]]
            try:
                compiled = xs.compile([], all_joins=True)
                pk_exprs = []
                for alias in prior:
                    view = xs.view(alias)
                    if view.primary_keys:
                        pk_exprs.append(xs.dim_ref(alias, view.primary_keys[0])[0])
                jview = xs.view(j.alias)
                jpk = xs.dim_ref(j.alias, jview.primary_keys[0])[0]
            except (LookMLError, IndexError):
                continue
            from_part = compiled.sql.split("\nFROM ", 1)[1].split("\nWHERE ")[0].split("\nGROUP BY")[0]
            keys = ", ".join(pk_exprs)
            sql = (
                f"SELECT COUNT(*) FROM (SELECT {keys} FROM {from_part} GROUP BY {keys} "
                f"HAVING COUNT(DISTINCT {jpk}) > 1) AS fanout"
            )
            rows = self._run(sql, f"explore {explore.name} join {j.alias} relationship")
            self.report.count("relationships checked")
            if rows and rows[0][0]:
                self._error(
                    f"explore {explore.name}",
                    f"join {j.alias} is declared {j.relationship} but "
                    f"{rows[0][0]} row(s) match more than one {j.alias} row",
                )


_PARSE_CACHE: dict[tuple[str, str], str | None] = {}


def _parse_problem(sql: str, dialect: str) -> str | None:
    """None if the SQL parses in the dialect (sqlglot) and passes the dialect lint."""
    key = (sql, dialect)
    if key not in _PARSE_CACHE:
        problem = None
        spec = Dialect(dialect)
        try:
            sqlglot.parse_one(sql, read=spec.sqlglot, error_level=ErrorLevel.RAISE)
        except Exception as exc:  # noqa: BLE001 - any parser failure is the finding, reported in one line
            problem = f"SQL does not parse as {dialect}: {str(exc).splitlines()[0]}"
        lint = spec.lint_problem(sql) if problem is None else None
        if lint:
            problem = f"SQL is not valid {dialect}: {lint}"
        _PARSE_CACHE[key] = problem
    return _PARSE_CACHE[key]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="freshbooks-looker check",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--project", default=str(PROJECT_DIR), help="LookML project directory")
    parser.add_argument("--duckdb", help="DuckDB file the pipeline loaded (output/warehouse.duckdb)")
    parser.add_argument("--postgres", help="PostgreSQL DSN of the loaded warehouse")
    parser.add_argument("--schema", help="override the SCHEMA_NAME constant")
    parser.add_argument(
        "--dialect",
        action="append",
        choices=LOOKER_DIALECTS,
        help="dialects to render and parse (default: every Looker dialect)",
    )
    parser.add_argument("--quiet", action="store_true", help="print errors only")


def run(args: argparse.Namespace) -> int:
    overrides = {"SCHEMA_NAME": args.schema} if args.schema else None
    warehouse = connect(args.duckdb, args.postgres) if (args.duckdb or args.postgres) else None
    try:
        report = Checker(args.project, warehouse, overrides, args.dialect).run()
    finally:
        if warehouse is not None:
            warehouse.close()
    if args.quiet:
        report.issues = report.errors
    print(report.text())
    return 1 if report.errors else 0


if __name__ == "__main__":
    sys.exit(main())
