#########################################################{
# PURPOSE
# Invoice lines: revenue by item / service / project (pre-tax line amounts).
#
# SOURCES
# Refines view invoice_lines (views/invoice_lines_base.view.lkml). The warehouse keeps lines that
# were removed from an invoice (with an older invoice_updated); the invoices explore joins only the
# current lines (invoice_updated = invoices.updated).
#
# REFERENCED BY
# Explore invoices. Dashboard 1_revenue.
#
# KEY MEASURES
#   total_line_revenue   sum of line amounts on non-draft invoices, per line currency
#   total_line_revenue_mtd  the same, invoices dated this month to date (by client, service line,
#                        cost center on dashboard 1_revenue)
#
# HOW TO USE
# Revenue by item/service: Item / Service + Line Revenue. By project: Projects Title + Line Revenue.
#########################################################}

include: "/views/invoice_lines_base.view.lkml"

view: +invoice_lines {
  label: "Invoice Lines"

  dimension: name {
    label: "Item / Service"
    description: "Line name: FreshBooks copies the name of the item or service the line was created from."
  }

  dimension: amount_currency {
    label: "Line Currency"
    description: "Currency of the line amount (the invoice currency)."
  }

  measure: count {
    label: "Invoice Lines"
    description: "Number of current invoice lines."
    type: count
    drill_fields: [line_detail*]
  }

  measure: currency_count {
    hidden: yes
    description: "Distinct line currencies in the row; money measures are NULL unless it is 1."
    type: count_distinct
    sql: ${amount_currency} ;;
  }

  measure: line_revenue_sum {
    hidden: yes
    description: "Raw sum behind Line Revenue."
    type: sum
    sql: ${amount} ;;
    filters: [invoices.is_draft: "No"]
  }

  measure: total_line_revenue {
    label: "Line Revenue (invoice currency)"
    description: "Sum of line amounts (before tax) on non-draft invoices: revenue by item, service or project. Per currency."
    type: number
    sql: CASE WHEN ${currency_count} = 1 THEN ${line_revenue_sum} END ;;
    required_fields: [amount_currency]
    value_format_name: decimal_2
    drill_fields: [line_detail*]
  }

  measure: line_revenue_mtd_sum {
    hidden: yes
    description: "Raw sum behind Line Revenue MTD."
    type: sum
    sql: ${amount} ;;
    filters: [invoices.is_draft: "No", invoices.is_invoiced_mtd: "Yes"]
  }

  measure: total_line_revenue_mtd {
    label: "Line Revenue MTD (invoice currency)"
    description: "Line amounts (before tax) on non-draft invoices dated this calendar month to date. Per currency."
    type: number
    sql: CASE WHEN ${currency_count} = 1 THEN COALESCE(${line_revenue_mtd_sum}, 0) END ;;
    required_fields: [amount_currency]
    value_format_name: decimal_2
    drill_fields: [line_detail*]
  }

  measure: total_quantity {
    label: "Quantity"
    description: "Sum of line quantities."
    type: sum
    sql: ${qty} ;;
    value_format_name: decimal_2
  }

  set: line_detail {
    fields: [invoices.invoice_number, lineid, name, description, qty, unit_cost, amount, amount_currency]
  }
}
