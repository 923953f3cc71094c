"""Load a LookML project the way Looker assembles it: manifest constants, model includes, views,
refinements (``view: +name``), ``extends``, explores, datagroups and LookML dashboards.

Parsing is ``lkml`` (syntax) and ``yaml.safe_load`` (dashboards); everything semantic that Looker's
validator would say (unknown include, unknown view, duplicate field, missing primary key...) is
collected as :class:`Issue` objects instead of raised, so one run reports every problem.
"""

from __future__ import annotations

import copy
import re
import typing as t
from dataclasses import dataclass, field
from pathlib import Path

import lkml
import yaml

CONSTANT_RE = re.compile(r"@\{([A-Za-z_][A-Za-z0-9_]*)\}")
REF_RE = re.compile(r"\$\{([^{}]+)\}")

TIME_TIMEFRAMES = {
    "raw",
    "time",
    "date",
    "week",
    "month",
    "quarter",
    "year",
    "hour",
    "minute",
    "second",
    "day_of_week",
    "day_of_month",
    "day_of_year",
    "month_num",
    "month_name",
    "quarter_of_year",
    "week_of_year",
    "hour_of_day",
    "time_of_day",
    "millisecond",
    "microsecond",
}
DURATION_INTERVALS = {"day", "hour", "minute", "second", "week", "month", "quarter", "year"}
MEASURE_TYPES = {
    "sum",
    "count",
    "count_distinct",
    "average",
    "min",
    "max",
    "number",
    "sum_distinct",
    "average_distinct",
    "median",
    "percentile",
    "list",
    "date",
    "string",
    "yesno",
}


@dataclass
class Issue:
    severity: str  # "error" | "warning"
    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.severity.upper():7} {self.where}: {self.message}"


@dataclass
class Field:
    view: str
    name: str
    category: str  # dimension | measure | parameter | filter
    type: str
    params: dict[str, t.Any]
    group: str | None = None  # dimension group this field was expanded from
    timeframe: str | None = None
    interval: str | None = None

    @property
    def sql(self) -> str | None:
        return self.params.get("sql")

    @property
    def hidden(self) -> bool:
        return self.params.get("hidden") == "yes"

    @property
    def is_date_like(self) -> bool:
        return self.timeframe is not None and self.timeframe not in ("year", "raw_number")


@dataclass
class View:
    name: str
    file: str
    params: dict[str, t.Any] = field(default_factory=dict[str, t.Any])
    dimensions: dict[str, t.Any] = field(
        default_factory=dict[str, t.Any]
    )  # name -> raw dict[str, t.Any] (incl. dimension groups)
    groups: dict[str, t.Any] = field(
        default_factory=dict[str, t.Any]
    )  # dimension_group name -> raw dict[str, t.Any]
    measures: dict[str, t.Any] = field(default_factory=dict[str, t.Any])
    parameters: dict[str, t.Any] = field(default_factory=dict[str, t.Any])
    filters: dict[str, t.Any] = field(default_factory=dict[str, t.Any])
    sets: dict[str, t.Any] = field(default_factory=dict[str, t.Any])
    fields: dict[str, t.Any] = field(default_factory=dict[str, t.Any])  # expanded: name -> Field

    @property
    def extension_required(self) -> bool:
        return self.params.get("extension") == "required"

    @property
    def sql_table_name(self) -> str | None:
        return self.params.get("sql_table_name")

    @property
    def derived_sql(self) -> str | None:
        dt = self.params.get("derived_table")
        return dt.get("sql") if isinstance(dt, dict) else None

    @property
    def primary_keys(self) -> list[str]:
        return [n for n, f in self.fields.items() if f.params.get("primary_key") == "yes"]


@dataclass
class Join:
    alias: str
    view: str
    params: dict[str, t.Any]

    @property
    def relationship(self) -> str | None:
        value = self.params.get("relationship")
        return None if value is None else str(value)

    @property
    def type(self) -> str:
        return str(self.params.get("type", "left_outer"))


