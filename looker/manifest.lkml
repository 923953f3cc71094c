#########################################################{
# PURPOSE
# Every value that differs per installation. Set the exported ones in your Looker project
# (or in the importing project's `override_constant:`); leave the internal ones alone.
#
# REFERENCED BY
# models/freshbooks.model.lkml (connection), every view (schema, decimal type),
# refinements (fiscal year, DSO window), components/datagroups.lkml (schema).
#
# HOW TO USE
# CONNECTION_NAME and SCHEMA_NAME are all most installs change. See looker/README.md.
#########################################################}

project_name: "freshbooks"

# The Looker connection that reaches the warehouse the pipeline loads (Admin > Connections).
# Its Database Time Zone must be UTC: every timestamp the pipeline writes is UTC.
constant: CONNECTION_NAME {
  value: "freshbooks_warehouse"
  export: override_required
}

# Schema (PostgreSQL / Redshift / Snowflake) or dataset (BigQuery) holding one table per stream.
# It is the loader's default_target_schema in meltano.yml: `freshbooks` (Snowflake: FRESHBOOKS,
# which unquoted identifiers match).
constant: SCHEMA_NAME {
  value: "freshbooks"
  export: override_optional
}

# Months between January and the first month of your fiscal year: 0 = calendar year,
# 3 = fiscal year starting in April, 6 = July. Fiscal years are named by the calendar year they
# end in. Drives the Fiscal Year / Fiscal Quarter dimensions and every FYTD measure.
constant: FISCAL_MONTH_OFFSET {
  value: "0"
  export: override_optional
}

# Days of invoicing that Days Sales Outstanding (DSO) compares open receivables with.
constant: DSO_WINDOW_DAYS {
  value: "90"
  export: override_optional
}

# Cost centers (looker/README.md, "Cost centers"). FreshBooks has no cost-center object: the
# Cost Center dimension of invoice lines is mapped from one source, chosen here:
#   client   the invoice's client (key: client id, FreshBooks userid / customerid)
#   project  the line's project (key: project id)
#   service  the line's item / service (key: the line's name, as FreshBooks copies it)
# A key without a mapping shows the source's own name (client, project title, item / service).
constant: COST_CENTER_SOURCE {
  value: "client"
  export: override_optional
}

# The mapping table in SCHEMA_NAME, with columns account_id, source, source_key, cost_center:
# empty = no mapping table (every cost center is the source's name). Load it from a CSV with
# `freshbooks-looker cost-centers --csv FILE ...` (it becomes SCHEMA_NAME.cost_centers).
constant: COST_CENTER_TABLE {
  value: ""
  export: override_optional
}

# --- internal: dialect-portable SQL fragments (do not override) --------------------------------

# Money and other exact decimals. FreshBooks sends decimal strings with up to 27 decimals
# (x-singer.decimal); every branch keeps all 27 (looker/README.md, "Exact amounts"):
#   PostgreSQL  NUMERIC         arbitrary precision: exact, sums never overflow
#   Redshift    DECIMAL(38,27)  38 digits at most: 11 left of the point, sums error above 10^11
#   Snowflake   NUMBER(38,27)   38 digits at most: 11 left of the point, sums error above 10^11
#   BigQuery    BIGNUMERIC      76 digits, 38 decimals: exact
# The offline check runs DuckDB (no Looker dialect) with DECIMAL(38,27) in place of NUMERIC,
# which DuckDB reads as DECIMAL(18,3) (freshbooks_looker/sqlgen.py, Dialect.constants).
constant: DECIMAL_TYPE {
  value: "{% if _dialect._name == 'bigquery_standard_sql' %}BIGNUMERIC{% elsif _dialect._name == 'snowflake' %}NUMBER(38,27){% elsif _dialect._name == 'redshift' %}DECIMAL(38,27){% else %}NUMERIC{% endif %}"
  export: none
}

# Text type for casting integer ids to the string ids of other tables.
constant: STRING_TYPE {
  value: "{% if _dialect._name == 'bigquery_standard_sql' %}STRING{% else %}VARCHAR{% endif %}"
  export: none
}

# First day of the current calendar month (DATE).
constant: MONTH_START_DATE {
  value: "{% if _dialect._name == 'bigquery_standard_sql' %}DATE_TRUNC(CURRENT_DATE(), MONTH){% else %}CAST(DATE_TRUNC('month', CURRENT_DATE) AS DATE){% endif %}"
  export: none
}

# First day of the current fiscal year (DATE), from FISCAL_MONTH_OFFSET.
constant: FISCAL_YEAR_START_DATE {
  value: "{% if _dialect._name == 'bigquery_standard_sql' %}DATE_ADD(DATE_TRUNC(DATE_SUB(CURRENT_DATE(), INTERVAL @{FISCAL_MONTH_OFFSET} MONTH), YEAR), INTERVAL @{FISCAL_MONTH_OFFSET} MONTH){% else %}CAST(DATE_TRUNC('year', CURRENT_DATE - INTERVAL '@{FISCAL_MONTH_OFFSET} months') + INTERVAL '@{FISCAL_MONTH_OFFSET} months' AS DATE){% endif %}"
  export: none
}

# First day of the DSO window (DATE): today minus DSO_WINDOW_DAYS.
constant: DSO_WINDOW_START_DATE {
  value: "{% if _dialect._name == 'bigquery_standard_sql' %}DATE_SUB(CURRENT_DATE(), INTERVAL @{DSO_WINDOW_DAYS} DAY){% else %}CAST(CURRENT_DATE - INTERVAL '@{DSO_WINDOW_DAYS} days' AS DATE){% endif %}"
  export: none
}
