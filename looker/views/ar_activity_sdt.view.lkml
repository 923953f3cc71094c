#########################################################{
# PURPOSE
# Receivables activity: one row per invoice issued and per payment received, on its own date, so
# invoiced and collected amounts can be compared in the same period (collected vs invoiced).
#
# SOURCES
# SQL-derived table over invoices (drafts excluded) and payments. Not persisted: it is a
# subquery, so it is always as fresh as the tables it reads.
#
# REFERENCED BY
# Explore ar_activity. Dashboard 2_receivables_aging.
#
# KEY MEASURES (per currency)
#   total_invoiced, total_collected, collected_to_invoiced_ratio
#########################################################}

include: "/views/deleted_records_ext.view.lkml"

view: ar_activity {
  extends: [deleted_records_ext]
  label: "Receivables Activity"

  derived_table: {
    sql:
      SELECT 'invoice' AS activity_type, i.account_id, i.id AS source_id, i.customerid AS client_userid,
             i.currency_code AS currency_code, CAST(i.create_date AS DATE) AS activity_date,
             CAST(i.amount__amount AS @{DECIMAL_TYPE}) AS invoiced_amount,
             CAST(0 AS @{DECIMAL_TYPE}) AS collected_amount, i.vis_state AS vis_state
      FROM @{SCHEMA_NAME}.invoices AS i
      WHERE i.status <> 1
      UNION ALL
      SELECT 'payment' AS activity_type, p.account_id, p.id AS source_id, p.clientid AS client_userid,
             p.amount__code AS currency_code, CAST(p.date AS DATE) AS activity_date,
             CAST(0 AS @{DECIMAL_TYPE}) AS invoiced_amount,
             CAST(p.amount__amount AS @{DECIMAL_TYPE}) AS collected_amount, p.vis_state AS vis_state
      FROM @{SCHEMA_NAME}.payments AS p ;;
  }

  dimension: pk {
    primary_key: yes
    hidden: yes
    type: string
    description: "Primary key: activity type | account_id | source id."
    sql: ${TABLE}.activity_type || '|' || ${TABLE}.account_id || '|' || ${TABLE}.source_id ;;
  }

  dimension: activity_type {
    label: "Activity Type"
    description: "invoice (issued, drafts excluded) or payment (received)."
    type: string
    sql: ${TABLE}.activity_type ;;
  }

  dimension: account_id {
    label: "Account ID"
    description: "FreshBooks account id."
    type: string
    sql: ${TABLE}.account_id ;;
  }

  dimension: source_id {
    label: "Invoice or Payment ID"
    description: "FreshBooks id of the invoice or payment."
    type: string
    sql: ${TABLE}.source_id ;;
  }

  dimension: client_userid {
    hidden: yes
    description: "Client id of the invoice or payment (joins clients.userid)."
    type: number
    sql: ${TABLE}.client_userid ;;
  }

  dimension: currency_code {
    label: "Currency"
    description: "Currency of the invoice or payment (ISO 4217). Every money measure here is per currency."
    type: string
    sql: ${TABLE}.currency_code ;;
  }

  dimension_group: activity {
    label: "Activity"
    description: "Invoice date for invoices, payment date for payments."
    type: time
    timeframes: [raw, date, week, month, quarter, year]
    convert_tz: no
    datatype: date
    sql: ${TABLE}.activity_date ;;
  }

  dimension: is_deleted {
    label: "Is Deleted"
    description: "Yes when the invoice or payment is deleted in FreshBooks (vis_state 1)."
    type: yesno
    sql: COALESCE(${TABLE}.vis_state, 0) = 1 ;;
  }

  dimension: invoiced_amount {
    hidden: yes
    description: "Invoice total on invoice rows, 0 on payment rows."
    type: number
    sql: ${TABLE}.invoiced_amount ;;
  }

  dimension: collected_amount {
    hidden: yes
    description: "Payment amount on payment rows, 0 on invoice rows."
    type: number
    sql: ${TABLE}.collected_amount ;;
  }

  measure: currency_count {
    hidden: yes
    description: "Distinct currencies in the row; money measures are NULL unless it is 1."
    type: count_distinct
    sql: ${currency_code} ;;
  }

  measure: invoiced_sum {
    hidden: yes
    description: "Raw sum behind Invoiced."
    type: sum
    sql: ${invoiced_amount} ;;
  }

  measure: collected_sum {
    hidden: yes
    description: "Raw sum behind Collected."
    type: sum
    sql: ${collected_amount} ;;
  }

  measure: total_invoiced {
    label: "Invoiced (currency)"
    description: "Invoices issued in the period (drafts excluded), per currency."
    type: number
    sql: CASE WHEN ${currency_count} = 1 THEN ${invoiced_sum} END ;;
    required_fields: [currency_code]
    value_format_name: decimal_2
  }

  measure: total_collected {
    label: "Collected (currency)"
    description: "Payments received in the period, per currency."
    type: number
    sql: CASE WHEN ${currency_count} = 1 THEN ${collected_sum} END ;;
    required_fields: [currency_code]
    value_format_name: decimal_2
  }

  measure: collected_to_invoiced_ratio {
    label: "Collected / Invoiced"
    description: "Collected divided by Invoiced in the same period."
    type: number
    sql: ${total_collected} * 1.0 / NULLIF(${total_invoiced}, 0) ;;
    value_format_name: percent_1
  }
}