@dataclass
class Explore:
    name: str
    model: str
    file: str
    params: dict[str, t.Any]
    base_alias: str
    base_view: str
    joins: list[Join] = field(default_factory=list)

    def aliases(self) -> dict[str, str]:
        out = {self.base_alias: self.base_view}
        out.update({j.alias: j.view for j in self.joins})
        return out

    def join(self, alias: str) -> Join | None:
        return next((j for j in self.joins if j.alias == alias), None)


@dataclass
class Dashboard:
    name: str
    file: str
    body: dict[str, t.Any]


@dataclass
class Model:
    name: str
    file: str
    params: dict[str, t.Any]
    files: list[str] = field(default_factory=list)  # included files, in include order


def _plural(block: dict[str, t.Any], key: str) -> list[dict[str, t.Any]]:
    return list(block.get(key, []) or [])


def _filters(params: dict[str, t.Any]) -> list[tuple[str, str]]:
    """``filters: [a: "x", b: "y"]`` as a list of (field, expression)."""
    out = []
    for group in params.get("filters__all", []) or []:
        for item in group:
            out.extend(item.items())
    return out


class Project:
    """A LookML project on disk (the directory holding manifest.lkml)."""

    def __init__(self, root: Path | str, constant_overrides: dict[str, str] | None = None):
        self.root = Path(root).resolve()
        self.issues: list[Issue] = []
        self.parsed: dict[str, dict[str, t.Any]] = {}  # relative path -> lkml dict[str, t.Any]
        self.raw_text: dict[str, str] = {}
        self.constants: dict[str, dict[str, t.Any]] = {}
        self.models: dict[str, Model] = {}
        self.views: dict[str, View] = {}
        self.explores: dict[str, Explore] = {}
        self.datagroups: dict[str, dict[str, t.Any]] = {}
        self.dashboards: dict[str, Dashboard] = {}
        self._overrides = dict(constant_overrides or {})
        self._load()

    # -- helpers -------------------------------------------------------------------------------
    def error(self, where: str, message: str) -> None:
        self.issues.append(Issue("error", where, message))

    def warn(self, where: str, message: str) -> None:
        self.issues.append(Issue("warning", where, message))

    def rel(self, path: Path) -> str:
        return path.resolve().relative_to(self.root).as_posix()

    def constant(self, name: str) -> str | None:
        if name in self._overrides:
            return self._overrides[name]
        c = self.constants.get(name)
        return None if c is None else c.get("value", "")

    def substitute_constants(self, text: str, where: str = "", _depth: int = 0) -> str:
        if text is None or "@{" not in text:
            return text

        def repl(m: re.Match[str]) -> str:
            value = self.constant(m.group(1))
            if value is None:
                self.error(where or "constants", f"unknown constant @{{{m.group(1)}}}")
                return m.group(0)
            return value

        out = CONSTANT_RE.sub(repl, text)
        if "@{" in out and _depth < 10 and out != text:
            return self.substitute_constants(out, where, _depth + 1)
        return out

    # -- loading -------------------------------------------------------------------------------
    def _load(self) -> None:
        files = sorted(p for p in self.root.rglob("*") if p.is_file())
        lkml_files = [p for p in files if p.name.endswith(".lkml")]
        dash_files = [p for p in files if p.name.endswith(".dashboard.lookml")]
        for path in lkml_files:
            rel = self.rel(path)
            text = path.read_text()
            self.raw_text[rel] = text
            try:
                self.parsed[rel] = lkml.load(text)
            except Exception as exc:  # noqa: BLE001 - lkml raises SyntaxError, KeyError, IndexError...
                self.error(rel, f"LookML parse error: {type(exc).__name__}: {exc}")
        for path in dash_files:
            rel = self.rel(path)
            text = path.read_text()
            self.raw_text[rel] = text
            try:
                body = yaml.safe_load(text)
            except yaml.YAMLError as exc:
                self.error(rel, f"dashboard YAML parse error: {exc}")
                continue
            if not isinstance(body, list):
                self.error(rel, "a LookML dashboard file must be a YAML list of dashboards")
                continue
            for dash in body:
                name = (dash or {}).get("dashboard")
                if not name:
                    self.error(rel, "dashboard without a `dashboard:` name")
                    continue
                if name in self.dashboards:
                    self.error(rel, f"duplicate dashboard name {name}")
                self.dashboards[name] = Dashboard(name, rel, dash)

        manifest = self.parsed.get("manifest.lkml")
        if manifest is None and "manifest.lkml" not in self.raw_text:
            self.error("manifest.lkml", "missing manifest.lkml")
        for c in _plural(manifest or {}, "constants"):
            self.constants[c["name"]] = c

        # models: *.model.lkml; each include pulls files in order (Looker semantics)
        for rel, doc in self.parsed.items():
            if rel.endswith(".model.lkml"):
                name = Path(rel).name[: -len(".model.lkml")]
                model = Model(name, rel, doc)
                seen: set[str] = set()
                self._include(rel, doc, model.files, seen)
                self.models[name] = model
        if not self.models:
            self.error("models", "no *.model.lkml file")

        # views: definitions first, then refinements in include order of the (first) model
        order: list[str] = []
        for model in self.models.values():
            for f in model.files:
                if f not in order:
                    order.append(f)
        for rel in self.parsed:
            if rel not in order and rel != "manifest.lkml" and not rel.endswith(".model.lkml"):
                self.warn(rel, "file is not included by any model")
        definitions: dict[str, tuple[str, dict[str, t.Any]]] = {}
        refinements: list[tuple[str, dict[str, t.Any]]] = []
        for rel in order:
            for v in _plural(self.parsed.get(rel, {}), "views"):
                if v["name"].startswith("+"):
                    refinements.append((rel, v))
                elif v["name"] in definitions and definitions[v["name"]][0] != rel:
                    self.error(rel, f"view {v['name']} is also defined in {definitions[v['name']][0]}")
                else:
                    definitions[v["name"]] = (rel, v)
        raw_views: dict[str, tuple[str, dict[str, t.Any]]] = {
            k: (r, copy.deepcopy(v)) for k, (r, v) in definitions.items()
        }
        for rel, ref in refinements:
            target = ref["name"][1:]
            if target not in raw_views:
                self.error(rel, f"refinement +{target} of an unknown view")
                continue
            raw_views[target] = (raw_views[target][0], _merge_view(raw_views[target][1], ref, rel, self))
        for name, (rel, raw) in raw_views.items():
            self.views[name] = self._build_view(name, rel, raw, raw_views)

        for rel in order:
            doc = self.parsed.get(rel, {})
            for dg in _plural(doc, "datagroups"):
                self.datagroups[dg["name"]] = dg
            for ex in _plural(doc, "explores"):
                self._add_explore(rel, ex)

    def _include(self, rel: str, doc: dict[str, t.Any], out: list[str], seen: set[str]) -> None:
        for pattern in doc.get("includes", []) or []:
            matches = self._glob(pattern, rel)
            if not matches:
                self.error(rel, f"include {pattern!r} matches no file")
            for m in matches:
                if m in seen:
                    continue
                seen.add(m)
                out.append(m)
                if m in self.parsed:
                    self._include(m, self.parsed[m], out, seen)

    def _glob(self, pattern: str, from_rel: str) -> list[str]:
        """Looker include globs: ``*`` stays inside a directory, ``**`` crosses directories, and an
        extension-less pattern (``/views/*.view``) matches ``.lkml`` / ``.lookml`` files."""
        if pattern.startswith("//"):
            return []  # remote / local_dependency projects are not part of this project
        if pattern.startswith("/"):
            pat = pattern.lstrip("/")
        else:
            parent = Path(from_rel).parent.as_posix()
            pat = pattern if parent in ("", ".") else f"{parent}/{pattern}"
        regex = ""
        i = 0
        while i < len(pat):
            if pat.startswith("**/", i):
                regex, i = regex + "(?:.*/)?", i + 3
            elif pat.startswith("**", i):
                regex, i = regex + ".*", i + 2
            elif pat[i] == "*":
                regex, i = regex + "[^/]*", i + 1
            else:
                regex, i = regex + re.escape(pat[i]), i + 1
        rx = re.compile(rf"^{regex}(?:\.lkml|\.lookml)?$")
        candidates = set(self.parsed) | set(self.raw_text)
        return sorted(c for c in candidates if rx.match(c))

    def _build_view(
        self,
        name: str,
        rel: str,
        raw: dict[str, t.Any],
        raw_views: dict[str, t.Any],
        _stack: tuple[t.Any, ...] = (),
    ) -> View:
        raw = copy.deepcopy(raw)
        parents = [p for group in raw.get("extends__all", []) or [] for p in group]
        parents += list(raw.get("extends", []) or [])
        for parent in parents:
            if parent in _stack:
                self.error(rel, f"view {name}: extends cycle through {parent}")
                continue
            if parent not in raw_views:
                self.error(rel, f"view {name} extends unknown view {parent}")
                continue
            base = copy.deepcopy(raw_views[parent][1])
            base.pop("extension", None)
            raw = _merge_view(base, raw, rel, self, extending=True)
        view = View(name=name, file=rel)
        for key, value in raw.items():
            if key not in (
                "dimensions",
                "dimension_groups",
                "measures",
                "parameters",
                "filters",
                "sets",
                "name",
            ):
                view.params[key] = value
        for d in _plural(raw, "dimensions"):
            view.dimensions[d["name"]] = d
        for g in _plural(raw, "dimension_groups"):
            view.groups[g["name"]] = g
        for m in _plural(raw, "measures"):
            view.measures[m["name"]] = m
        for p in _plural(raw, "parameters"):
            view.parameters[p["name"]] = p
        for f in _plural(raw, "filters"):
            view.filters[f["name"]] = f
        for s in _plural(raw, "sets"):
            view.sets[s["name"]] = s.get("fields", [])
        self._expand_fields(view)
        return view

    def _expand_fields(self, view: View) -> None:
        def add(f: Field) -> None:
            if f.name in view.fields:
                self.error(view.file, f"view {view.name}: field {f.name} is defined twice")
            view.fields[f.name] = f

        for name, d in view.dimensions.items():
            typ = d.get("type") or "string"
            add(Field(view.name, name, "dimension", typ, d))
        for name, g in view.groups.items():
            typ = g.get("type", "time")
            if typ == "time":
                tfs = g.get("timeframes") or ["raw", "time", "date", "week", "month", "quarter", "year"]
                for tf in tfs:
                    if tf not in TIME_TIMEFRAMES:
                        self.error(
                            view.file, f"view {view.name}: dimension_group {name}: unknown timeframe {tf}"
                        )
                    add(Field(view.name, f"{name}_{tf}", "dimension", "time", g, group=name, timeframe=tf))
            elif typ == "duration":
                for iv in g.get("intervals") or ["day", "hour", "minute", "second"]:
                    if iv not in DURATION_INTERVALS:
                        self.error(
                            view.file, f"view {view.name}: dimension_group {name}: unknown interval {iv}"
                        )
                    add(
                        Field(view.name, f"{iv}s_{name}", "dimension", "duration", g, group=name, interval=iv)
                    )
            else:
                self.error(view.file, f"view {view.name}: dimension_group {name}: unknown type {typ}")
        for name, m in view.measures.items():
            typ = m.get("type", "count")
            if typ not in MEASURE_TYPES:
                self.error(view.file, f"view {view.name}: measure {name}: unknown type {typ}")
            add(Field(view.name, name, "measure", typ, m))
        for name, p in view.parameters.items():
            add(Field(view.name, name, "parameter", p.get("type", "string"), p))
        for name, f in view.filters.items():
            add(Field(view.name, name, "filter", f.get("type", "string"), f))

    def _add_explore(self, rel: str, ex: dict[str, t.Any]) -> None:
        name = ex["name"]
        model = next((m.name for m in self.models.values() if rel in m.files), None)
        if name in self.explores:
            self.error(rel, f"explore {name} is defined twice")
        base_view = ex.get("view_name") or ex.get("from") or name
        base_alias = ex.get("view_name") or name
        if ex.get("from") and not ex.get("view_name"):
            base_alias = name
        explore = Explore(name, model or "", rel, ex, base_alias, base_view)
        if base_view not in self.views:
            self.error(rel, f"explore {name}: unknown base view {base_view}")
        for j in _plural(ex, "joins"):
            view = j.get("from") or j["name"]
            if view not in self.views:
                self.error(rel, f"explore {name}: join {j['name']} -> unknown view {view}")
            if "relationship" not in j:
                self.error(rel, f"explore {name}: join {j['name']} has no relationship")
            if "sql_on" not in j and "foreign_key" not in j and j.get("type") != "cross":
                self.error(rel, f"explore {name}: join {j['name']} has no sql_on")
            if explore.join(j["name"]) or j["name"] == base_alias:
                self.error(rel, f"explore {name}: join alias {j['name']} used twice")
            explore.joins.append(Join(j["name"], view, j))
        self.explores[name] = explore

    # -- queries about the assembled project ----------------------------------------------------
    def view_for(self, explore: Explore, alias: str) -> View | None:
        view = explore.aliases().get(alias)
        return self.views.get(view) if view else None

    def explore_fields(self, explore: Explore) -> dict[str, Field]:
        """Fields a query (or dashboard) may use in the explore: ``alias.field`` -> Field."""
        out: dict[str, Field] = {}
        restrict = explore.params.get("fields")
        for alias, view_name in explore.aliases().items():
            view = self.views.get(view_name)
            if view is None:
                continue
            join = explore.join(alias)
            allowed = None
            if join is not None and "fields" in join.params:
                allowed = self.expand_field_list(join.params["fields"], view, alias)
            for fname, f in view.fields.items():
                full = f"{alias}.{fname}"
                if allowed is not None and full not in allowed:
                    continue
                out[full] = f
        if restrict:
            allowed = set()
            for alias, view_name in explore.aliases().items():
                view = self.views.get(view_name)
                if view:
                    allowed |= self.expand_field_list(restrict, view, alias)
            out = {k: v for k, v in out.items() if k in allowed}
        return out

    def expand_field_list(self, items: list[str], view: View, alias: str) -> set[str]:
        out: set[str] = set()
        negative: set[str] = set()
        for item in items or []:
            neg = item.startswith("-")
            item = item.lstrip("-")
            names: set[str]
            if item == "ALL_FIELDS*":
                names = {f"{alias}.{n}" for n in view.fields}
            elif item.endswith("*"):
                set_name = item[:-1]
                if "." in set_name:
                    a, s = set_name.split(".", 1)
                    names = {
                        x if "." in x else f"{a}.{x}" for x in (view.sets.get(s, []) if a == alias else [])
                    }
                else:
                    names = {x if "." in x else f"{alias}.{x}" for x in view.sets.get(set_name, [])}
            else:
                names = {item if "." in item else f"{alias}.{item}"}
            (negative if neg else out).update(names)
        return out - negative


