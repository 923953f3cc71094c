#########################################################{
# PURPOSE
# Bills (accounts payable): what is owed to vendors, and AP aging.
#
# SOURCES
# Refines view bills (views/bills_base.view.lkml). Extends deleted_records_ext.
#
# REFERENCED BY
# Explore bills. Dashboard 4_payables_aging.
#
# KEY MEASURES (per bill currency)
#   total_billed, total_ap_outstanding, ap_current .. ap_over_90
#########################################################}

include: "/views/bills_base.view.lkml"
include: "/views/deleted_records_ext.view.lkml"

view: +bills {
  extends: [deleted_records_ext]
  label: "Bills"

  dimension: currency_code {
    label: "Currency"
    group_label: "Amounts"
    description: "Bill currency (ISO 4217). Every bill money measure is per currency."
  }

  dimension_group: issue {
    label: "Bill"
    description: "Bill issue date."
  }

  dimension_group: due {
    label: "Due"
    description: "Date the bill is due."
  }

  dimension: is_open {
    label: "Is Open"
    description: "Yes when the bill is payable: not deleted and outstanding above zero."
    type: yesno
    sql: COALESCE(${vis_state}, 0) <> 1 AND ${outstanding} > 0 ;;
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
    description: "Days past due as of today: Current (not yet due), 1-30, 31-60, 61-90, 90+ days. Use with Total AP Outstanding for AP aging."
    case: {
      when: { sql: ${days_past_due} <= 0 ;; label: "Current" }
      when: { sql: ${days_past_due} <= 30 ;; label: "1-30 days" }
      when: { sql: ${days_past_due} <= 60 ;; label: "31-60 days" }
      when: { sql: ${days_past_due} <= 90 ;; label: "61-90 days" }
      when: { sql: ${days_past_due} > 90 ;; label: "90+ days" }
      else: "No due date"
    }
  }

  measure: count {
    label: "Bills"
    description: "Number of bills."
    type: count
    drill_fields: [bill_detail*]
  }

  measure: currency_count {
    hidden: yes
    description: "Distinct bill currencies in the row; money measures are NULL unless it is 1."
    type: count_distinct
    sql: ${currency_code} ;;
  }

  measure: billed_sum {
    hidden: yes
    description: "Raw sum behind Total Billed."
    type: sum
    sql: ${total_amount} ;;
  }

  measure: total_billed {
    label: "Total Billed (bill currency)"
    description: "Sum of bill totals including tax, per currency."
    type: number
    sql: CASE WHEN ${currency_count} = 1 THEN ${billed_sum} END ;;
    required_fields: [currency_code]
    value_format_name: decimal_2
    drill_fields: [bill_detail*]
  }

  measure: ap_outstanding_sum {
    hidden: yes
    description: "Raw sum behind Total AP Outstanding."
    type: sum
    sql: ${outstanding} ;;
    filters: [is_open: "Yes"]
  }

  measure: total_ap_outstanding {
    label: "Total AP Outstanding (bill currency)"
    description: "Open payables: outstanding amount of non-deleted bills, per currency. Equals the sum of the AP aging buckets."
    type: number
    sql: CASE WHEN ${currency_count} = 1 THEN COALESCE(${ap_outstanding_sum}, 0) END ;;
    required_fields: [currency_code]
    value_format_name: decimal_2
    drill_fields: [bill_detail*]
  }

  measure: ap_current_sum {
    hidden: yes
    description: "Raw sum behind AP Current."
    type: sum
    sql: ${outstanding} ;;
    filters: [is_open: "Yes", aging_bucket: "Current"]
  }

  measure: ap_current {
    group_label: "AP Aging"
    label: "AP Current (bill currency)"
    description: "Open payables not yet due."
    type: number
    sql: CASE WHEN ${currency_count} = 1 THEN COALESCE(${ap_current_sum}, 0) END ;;
    required_fields: [currency_code]
    value_format_name: decimal_2
  }

  measure: ap_1_30_sum {
    hidden: yes
    description: "Raw sum behind AP 1-30."
    type: sum
    sql: ${outstanding} ;;
    filters: [is_open: "Yes", aging_bucket: "1-30 days"]
  }

  measure: ap_1_30 {
    group_label: "AP Aging"
    label: "AP 1-30 Days (bill currency)"
    description: "Open payables 1 to 30 days past due."
    type: number
    sql: CASE WHEN ${currency_count} = 1 THEN COALESCE(${ap_1_30_sum}, 0) END ;;
    required_fields: [currency_code]
    value_format_name: decimal_2
  }

  measure: ap_31_60_sum {
    hidden: yes
    description: "Raw sum behind AP 31-60."
    type: sum
    sql: ${outstanding} ;;
    filters: [is_open: "Yes", aging_bucket: "31-60 days"]
  }

  measure: ap_31_60 {
    group_label: "AP Aging"
    label: "AP 31-60 Days (bill currency)"
    description: "Open payables 31 to 60 days past due."
    type: number
    sql: CASE WHEN ${currency_count} = 1 THEN COALESCE(${ap_31_60_sum}, 0) END ;;
    required_fields: [currency_code]
    value_format_name: decimal_2
  }

  measure: ap_61_90_sum {
    hidden: yes
    description: "Raw sum behind AP 61-90."
    type: sum
    sql: ${outstanding} ;;
    filters: [is_open: "Yes", aging_bucket: "61-90 days"]
  }

  measure: ap_61_90 {
    group_label: "AP Aging"
    label: "AP 61-90 Days (bill currency)"
    description: "Open payables 61 to 90 days past due."
    type: number
    sql: CASE WHEN ${currency_count} = 1 THEN COALESCE(${ap_61_90_sum}, 0) END ;;
    required_fields: [currency_code]
    value_format_name: decimal_2
  }

  measure: ap_over_90_sum {
    hidden: yes
    description: "Raw sum behind AP 90+."
    type: sum
    sql: ${outstanding} ;;
    filters: [is_open: "Yes", aging_bucket: "90+ days"]
  }

  measure: ap_over_90 {
    group_label: "AP Aging"
    label: "AP 90+ Days (bill currency)"
    description: "Open payables more than 90 days past due."
    type: number
    sql: CASE WHEN ${currency_count} = 1 THEN COALESCE(${ap_over_90_sum}, 0) END ;;
    required_fields: [currency_code]
    value_format_name: decimal_2
  }

  set: bill_detail {
    fields: [account_id, bill_number, issue_date, due_date, status, currency_code, total_amount, outstanding, aging_bucket]
  }
}
