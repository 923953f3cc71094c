#########################################################{
# PURPOSE
# Invoices: revenue (invoiced), receivables (outstanding), AR aging and DSO.
#
# SOURCES
# Refines view invoices (views/invoices_base.view.lkml, generated from the tap catalog).
# Extends deleted_records_ext (Include Deleted Records parameter).
#
# REFERENCED BY
# Explores invoices, payments. Dashboards 1_revenue, 2_receivables_aging.
#
# KEY MEASURES (all per invoice currency: currency_code is added to every query that uses them,
# and a measure returns NULL rather than add two currencies together)
#   total_invoiced        sum of invoice totals, drafts excluded (revenue by period / client)
#   total_outstanding     open receivables (not draft, not deleted, outstanding > 0)
#   ar_current .. ar_over_90  open receivables by days past due
#   dso                   days sales outstanding over the last DSO_WINDOW_DAYS days
#
# HOW TO USE
# Revenue by month: Invoice Date Month + Total Invoiced. AR aging: Aging Bucket + Total Outstanding.
#########################################################}

include: "/views/invoices_base.view.lkml"
include: "/views/deleted_records_ext.view.lkml"

view: +invoices {
  extends: [deleted_records_ext]
  label: "Invoices"

  dimension: id {
    label: "Invoice ID"
    description: "FreshBooks invoice id (unique per account)."
  }

  dimension: invoice_number {
    label: "Invoice Number"
    description: "The invoice number the client sees."
  }

  dimension: currency_code {
    label: "Currency"
    group_label: "Amounts"
    description: "Invoice currency (ISO 4217). Every invoice money measure is per currency: this field is added to any query that uses one."
  }

  dimension_group: created_on {
    label: "Invoice"
    description: "Invoice date (FreshBooks create_date): the date revenue is reported on."
  }

  dimension_group: due {
    label: "Due"
    description: "Date the invoice is due (FreshBooks due_date)."
  }

  dimension: status_name {
    label: "Status"
    description: "Invoice status: Draft, Sent, Viewed, Paid, Auto-paid, Retry, Failed or Partial (FreshBooks status code)."
    type: string
    sql: CASE ${status} WHEN 1 THEN 'Draft' WHEN 2 THEN 'Sent' WHEN 3 THEN 'Viewed' WHEN 4 THEN 'Paid'
           WHEN 5 THEN 'Auto-paid' WHEN 6 THEN 'Retry' WHEN 7 THEN 'Failed' WHEN 8 THEN 'Partial'
           ELSE 'Other' END ;;
  }

  dimension: is_draft {
    label: "Is Draft"
    description: "Yes for drafts (status 1): not sent, so neither revenue nor receivable."
    type: yesno
    sql: ${status} = 1 ;;
  }

  dimension: is_open {
    label: "Is Open"
    description: "Yes when the invoice is a receivable: sent (not draft), not deleted, outstanding amount above zero. Archived invoices stay receivable."
    type: yesno
    sql: ${status} <> 1 AND COALESCE(${vis_state}, 0) <> 1 AND ${outstanding} > 0 ;;
  }

  dimension_group: past_due {
    label: "Past Due"
    description: "Days from the due date to today (negative: not yet due)."
    type: duration
    intervals: [day]
    sql_start: ${due_raw} ;;
    sql_end: CURRENT_DATE ;;
  }

  dimension: aging_bucket {
    label: "Aging Bucket"
    description: "Days past due as of today: Current (not yet due), 1-30, 31-60, 61-90, 90+ days. Use with Total Outstanding for AR aging."
    case: {
      when: { sql: ${days_past_due} <= 0 ;; label: "Current" }
      when: { sql: ${days_past_due} <= 30 ;; label: "1-30 days" }
      when: { sql: ${days_past_due} <= 60 ;; label: "31-60 days" }
      when: { sql: ${days_past_due} <= 90 ;; label: "61-90 days" }
      when: { sql: ${days_past_due} > 90 ;; label: "90+ days" }
      else: "No due date"
    }
  }

  dimension: fiscal_year {
    group_label: "Invoice Date"
    label: "Invoice Fiscal Year"
    description: "Fiscal year of the invoice date, named by the calendar year it ends in (manifest constant FISCAL_MONTH_OFFSET)."
    type: number
    value_format_name: id
    sql: EXTRACT(YEAR FROM ${created_on_date}) + CASE WHEN @{FISCAL_MONTH_OFFSET} > 0 AND EXTRACT(MONTH FROM ${created_on_date}) > @{FISCAL_MONTH_OFFSET} THEN 1 ELSE 0 END ;;
  }

  dimension: fiscal_quarter_of_year {
    group_label: "Invoice Date"
    label: "Invoice Fiscal Quarter"
    description: "Fiscal quarter (1-4) of the invoice date."
    type: number
    value_format_name: decimal_0
    sql: FLOOR(MOD(EXTRACT(MONTH FROM ${created_on_date}) - 1 - @{FISCAL_MONTH_OFFSET} + 12, 12) / 3) + 1 ;;
  }

  dimension: is_invoiced_mtd {
    group_label: "Invoice Date"
    label: "Invoiced Month to Date"
    description: "Yes when the invoice date is in the current calendar month, up to today."
    type: yesno
    sql: ${created_on_date} >= @{MONTH_START_DATE} AND ${created_on_date} <= CURRENT_DATE ;;
  }

  dimension: is_invoiced_fytd {
    group_label: "Invoice Date"
    label: "Invoiced Fiscal Year to Date"
    description: "Yes when the invoice date is in the current fiscal year, up to today."
    type: yesno
    sql: ${created_on_date} >= @{FISCAL_YEAR_START_DATE} AND ${created_on_date} <= CURRENT_DATE ;;
  }

  dimension: is_in_dso_window {
    group_label: "Invoice Date"
    label: "Invoiced in DSO Window"
    description: "Yes when the invoice date is within the last DSO_WINDOW_DAYS days (manifest constant, default 90)."
    type: yesno
    sql: ${created_on_date} > @{DSO_WINDOW_START_DATE} AND ${created_on_date} <= CURRENT_DATE ;;
  }

  # --- measures ---------------------------------------------------------------------------------

  measure: count {
    label: "Invoices"
    description: "Number of invoices."
    type: count
    drill_fields: [invoice_detail*]
  }

  measure: currency_count {
    hidden: yes
    description: "Distinct invoice currencies in the row; money measures are NULL unless it is 1."
    type: count_distinct
    sql: ${currency_code} ;;
  }

  measure: invoiced_sum {
    hidden: yes
    description: "Raw sum behind Total Invoiced."
    type: sum
    sql: ${amount} ;;
    filters: [is_draft: "No"]
  }

  measure: total_invoiced {
    label: "Total Invoiced (invoice currency)"
    description: "Sum of invoice totals, drafts excluded: revenue as invoiced. Per currency, never added across currencies."
    type: number
    sql: CASE WHEN ${currency_count} = 1 THEN ${invoiced_sum} END ;;
    required_fields: [currency_code]
    value_format_name: decimal_2
    drill_fields: [invoice_detail*]
  }

  measure: invoiced_mtd_sum {
    hidden: yes
    description: "Raw sum behind Invoiced MTD."
    type: sum
    sql: ${amount} ;;
    filters: [is_draft: "No", is_invoiced_mtd: "Yes"]
  }

  measure: total_invoiced_mtd {
    label: "Invoiced MTD (invoice currency)"
    description: "Total invoiced this calendar month to date, per currency."
    type: number
    sql: CASE WHEN ${currency_count} = 1 THEN COALESCE(${invoiced_mtd_sum}, 0) END ;;
    required_fields: [currency_code]
    value_format_name: decimal_2
    drill_fields: [invoice_detail*]
  }

  measure: invoiced_fytd_sum {
    hidden: yes
    description: "Raw sum behind Invoiced FYTD."
    type: sum
    sql: ${amount} ;;
    filters: [is_draft: "No", is_invoiced_fytd: "Yes"]
  }

  measure: total_invoiced_fytd {
    label: "Invoiced FYTD (invoice currency)"
    description: "Total invoiced this fiscal year to date, per currency."
    type: number
    sql: CASE WHEN ${currency_count} = 1 THEN COALESCE(${invoiced_fytd_sum}, 0) END ;;
    required_fields: [currency_code]
    value_format_name: decimal_2
    drill_fields: [invoice_detail*]
  }

  measure: paid_sum {
    hidden: yes
    description: "Raw sum behind Total Paid on Invoices."
    type: sum
    sql: ${paid} ;;
    filters: [is_draft: "No"]
  }

  measure: total_paid {
    label: "Total Paid on Invoices (invoice currency)"
    description: "Amount collected against these invoices (FreshBooks paid), per currency."
    type: number
    sql: CASE WHEN ${currency_count} = 1 THEN ${paid_sum} END ;;
    required_fields: [currency_code]
    value_format_name: decimal_2
    drill_fields: [invoice_detail*]
  }

  measure: collection_rate {
    label: "Collection Rate"
    description: "Total Paid on Invoices / Total Invoiced, for the invoices in the row."
    type: number
    sql: ${total_paid} * 1.0 / NULLIF(${total_invoiced}, 0) ;;
    value_format_name: percent_1
  }

  measure: outstanding_sum {
    hidden: yes
    description: "Raw sum behind Total Outstanding."
    type: sum
    sql: ${outstanding} ;;
    filters: [is_open: "Yes"]
  }

  measure: total_outstanding {
    label: "Total Outstanding AR (invoice currency)"
    description: "Open receivables: outstanding amount of sent, non-deleted invoices, per currency. Equals the sum of the aging buckets."
    type: number
    sql: CASE WHEN ${currency_count} = 1 THEN COALESCE(${outstanding_sum}, 0) END ;;
    required_fields: [currency_code]
    value_format_name: decimal_2
    drill_fields: [invoice_detail*]
  }

  measure: ar_current_sum {
    hidden: yes
    description: "Raw sum behind AR Current."
    type: sum
    sql: ${outstanding} ;;
    filters: [is_open: "Yes", aging_bucket: "Current"]
  }

  measure: ar_current {
    group_label: "AR Aging"
    label: "AR Current (invoice currency)"
    description: "Open receivables not yet due."
    type: number
    sql: CASE WHEN ${currency_count} = 1 THEN COALESCE(${ar_current_sum}, 0) END ;;
    required_fields: [currency_code]
    value_format_name: decimal_2
    drill_fields: [invoice_detail*]
  }

  measure: ar_1_30_sum {
    hidden: yes
    description: "Raw sum behind AR 1-30."
    type: sum
    sql: ${outstanding} ;;
    filters: [is_open: "Yes", aging_bucket: "1-30 days"]
  }

  measure: ar_1_30 {
    group_label: "AR Aging"
    label: "AR 1-30 Days (invoice currency)"
    description: "Open receivables 1 to 30 days past due."
    type: number
    sql: CASE WHEN ${currency_count} = 1 THEN COALESCE(${ar_1_30_sum}, 0) END ;;
    required_fields: [currency_code]
    value_format_name: decimal_2
    drill_fields: [invoice_detail*]
  }

  measure: ar_31_60_sum {
    hidden: yes
    description: "Raw sum behind AR 31-60."
    type: sum
    sql: ${outstanding} ;;
    filters: [is_open: "Yes", aging_bucket: "31-60 days"]
  }

  measure: ar_31_60 {
    group_label: "AR Aging"
    label: "AR 31-60 Days (invoice currency)"
    description: "Open receivables 31 to 60 days past due."
    type: number
    sql: CASE WHEN ${currency_count} = 1 THEN COALESCE(${ar_31_60_sum}, 0) END ;;
    required_fields: [currency_code]
    value_format_name: decimal_2
    drill_fields: [invoice_detail*]
  }

  measure: ar_61_90_sum {
    hidden: yes
    description: "Raw sum behind AR 61-90."
    type: sum
    sql: ${outstanding} ;;
    filters: [is_open: "Yes", aging_bucket: "61-90 days"]
  }

  measure: ar_61_90 {
    group_label: "AR Aging"
    label: "AR 61-90 Days (invoice currency)"
    description: "Open receivables 61 to 90 days past due."
    type: number
    sql: CASE WHEN ${currency_count} = 1 THEN COALESCE(${ar_61_90_sum}, 0) END ;;
    required_fields: [currency_code]
    value_format_name: decimal_2
    drill_fields: [invoice_detail*]
  }

  measure: ar_over_90_sum {
    hidden: yes
    description: "Raw sum behind AR 90+."
    type: sum
    sql: ${outstanding} ;;
    filters: [is_open: "Yes", aging_bucket: "90+ days"]
  }

  measure: ar_over_90 {
    group_label: "AR Aging"
    label: "AR 90+ Days (invoice currency)"
    description: "Open receivables more than 90 days past due."
    type: number
    sql: CASE WHEN ${currency_count} = 1 THEN COALESCE(${ar_over_90_sum}, 0) END ;;
    required_fields: [currency_code]
    value_format_name: decimal_2
    drill_fields: [invoice_detail*]
  }

  measure: invoiced_in_dso_window_sum {
    hidden: yes
    description: "Raw sum behind DSO: invoiced in the last DSO_WINDOW_DAYS days."
    type: sum
    sql: ${amount} ;;
    filters: [is_draft: "No", is_in_dso_window: "Yes"]
  }

  measure: dso {
    label: "DSO (days)"
    description: "Days sales outstanding: Total Outstanding AR / invoiced in the last DSO_WINDOW_DAYS days x DSO_WINDOW_DAYS. Per currency."
    type: number
    sql: CASE WHEN ${currency_count} = 1 THEN COALESCE(${outstanding_sum}, 0) * @{DSO_WINDOW_DAYS} / NULLIF(${invoiced_in_dso_window_sum}, 0) END ;;
    required_fields: [currency_code]
    value_format_name: decimal_1
  }

  set: invoice_detail {
    fields: [account_id, invoice_number, created_on_date, due_date, status_name, currency_code, amount, outstanding, aging_bucket]
  }
}
