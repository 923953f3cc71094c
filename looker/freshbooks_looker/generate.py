"""Generate the ``views/<table>_base.view.lkml`` files from the tap's Singer catalog.

One base view per warehouse table, 1:1 with the columns the pipeline loads (the tap runs with
``flattening_enabled: true`` and ``flattening_max_depth: 1``, so a money object ``amount`` lands as
``amount__amount`` + ``amount__code``). The base views carry types, keys, descriptions and formats
only; business logic (labels, measures, buckets) lives in ``refinements/<table>_rfn.view.lkml``.

    freshbooks-looker generate                 # rewrite looker/views/*_base.view.lkml
    freshbooks-looker generate --check         # exit 1 if they are out of date (CI)

Type mapping (what the LookML reads, and why it works in every supported warehouse):

* ``format: x-singer.decimal`` strings -> ``CAST(col AS @{DECIMAL_TYPE})``, 27 decimals kept in every
  dialect: NUMERIC (PostgreSQL), DECIMAL(38,27) (Redshift; DuckDB, whose column is the loader's
  text), NUMBER(38,27) (Snowflake), BIGNUMERIC (BigQuery). Limits: looker/README.md, "Exact amounts".
* ``format: date`` -> a ``datatype: date``, ``convert_tz: no`` dimension group over
  ``CAST(col AS DATE)`` (target-duckdb stores dates as VARCHAR; the cast is a no-op elsewhere).
* ``format: date-time`` -> a time dimension group over the column (UTC in every target).
* integers -> ``number``; booleans -> ``yesno``; arrays / free objects -> hidden JSON strings.
* Column names that are not all lower case (``taxName1``) are not modelled: target-duckdb lower-cases
  them and target-postgres keeps them quoted, so no single identifier works everywhere.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import typing as t
from dataclasses import dataclass, field
from pathlib import Path

from .dialects import Dialect, registered
from .extras import ExtraMissing

PROJECT_DIR = Path(__file__).resolve().parent.parent  # looker/
VIEWS_DIR = PROJECT_DIR / "views"

TIMEFRAMES_TIME = ["raw", "time", "date", "week", "month", "quarter", "year"]
TIMEFRAMES_DATE = ["raw", "date", "week", "month", "quarter", "year"]

#: Column renames that make field names readable and avoid LookML-awkward names (``type``, ``date``).
#: Keys are (table, flattened column); ``*`` applies to every table.
RENAMES: dict[tuple[str, str], str] = {
    ("*", "_fb_extracted_at"): "fb_extracted",
    ("*", "_fb_event_received_at"): "fb_event_received",
    ("*", "_fb_trigger"): "fb_trigger",
    ("*", "_sdc_batched_at"): "loaded",
    ("*", "type"): "record_type",
    ("*", "code"): "postal_code",
    ("invoices", "create_date"): "created_on",
    ("credit_notes", "create_date"): "created_on",
    ("payments", "date"): "payment",
    ("payments", "type"): "payment_method",
    ("expenses", "date"): "expense",
    ("invoice_lines", "date"): "line",
    ("invoice_lines", "type"): "line_type",
    ("estimates", "create_date"): "created_on",
    ("invoice_profiles", "create_date"): "created_on",
    ("estimate_lines", "date"): "line",
    ("estimate_lines", "type"): "line_type",
    ("invoice_profile_lines", "date"): "line",
    ("invoice_profile_lines", "type"): "line_type",
    ("report_profit_loss", "report_date"): "snapshot",
    ("report_profit_loss", "start_date"): "period_start",
    ("report_profit_loss", "end_date"): "period_end",
    ("report_profit_loss", "report"): "report_json",
    ("report_tax_summary", "report_date"): "snapshot",
    ("report_tax_summary", "start_date"): "period_start",
    ("report_tax_summary", "end_date"): "period_end",
    ("report_tax_summary", "report"): "report_json",
    ("report_accounts_aging", "report_date"): "snapshot",
    ("report_accounts_aging", "start_date"): "period_start",
    ("report_accounts_aging", "end_date"): "period_end",
    ("report_accounts_aging", "report"): "report_json",
    ("other_incomes", "date"): "income",
    ("journal_entry_details", "user_entered_date"): "entry",
    ("journal_entry_details", "account__id"): "gl_account_legacy_id",
    ("journal_entry_details", "account__accountid"): "gl_accountid",
    ("journal_entry_details", "account__account_name"): "gl_account_name",
    ("journal_entry_details", "account__account_number"): "gl_account_number",
    ("journal_entry_details", "account__account_type"): "gl_account_type",
    ("journal_entry_details", "account__accounting_systemid"): "gl_account_systemid",
    ("journal_entry_details", "sub_account__account_sub_name"): "gl_sub_account_name",
    ("journal_entry_details", "sub_account__account_sub_number"): "gl_sub_account_number",
    ("journal_entry_details", "sub_account__id"): "gl_sub_account_legacy_id",
    ("journal_entry_details", "sub_account__sub_accountid"): "gl_sub_accountid",
    ("journal_entry_details", "sub_account__parentid"): "gl_sub_account_parentid",
    ("chart_of_accounts", "type"): "account_type",
    ("chart_of_accounts", "number"): "account_number",
    ("chart_of_accounts", "name"): "account_name",
    ("taxes", "number"): "registration_number",
    ("taxes", "amount"): "rate_percent",
    ("bill_payments", "paid_date"): "paid",
    ("bills", "issue_date"): "issue",
    ("invoices", "due_date"): "due",
    ("bills", "due_date"): "due",
    ("projects", "due_date"): "due",
    ("invoices", "generation_date"): "generation",
    ("clients", "signup_date"): "signup",
    ("staff", "signup_date"): "signup",
    ("time_entries", "started_at"): "started",
}

#: Key properties that are not (account_id, id) - the tap declares them; kept here for docs only.
GROUP_LABELS = {"audit": "Audit (pipeline)", "money": "Amounts", "dates": "Dates", "ids": "IDs"}


@dataclass
class Column:
    name: str  # warehouse column
    field: str  # LookML name (dimension / dimension group / money pair stem)
    kind: str  # money_amount | money_code | decimal | integer | boolean | date | timestamp | string | json
    description: str
    money_stem: str | None = None


@dataclass
class Table:
    name: str
    keys: list[str]
    columns: list[Column] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def _rename(table: str, column: str) -> str | None:
    return RENAMES.get((table, column)) or RENAMES.get(("*", column))


def _base_name(table: str, column: str) -> str:
    renamed = _rename(table, column)
    if renamed:
        return renamed
    if column.endswith("_at") and not column.startswith("_"):
        return column[: -len("_at")]
    if column.endswith("_date"):
        return column[: -len("_date")]
    return column.lstrip("_")


def _kind(prop: dict[str, t.Any]) -> str:
    types = prop.get("type", [])
    types = [types] if isinstance(types, str) else list(types)
    fmt = prop.get("format")
    if "object" in types or "array" in types or not types:
        return "json"
    if fmt == "x-singer.decimal":
        return "decimal"
    if fmt == "date-time":
        return "timestamp"
    if fmt == "date":
        return "date"
    if "integer" in types:
        return "integer"
    if "number" in types:
        return "decimal"
    if "boolean" in types:
        return "boolean"
    return "string"


def tables_from_catalog(catalog: dict[str, t.Any]) -> list[Table]:
    """Flatten each stream's schema like the tap does (max depth 1) and map it to columns."""
    out = []
    for stream in sorted(catalog["streams"], key=lambda s: s["tap_stream_id"]):
        name = stream["tap_stream_id"]
        flat = _flatten(stream["schema"])
        table = Table(name=name, keys=list(stream.get("key_properties") or []))
        props: dict[str, t.Any] = flat["properties"]
        money_stems = {
            col[: -len("__amount")]
            for col in props
            if col.endswith("__amount") and f"{col[: -len('__amount')]}__code" in props
        }
        used: set[str] = set()
        for col, prop in props.items():
            if col != col.lower():
                table.skipped.append(col)
                continue
            kind = _kind(prop)
            desc = (prop.get("description") or "").strip()
            stem = None
            if col.endswith("__amount") and col[: -len("__amount")] in money_stems:
                stem = col[: -len("__amount")]
                fname, kind = _base_name(name, stem), "money_amount"
            elif col.endswith("__code") and col[: -len("__code")] in money_stems:
                stem = col[: -len("__code")]
                fname, kind = f"{_base_name(name, stem)}_currency", "money_code"
            else:
                fname = _base_name(name, col)
                if "__" in col and not _rename(name, col):
                    parent, child = col.split("__", 1)
                    fname = child if child.startswith(parent) else f"{parent}_{child}"
            if fname in used or fname in {"pk", "is_deleted", "record_status"}:
                fname = col.strip("_")
            used.add(fname)
            table.columns.append(Column(col, fname, kind, desc, stem))
        # Target metadata: every supported loader adds _sdc_batched_at (target-duckdb with
        # add_metadata_columns, the SDK targets with add_record_metadata).
        table.columns.append(
            Column(
                "_sdc_batched_at",
                "loaded",
                "timestamp",
                "When the loader wrote this row (target metadata, UTC); the freshness dashboard and "
                "the datagroup read its maximum",
            )
        )
        out.append(table)
    return out


