#########################################################{
# PURPOSE
# The cost-center mapping: one row per (account, key of the COST_CENTER_SOURCE) with the cost
# center it belongs to. FreshBooks has no cost centers; finance keeps them in a CSV that
# `freshbooks-looker cost-centers` loads into SCHEMA_NAME.cost_centers.
#
# SOURCES
# SQL-derived table over @{COST_CENTER_TABLE} (rows whose source is COST_CENTER_SOURCE); an empty
# table when COST_CENTER_TABLE is empty, so Cost Center falls back to the source's own name.
#
# REFERENCED BY
# Explore invoices (joined to the invoice lines). Dashboard 1_revenue.
#########################################################}

view: cost_centers {
  label: "Cost Centers"

  derived_table: {
    sql:
      {% if '@{COST_CENTER_TABLE}' != '' %}
      SELECT CAST(account_id AS @{STRING_TYPE}) AS account_id,
             CAST(source_key AS @{STRING_TYPE}) AS source_key, cost_center
      FROM @{SCHEMA_NAME}.@{COST_CENTER_TABLE}
      WHERE LOWER(source) = '@{COST_CENTER_SOURCE}'
      {% else %}
      SELECT CAST(NULL AS @{STRING_TYPE}) AS account_id, CAST(NULL AS @{STRING_TYPE}) AS source_key,
             CAST(NULL AS @{STRING_TYPE}) AS cost_center
      FROM @{SCHEMA_NAME}.invoices WHERE 1 = 0
      {% endif %} ;;
  }

  dimension: pk {
    primary_key: yes
    hidden: yes
    type: string
    description: "Primary key: account_id | source key (one cost center per key)."
    sql: ${TABLE}.account_id || '|' || ${TABLE}.source_key ;;
  }

  dimension: account_id {
    hidden: yes
    type: string
    description: "FreshBooks account id."
    sql: ${TABLE}.account_id ;;
  }

  dimension: source_key {
    hidden: yes
    type: string
    description: "Client id, project id or item / service name, per COST_CENTER_SOURCE."
    sql: ${TABLE}.source_key ;;
  }

  dimension: is_mapped {
    label: "Cost Center Is Mapped"
    description: "Yes when the mapping table assigns this line's client / project / service to a cost center; No when Cost Center shows the source's own name."
    type: yesno
    sql: ${TABLE}.cost_center IS NOT NULL ;;
  }

  dimension: cost_center {
    label: "Cost Center"
    description: "Cost center of the invoice line, from the mapping table (manifest constants COST_CENTER_SOURCE and COST_CENTER_TABLE); unmapped: the client, project title or item / service name itself, else 'Unassigned'."
    type: string
    sql: COALESCE(${TABLE}.cost_center,
      {% if '@{COST_CENTER_SOURCE}' == 'project' %}${projects.title}{% elsif '@{COST_CENTER_SOURCE}' == 'service' %}${invoice_lines.name}{% else %}${clients.client_name}{% endif %},
      'Unassigned') ;;
  }
}
