#########################################################{
# PURPOSE
# Invoices and what they are made of: revenue by client, item/service, project and period;
# receivables (AR aging, DSO); collected on invoices.
#
# SOURCES
# invoices (base) -> clients, invoice_lines (current lines only) -> items, service_names, projects,
# cost_centers; invoices -> payments; items -> taxes.
#
# HOW TO USE
# Every money measure is per currency (its currency field is added to the query). Deleted
# records are hidden unless Include Deleted Records = Yes. Invoice-level measures are exact with
# lines and payments joined (symmetric aggregates on the primary keys).
#########################################################}

include: "/refinements/invoices_rfn.view.lkml"
include: "/refinements/invoice_lines_rfn.view.lkml"
include: "/refinements/clients_rfn.view.lkml"
include: "/refinements/payments_rfn.view.lkml"
include: "/refinements/items_rfn.view.lkml"
include: "/views/service_names_sdt.view.lkml"
include: "/refinements/projects_rfn.view.lkml"
include: "/refinements/taxes_rfn.view.lkml"
include: "/views/cost_centers_sdt.view.lkml"

explore: invoices {
  label: "Invoices, Revenue & Receivables"
  description: "Revenue by client / item / service / project / period, AR aging, DSO. One row per invoice; lines and payments join below it."
  sql_always_where: {% if invoices.include_deleted._parameter_value == 'yes' %}1 = 1{% else %}NOT ${invoices.is_deleted}{% endif %} ;;

  join: clients {
    type: left_outer
    relationship: many_to_one
    sql_on: ${clients.account_id} = ${invoices.account_id} AND ${clients.userid} = ${invoices.customerid} ;;
  }

  join: invoice_lines {
    type: left_outer
    relationship: one_to_many
    # Lines removed from an invoice stay in the warehouse with an older invoice_updated.
    sql_on: ${invoice_lines.account_id} = ${invoices.account_id}
      AND ${invoice_lines.invoice_id} = ${invoices.id}
      AND ${invoice_lines.invoice_updated_raw} = ${invoices.updated_raw} ;;
  }

  join: items {
    type: left_outer
    relationship: many_to_one
    sql_on: ${items.account_id} = ${invoice_lines.account_id} AND ${items.name} = ${invoice_lines.name}
      AND NOT ${items.is_deleted} ;;
  }

  join: service_names {
    # services by name, deduplicated: FreshBooks service names are not unique
    type: left_outer
    relationship: many_to_one
    sql_on: ${service_names.account_id} = ${invoice_lines.account_id} AND ${service_names.name} = ${invoice_lines.name} ;;
  }

  join: projects {
    type: left_outer
    relationship: many_to_one
    sql_on: ${projects.account_id} = ${invoice_lines.account_id}
      AND ${projects.id} = CAST(${invoice_lines.modern_project_id} AS @{STRING_TYPE}) ;;
  }

  join: cost_centers {
    # the line's client, project or item / service, per COST_CENTER_SOURCE (manifest.lkml)
    type: left_outer
    relationship: many_to_one
    sql_on: ${cost_centers.account_id} = ${invoice_lines.account_id}
      AND ${cost_centers.source_key} = {% if '@{COST_CENTER_SOURCE}' == 'project' %}CAST(${invoice_lines.modern_project_id} AS @{STRING_TYPE}){% elsif '@{COST_CENTER_SOURCE}' == 'service' %}${invoice_lines.name}{% else %}CAST(${invoices.customerid} AS @{STRING_TYPE}){% endif %} ;;
  }

  join: taxes {
    type: left_outer
    relationship: many_to_one
    sql_on: ${taxes.account_id} = ${items.account_id} AND ${taxes.taxid} = ${items.tax1} ;;
  }

  join: payments {
    type: left_outer
    relationship: one_to_many
    sql_on: ${payments.account_id} = ${invoices.account_id} AND ${payments.invoiceid} = ${invoices.invoiceid}
      AND ({% if invoices.include_deleted._parameter_value == 'yes' %}1 = 1{% else %}NOT ${payments.is_deleted}{% endif %}) ;;
  }
}