def _q(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', "'")


def _describe(table: str, col: Column) -> str:
    if col.kind == "money_amount":
        base = f"Exact decimal amount of `{col.money_stem}`, in the currency of {col.field}_currency."
    elif col.kind == "money_code":
        base = f"ISO 4217 currency code of `{col.money_stem}`."
    elif col.description:
        base = col.description.rstrip(".") + "."
    else:
        base = f"FreshBooks {table}.{col.name}."
    return _q(f"{base} Column `{col.name}`.")


def _group(col: Column) -> str:
    if col.name.startswith("_"):
        return GROUP_LABELS["audit"]
    if col.kind in ("money_amount", "money_code"):
        return GROUP_LABELS["money"]
    if col.kind in ("date", "timestamp"):
        return GROUP_LABELS["dates"]
    if col.kind == "integer" and (col.name.endswith("id") or col.name.endswith("_id")):
        return GROUP_LABELS["ids"]
    return ""


def render_view(table: Table) -> str:
    lines = [
        "# GENERATED by `freshbooks-looker generate` from the tap-freshbooks catalog: do not edit.",
        f"# Table {table.name}: one row per FreshBooks record, keys ({', '.join(table.keys)}).",
        f"# Business logic, labels and measures: refinements/{table.name}_rfn.view.lkml.",
    ]
    if table.skipped:
        lines.append(
            "# Not modelled (mixed-case column names differ between targets): " + ", ".join(table.skipped)
        )
    lines += ["", f"view: {table.name} {{", f"  sql_table_name: @{{SCHEMA_NAME}}.{table.name} ;;", ""]
    key_sql = " || '|' || ".join(f"${{TABLE}}.{k}" for k in table.keys)
    lines += [
        "  dimension: pk {",
        "    primary_key: yes",
        "    hidden: yes",
        "    type: string",
        f'    description: "Primary key: {" | ".join(table.keys)} (ids are unique per FreshBooks account only)."',
        f"    sql: {key_sql} ;;",
        "  }",
        "",
    ]
    names = {c.name for c in table.columns}
    for col in table.columns:
        group = _group(col)
        gl = f'    group_label: "{group}"\n' if group else ""
        desc = _describe(table.name, col)
        ref = f"${{TABLE}}.{col.name}"
        if col.kind in ("date", "timestamp"):
            is_date = col.kind == "date"
            tfs = TIMEFRAMES_DATE if is_date else TIMEFRAMES_TIME
            sql = f"CAST({ref} AS DATE)" if is_date else ref
            extra = "    convert_tz: no\n    datatype: date\n" if is_date else ""
            lines.append(
                f"  dimension_group: {col.field} {{\n    type: time\n"
                f"    timeframes: [{', '.join(tfs)}]\n{extra}{gl}"
                f'    description: "{desc}"\n    sql: {sql} ;;\n  }}\n'
            )
            continue
        if col.kind in ("money_amount", "decimal"):
            typ, sql, fmt = "number", f"CAST({ref} AS @{{DECIMAL_TYPE}})", "decimal_2"
            if col.kind == "decimal":
                fmt = "decimal_4"
        elif col.kind == "integer":
            typ, sql = "number", ref
            fmt = "id" if col.name.endswith("id") or col.name.endswith("_id") else "decimal_0"
        elif col.kind == "boolean":
            typ, sql, fmt = "yesno", ref, None
        else:
            typ, sql, fmt = "string", ref, None
        hidden = "    hidden: yes\n" if col.kind == "json" or col.name.startswith("_sdc") else ""
        vf = f"    value_format_name: {fmt}\n" if fmt else ""
        lines.append(
            f"  dimension: {col.field} {{\n    type: {typ}\n{hidden}{gl}"
            f'    description: "{desc}"\n    sql: {sql} ;;\n{vf}  }}\n'
        )
    if "vis_state" in names:
        lines.append(
            "  dimension: is_deleted {\n    type: yesno\n"
            '    description: "Yes when FreshBooks marks the record deleted (vis_state 1). Deleted rows '
            'are kept in the warehouse; explores hide them unless Include Deleted Records is Yes."\n'
            "    sql: COALESCE(${TABLE}.vis_state, 0) = 1 ;;\n  }\n"
        )
        lines.append(
            "  dimension: record_status {\n    type: string\n"
            '    description: "Active, Deleted or Archived (from vis_state 0 / 1 / 2)."\n'
            "    sql: CASE COALESCE(${TABLE}.vis_state, 0) WHEN 0 THEN 'Active' WHEN 1 THEN 'Deleted' "
            "WHEN 2 THEN 'Archived' ELSE 'Other' END ;;\n  }\n"
        )
    lines.append("}")
    return "\n".join(lines).rstrip() + "\n"


def _union(tables: list[Table], select: t.Callable[[Table], str]) -> str:
    return "\n      UNION ALL\n".join(
        f"      {select(tb)}\n      FROM @{{SCHEMA_NAME}}.{tb.name}" for tb in tables
    )


#: the stream_freshness times: (field, column whose newest value it is, what that time says)
FRESHNESS_TIMES = (
    ("last_loaded", "_sdc_batched_at", "when the loader last wrote a row of this stream"),
    ("last_extracted", "_fb_extracted_at", "when the tap last fetched a changed record of this stream"),
    ("last_webhook", "_fb_event_received_at", "the last webhook that caused a fetch of this stream"),
)


def render_freshness(tables: list[Table]) -> str:
    """The stream_freshness derived view: last load per stream (freshness dashboard)."""

    def select(tb: Table) -> str:
        deleted = (
            "SUM(CASE WHEN vis_state = 1 THEN 1 ELSE 0 END)"
            if any(c.name == "vis_state" for c in tb.columns)
            else "CAST(NULL AS BIGINT)"
        )
        newest = ", ".join(f"MAX({column}) AS {field}_at" for field, column, _ in FRESHNESS_TIMES)
        return f"SELECT '{tb.name}' AS stream, COUNT(*) AS row_count, {deleted} AS deleted_rows, {newest}"

    time_groups = "".join(
        f"""  dimension_group: {field} {{
    label: "{field.replace("_", " ").title()}"
    description: "Newest {column}: {what} (UTC)."
    type: time
    timeframes: [raw, time, date]
    sql: ${{TABLE}}.{field}_at ;;
  }}

"""
        for field, column, what in FRESHNESS_TIMES
    )

    return f"""# GENERATED by `freshbooks-looker generate` (one branch per stream): do not edit.
#########################################################{{
# PURPOSE
# Freshness: one row per stream (warehouse table) with its row count, deleted rows and the last
# time the loader wrote it, the tap extracted from it, and a webhook triggered a fetch.
#
# SOURCES
# SQL-derived table over every stream table (_sdc_batched_at from the loader, _fb_* from the tap).
#
# REFERENCED BY
# Explore stream_freshness. Dashboard 9_freshness.
#########################################################}}

view: stream_freshness {{
  label: "Stream Freshness"

  derived_table: {{
    sql:
{_union(tables, select)} ;;
  }}

  dimension: stream {{
    primary_key: yes
    label: "Stream"
    description: "Stream (table) name."
    type: string
    sql: ${{TABLE}}.stream ;;
  }}

  dimension: row_count {{
    label: "Rows"
    description: "Rows in the table, deleted FreshBooks records included."
    type: number
    sql: ${{TABLE}}.row_count ;;
    value_format_name: decimal_0
  }}

  dimension: deleted_rows {{
    label: "Deleted Rows"
    description: "Rows FreshBooks marks deleted (vis_state 1); empty for streams without vis_state."
    type: number
    sql: ${{TABLE}}.deleted_rows ;;
    value_format_name: decimal_0
  }}

{time_groups}  dimension_group: since_last_load {{
    label: "Since Last Load"
    description: "Time from the last load of this stream to now."
    type: duration
    intervals: [minute, hour, day]
    sql_start: ${{last_loaded_raw}} ;;
    sql_end: CURRENT_TIMESTAMP ;;
  }}

  measure: total_rows {{
    label: "Total Rows"
    description: "Sum of rows over the streams in the row."
    type: sum
    sql: ${{row_count}} ;;
    value_format_name: decimal_0
  }}

  measure: newest_load {{
    label: "Newest Load"
    description: "The most recent load time over the streams in the row (UTC)."
    type: max
    sql: ${{last_loaded_raw}} ;;
  }}

  measure: oldest_load {{
    label: "Oldest Load"
    description: "The least recent last-load time over the streams in the row (UTC): the stalest stream."
    type: min
    sql: ${{last_loaded_raw}} ;;
  }}
}}
"""


def render_datagroups(tables: list[Table]) -> str:
    branches = _union(tables, lambda _tb: "SELECT MAX(_sdc_batched_at) AS loaded_at")
    return f"""# GENERATED by `freshbooks-looker generate` (one branch per stream): do not edit.
#########################################################{{
# PURPOSE
# The caching policy of the model. Looker runs sql_trigger on the connection's "PDT and
# Datagroup Maintenance Schedule" (default every 5 minutes); when the newest load timestamp over
# all stream tables changes, cached results are invalidated. After each pipeline run,
# `freshbooks-looker refresh` (Meltano utility) also resets the datagroup through the Looker API,
# so dashboards do not wait for the next check. max_cache_age is the fail-safe.
#
# REFERENCED BY
# models/freshbooks.model.lkml (persist_with).
#########################################################}}

datagroup: freshbooks_load {{
  label: "FreshBooks load"
  description: "Triggers when the pipeline loads new rows: newest _sdc_batched_at over every stream table."
  sql_trigger:
    SELECT MAX(loaded_at) FROM (
{branches}
    ) AS loads ;;
  max_cache_age: "24 hours"
}}
"""


MANIFEST_MARKER = "# --- internal: dialect-portable SQL fragments (do not override) "
#: what each internal constant of the manifest is for (its comment); the values come from dialects.py
CONSTANT_DOCS = {
    "DECIMAL_TYPE": "Money and other exact decimals. FreshBooks sends decimal strings with up to 27 decimals\n"
    '(x-singer.decimal); every branch keeps all 27 (looker/README.md, "Exact amounts"):',
    "STRING_TYPE": "Text type for casting integer ids to the string ids of other tables.",
    "MONTH_START_DATE": "First day of the current calendar month (DATE).",
    "FISCAL_YEAR_START_DATE": "First day of the current fiscal year (DATE), from FISCAL_MONTH_OFFSET.",
    "DSO_WINDOW_START_DATE": "First day of the DSO window (DATE): today minus DSO_WINDOW_DAYS.",
}


def liquid_branches(values: dict[Dialect, str]) -> str:
    """One Liquid value for a constant: a branch per Looker dialect that differs from the default."""
    default = next(d for d in values if d.liquid_default)
    branches = [(d, v) for d, v in values.items() if d.is_looker and v != values[default]]
    if not branches:
        return values[default]
    out = "".join(
        f"{{% {'if' if i == 0 else 'elsif'} _dialect._name == '{d.name}' %}}{v}"
        for i, (d, v) in enumerate(branches)
    )
    return f"{out}{{% else %}}{values[default]}{{% endif %}}"


def render_manifest_constants() -> str:
    """The internal constants of manifest.lkml, from the dialect registry."""
    dialects = registered()
    lines = [
        MANIFEST_MARKER.ljust(97, "-"),
        "# GENERATED by `freshbooks-looker generate` from freshbooks_looker/dialects.py (one class per",
        "# warehouse): change a dialect there, not here.",
    ]
    for name, doc in CONSTANT_DOCS.items():
        lines += ["", *(f"# {line}" for line in doc.splitlines())]
        if name == "DECIMAL_TYPE":
            width = max(len(d.label) for d in dialects) + 2
            for d in dialects:
                lines.append(f"#   {d.label.ljust(width)}{d.decimal_type.ljust(16)}{d.decimal_note}")
                if not d.is_looker:
                    lines.append(
                        f"#   {''.ljust(width)}(no Looker dialect: Looker reaches it through {d.liquid_name}; "
                        "the offline check uses this type)"
                    )
        value = liquid_branches({d: d.constants[name] for d in dialects})
        lines += [f"constant: {name} {{", f'  value: "{value}"', "  export: none", "}"]
    return "\n".join(lines) + "\n"


def render_manifest(current: str) -> str:
    """manifest.lkml with its generated part (everything from MANIFEST_MARKER on) rewritten."""
    head = current.split(MANIFEST_MARKER, 1)[0]
    return head + render_manifest_constants()


NEEDS_TAP = (
    "freshbooks-looker generate reads the tap's catalog: run it where tap-freshbooks "
    "(freshbooks-warehouse-tap) is installed, e.g. the project's .venv"
)


def _flatten(schema: dict[str, t.Any]) -> dict[str, t.Any]:
    """The stream's schema flattened as the pipeline flattens it (singer-sdk, max depth 1)."""
    try:
        from singer_sdk.helpers._flattening import flatten_schema  # noqa: PLC0415 - the tap's SDK, dev only
    except ModuleNotFoundError as exc:
        raise ExtraMissing(NEEDS_TAP) from exc
    return flatten_schema(schema, max_level=1)


def discover_catalog() -> dict[str, t.Any]:
    """Run ``tap-freshbooks --discover`` (no credentials needed) and return the catalog."""
    exe = Path(sys.executable).with_name("tap-freshbooks")
    if not exe.exists() and shutil.which("tap-freshbooks") is None:
        raise ExtraMissing(NEEDS_TAP)
    proc = subprocess.run(
        [str(exe) if exe.exists() else "tap-freshbooks", "--discover"],
        capture_output=True,
        text=True,
        check=True,
    )
    catalog: dict[str, t.Any] = json.loads(proc.stdout)
    return catalog


def generate(catalog: dict[str, t.Any] | None = None, views_dir: Path = VIEWS_DIR) -> dict[Path, str]:
    catalog = catalog or discover_catalog()
    tables = tables_from_catalog(catalog)
    files = {views_dir / f"{table.name}_base.view.lkml": render_view(table) for table in tables}
    files[views_dir / "stream_freshness_sdt.view.lkml"] = render_freshness(tables)
    files[views_dir.parent / "components" / "datagroups.lkml"] = render_datagroups(tables)
    manifest = views_dir.parent / "manifest.lkml"
    files[manifest] = render_manifest(manifest.read_text())
    return files


def write(files: dict[Path, str]) -> list[Path]:
    changed = []
    for path, text in files.items():
        if not path.exists() or path.read_text() != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            changed.append(path)
    return changed


def stale(files: dict[Path, str]) -> list[Path]:
    return [p for p, text in files.items() if not p.exists() or p.read_text() != text]