def _merge_field_lists(base: list[dict[str, t.Any]], extra: list[dict[str, t.Any]]) -> list[dict[str, t.Any]]:
    by_name = {f["name"]: copy.deepcopy(f) for f in base}
    order = [f["name"] for f in base]
    for f in extra:
        if f["name"] in by_name:
            by_name[f["name"]].update(copy.deepcopy(f))
        else:
            by_name[f["name"]] = copy.deepcopy(f)
            order.append(f["name"])
    return [by_name[n] for n in order]


def _merge_view(
    base: dict[str, t.Any], extra: dict[str, t.Any], rel: str, project: Project, extending: bool = False
) -> dict[str, t.Any]:
    """Refinement / extension merge: fields merge by name (parameters override), others override."""
    out = copy.deepcopy(base)
    # duplicate field names inside one block are a LookML error even before merging
    for key in ("dimensions", "dimension_groups", "measures", "parameters", "filters"):
        names = [f["name"] for f in extra.get(key, []) or []]
        dupes = {n for n in names if names.count(n) > 1}
        for n in sorted(dupes):
            project.error(rel, f"view {extra['name']}: {key[:-1]} {n} declared twice in one block")
    for key, value in extra.items():
        if key == "name":
            continue
        if key in ("dimensions", "dimension_groups", "measures", "parameters", "filters", "sets"):
            out[key] = _merge_field_lists(out.get(key, []) or [], value or [])
        elif key in ("extends", "extends__all"):
            if not extending:
                out[key] = value
        else:
            out[key] = copy.deepcopy(value)
    return out


__all__ = [
    "CONSTANT_RE",
    "REF_RE",
    "Dashboard",
    "Explore",
    "Field",
    "Issue",
    "Join",
    "Model",
    "Project",
    "View",
    "_filters",
]
