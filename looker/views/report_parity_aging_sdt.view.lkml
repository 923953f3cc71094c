#########################################################{
# PURPOSE
# The warehouse's own accounts receivable aging, computed from the loaded invoices for the date of
# each FreshBooks aging snapshot (report_accounts_aging), in that snapshot's currency and buckets,
# so it can be set beside FreshBooks' own figures (`tap-freshbooks reconcile` compares them).
#
# SOURCES
# SQL-derived table: report_accounts_aging (one row per account and report date) x invoices.
# An invoice counts when it is sent (not a draft), not deleted, in the report's currency, created
# on or before the report's end_date and still owed (outstanding > 0). Buckets by days past due
# at end_date: interval_0_30 (not yet due, and no due date, included), interval_31_60,
# interval_61_90, interval_91_plus, as FreshBooks names them. The rule is the one the FreshBooks
# emulator documents; FreshBooks documents the report's shape, not its rule (UNCONFIRMED).
# The invoices table holds today's outstanding amounts: compare the snapshot of the same load
# (an earlier snapshot predates payments received since).
#
# REFERENCED BY
# Explore report_parity_aging (explores/report_parity.explore.lkml).
#
# KEY MEASURES (per currency)
#   total_outstanding, invoice_count
#########################################################}

view: report_parity_aging {
  label: "Aging Parity (warehouse)"

  derived_table: {
    sql:
      SELECT aged.account_id, aged.report_date, aged.as_of_date, aged.currency_code, aged.invoice_id,
             aged.client_userid, aged.outstanding_amount, aged.days_past_due,
             CASE WHEN aged.days_past_due IS NULL OR aged.days_past_due <= 30 THEN 'interval_0_30'
                  WHEN aged.days_past_due <= 60 THEN 'interval_31_60'
                  WHEN aged.days_past_due <= 90 THEN 'interval_61_90'
                  ELSE 'interval_91_plus' END AS bucket
      FROM (
        SELECT r.account_id, CAST(r.report_date AS DATE) AS report_date, CAST(r.end_date AS DATE) AS as_of_date,
               r.currency_code, i.id AS invoice_id, i.customerid AS client_userid,
               CAST(i.outstanding__amount AS @{DECIMAL_TYPE}) AS outstanding_amount,
               {% if _dialect._name == 'bigquery_standard_sql' %}DATE_DIFF(CAST(r.end_date AS DATE), CAST(i.due_date AS DATE), DAY)
               {% elsif _dialect._name == 'snowflake' or _dialect._name == 'redshift' %}DATEDIFF(day, CAST(i.due_date AS DATE), CAST(r.end_date AS DATE))
               {% else %}(CAST(r.end_date AS DATE) - CAST(i.due_date AS DATE)){% endif %} AS days_past_due
        FROM @{SCHEMA_NAME}.report_accounts_aging AS r
        INNER JOIN @{SCHEMA_NAME}.invoices AS i
          ON i.account_id = r.account_id AND i.currency_code = r.currency_code
        WHERE i.status <> 1
          AND COALESCE(i.vis_state, 0) <> 1
          AND CAST(i.outstanding__amount AS @{DECIMAL_TYPE}) > 0
          AND (i.create_date IS NULL OR CAST(i.create_date AS DATE) <= CAST(r.end_date AS DATE))
      ) AS aged ;;
  }

  dimension: pk {
    primary_key: yes
    hidden: yes
    type: string
    description: "Primary key: account_id | report date | invoice id."
    sql: ${TABLE}.account_id || '|' || CAST(${TABLE}.report_date AS @{STRING_TYPE}) || '|' || ${TABLE}.invoice_id ;;
  }

  dimension: account_id {
    label: "Account ID"
    description: "FreshBooks account id."
    type: string
    sql: ${TABLE}.account_id ;;
  }

  dimension_group: snapshot {
    label: "Report"
    description: "Date of the FreshBooks aging snapshot this row is computed for (its report_date)."
    type: time
    timeframes: [raw, date, week, month, year]
    convert_tz: no
    datatype: date
    sql: ${TABLE}.report_date ;;
  }

  dimension_group: as_of {
    label: "Aged As Of"
    description: "The day the ages are counted to: the snapshot's end_date."
    type: time
    timeframes: [raw, date]
    convert_tz: no
    datatype: date
    sql: ${TABLE}.as_of_date ;;
  }

  dimension: currency_code {
    label: "Currency"
    description: "The snapshot's currency; only invoices in it count."
    type: string
    sql: ${TABLE}.currency_code ;;
  }

  dimension: invoice_id {
    label: "Invoice ID"
    description: "FreshBooks id of the open invoice."
    type: string
    sql: ${TABLE}.invoice_id ;;
  }

  dimension: client_userid {
    label: "Client ID"
    description: "FreshBooks client id (invoice customerid; FreshBooks' aging lists it as userid)."
    type: number
    value_format_name: id
    sql: ${TABLE}.client_userid ;;
  }

  dimension: days_past_due {
    label: "Days Past Due"
    description: "Days from the due date to the as-of date (negative: not yet due; null: no due date)."
    type: number
    sql: ${TABLE}.days_past_due ;;
  }

  dimension: bucket {
    label: "Aging Bucket"
    description: "FreshBooks' aging bucket: interval_0_30 (also not yet due), interval_31_60, interval_61_90, interval_91_plus."
    type: string
    sql: ${TABLE}.bucket ;;
  }

  dimension: outstanding_amount {
    hidden: yes
    description: "Outstanding amount of the invoice (exact)."
    type: number
    sql: ${TABLE}.outstanding_amount ;;
  }

  measure: currency_count {
    hidden: yes
    description: "Distinct currencies in the row; money measures are NULL unless it is 1."
    type: count_distinct
    sql: ${currency_code} ;;
  }

  measure: outstanding_sum {
    hidden: yes
    description: "Raw sum behind Outstanding."
    type: sum
    sql: ${outstanding_amount} ;;
  }

  measure: total_outstanding {
    label: "Outstanding (currency)"
    description: "Open receivables of the row (client, bucket, report date), exact, per currency: FreshBooks' aging figure computed from the warehouse."
    type: number
    sql: CASE WHEN ${currency_count} = 1 THEN ${outstanding_sum} END ;;
    required_fields: [currency_code]
    value_format_name: decimal_2
  }

  measure: invoice_count {
    label: "Open Invoices"
    description: "Open invoices counted in the row."
    type: count
  }
}
