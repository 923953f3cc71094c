#########################################################{
# PURPOSE
# Payments received against invoices: cash collected by period, client, method.
#
# SOURCES
# Refines view payments (views/payments_base.view.lkml). Extends deleted_records_ext.
#
# REFERENCED BY
# Explores payments, invoices. Dashboard 1_revenue.
#
# KEY MEASURES
#   total_collected       sum of payment amounts, per payment currency
#
# HOW TO USE
# Cash by month: Payment Month + Total Collected.
#########################################################}

include: "/views/payments_base.view.lkml"
include: "/views/deleted_records_ext.view.lkml"

view: +payments {
  extends: [deleted_records_ext]
  label: "Payments"

  dimension: amount_currency {
    label: "Payment Currency"
    description: "Currency of the payment (ISO 4217). Every payment money measure is per currency."
  }

  dimension_group: payment {
    label: "Payment"
    description: "Date the payment was received."
  }

  dimension: is_collected_mtd {
    group_label: "Payment Date"
    label: "Collected Month to Date"
    description: "Yes when the payment date is in the current calendar month, up to today."
    type: yesno
    sql: ${payment_date} >= @{MONTH_START_DATE} AND ${payment_date} <= CURRENT_DATE ;;
  }

  dimension: is_collected_fytd {
    group_label: "Payment Date"
    label: "Collected Fiscal Year to Date"
    description: "Yes when the payment date is in the current fiscal year, up to today."
    type: yesno
    sql: ${payment_date} >= @{FISCAL_YEAR_START_DATE} AND ${payment_date} <= CURRENT_DATE ;;
  }

  measure: count {
    label: "Payments"
    description: "Number of payments."
    type: count
    drill_fields: [payment_detail*]
  }

  measure: currency_count {
    hidden: yes
    description: "Distinct payment currencies in the row; money measures are NULL unless it is 1."
    type: count_distinct
    sql: ${amount_currency} ;;
  }

  measure: collected_sum {
    hidden: yes
    description: "Raw sum behind Total Collected."
    type: sum
    sql: ${amount} ;;
  }

  measure: total_collected {
    label: "Total Collected (payment currency)"
    description: "Sum of payments received, per currency."
    type: number
    sql: CASE WHEN ${currency_count} = 1 THEN ${collected_sum} END ;;
    required_fields: [amount_currency]
    value_format_name: decimal_2
    drill_fields: [payment_detail*]
  }

  measure: collected_mtd_sum {
    hidden: yes
    description: "Raw sum behind Collected MTD."
    type: sum
    sql: ${amount} ;;
    filters: [is_collected_mtd: "Yes"]
  }

  measure: total_collected_mtd {
    label: "Collected MTD (payment currency)"
    description: "Payments received this calendar month to date, per currency."
    type: number
    sql: CASE WHEN ${currency_count} = 1 THEN COALESCE(${collected_mtd_sum}, 0) END ;;
    required_fields: [amount_currency]
    value_format_name: decimal_2
  }

  measure: collected_fytd_sum {
    hidden: yes
    description: "Raw sum behind Collected FYTD."
    type: sum
    sql: ${amount} ;;
    filters: [is_collected_fytd: "Yes"]
  }

  measure: total_collected_fytd {
    label: "Collected FYTD (payment currency)"
    description: "Payments received this fiscal year to date, per currency."
    type: number
    sql: CASE WHEN ${currency_count} = 1 THEN COALESCE(${collected_fytd_sum}, 0) END ;;
    required_fields: [amount_currency]
    value_format_name: decimal_2
  }

  set: payment_detail {
    fields: [account_id, id, payment_date, payment_method, amount, amount_currency, invoiceid]
  }
}
