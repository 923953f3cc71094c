#########################################################{
# PURPOSE
# The warehouse's own profit and loss, computed from the loaded invoices, payments, other incomes
# and expenses for the period of each FreshBooks P&L snapshot (report_profit_loss), in its
# currency, as lines named like FreshBooks' report tree: Income / Sales, Income / Other Income,
# Expenses / <category>. `tap-freshbooks reconcile` compares them with the snapshot.
#
# SOURCES
# SQL-derived table: report_profit_loss (one row per account and report date) x one row per
# source record dated in the snapshot's start_date..end_date. Basis (filter on it: a snapshot
# states its own, `cash_based` in its JSON):
#   accrual  Sales = amount of sent (not draft), not deleted invoices by invoice date
#   cash     Sales = payments (not deleted) by payment date (UNCONFIRMED: no FreshBooks cash
#            report was available to check this rule)
#   both     Other Income = other incomes by date; Expenses by category (Uncategorized without
#            one) = expenses by date. Deleted records never count; bills are not counted.
# FreshBooks documents the report's shape, not which records feed each line (UNCONFIRMED): these
# are the rules the FreshBooks emulator documents.
#
# REFERENCED BY
# Explore report_parity_profit_loss (explores/report_parity.explore.lkml).
#
# KEY MEASURES (per currency)
#   total_amount, net_profit
#########################################################}

view: report_parity_profit_loss {
  label: "P&L Parity (warehouse)"

  derived_table: {
    sql:
      SELECT r.account_id, CAST(r.report_date AS DATE) AS report_date, CAST(r.start_date AS DATE) AS period_start,
             CAST(r.end_date AS DATE) AS period_end, r.currency_code, src.basis, src.section, src.line,
             src.source_type, src.source_id, src.entry_date, src.amount
      FROM @{SCHEMA_NAME}.report_profit_loss AS r
      INNER JOIN (
        SELECT 'accrual' AS basis, 'Income' AS section, 'Sales' AS line, 'invoice' AS source_type,
               i.account_id, i.id AS source_id, i.currency_code AS currency_code,
               CAST(i.create_date AS DATE) AS entry_date, CAST(i.amount__amount AS @{DECIMAL_TYPE}) AS amount
        FROM @{SCHEMA_NAME}.invoices AS i
        WHERE i.status <> 1 AND COALESCE(i.vis_state, 0) <> 1
        UNION ALL
        SELECT 'cash' AS basis, 'Income' AS section, 'Sales' AS line, 'payment' AS source_type,
               p.account_id, p.id AS source_id, p.amount__code AS currency_code,
               CAST(p.date AS DATE) AS entry_date, CAST(p.amount__amount AS @{DECIMAL_TYPE}) AS amount
        FROM @{SCHEMA_NAME}.payments AS p
        WHERE COALESCE(p.vis_state, 0) <> 1
        UNION ALL
        SELECT b.basis, 'Income' AS section, 'Other Income' AS line, 'other_income' AS source_type,
               o.account_id, o.id AS source_id, o.amount__code AS currency_code,
               CAST(o.date AS DATE) AS entry_date, CAST(o.amount__amount AS @{DECIMAL_TYPE}) AS amount
        FROM @{SCHEMA_NAME}.other_incomes AS o
        CROSS JOIN (SELECT 'accrual' AS basis UNION ALL SELECT 'cash' AS basis) AS b
        WHERE COALESCE(o.vis_state, 0) <> 1
        UNION ALL
        SELECT b.basis, 'Expenses' AS section, COALESCE(c.category, 'Uncategorized') AS line,
               'expense' AS source_type, e.account_id, e.id AS source_id, e.amount__code AS currency_code,
               CAST(e.date AS DATE) AS entry_date, CAST(e.amount__amount AS @{DECIMAL_TYPE}) AS amount
        FROM @{SCHEMA_NAME}.expenses AS e
        LEFT JOIN @{SCHEMA_NAME}.expense_categories AS c
          ON c.account_id = e.account_id AND c.categoryid = e.categoryid
        CROSS JOIN (SELECT 'accrual' AS basis UNION ALL SELECT 'cash' AS basis) AS b
        WHERE COALESCE(e.vis_state, 0) <> 1
      ) AS src
        ON src.account_id = r.account_id AND src.currency_code = r.currency_code
       AND (r.start_date IS NULL OR src.entry_date >= CAST(r.start_date AS DATE))
       AND src.entry_date <= CAST(r.end_date AS DATE) ;;
  }

  dimension: pk {
    primary_key: yes
    hidden: yes
    type: string
    description: "Primary key: account_id | report date | basis | source type | source id."
    sql: ${TABLE}.account_id || '|' || CAST(${TABLE}.report_date AS @{STRING_TYPE}) || '|' || ${TABLE}.basis || '|' || ${TABLE}.source_type || '|' || ${TABLE}.source_id ;;
  }

  dimension: account_id {
    label: "Account ID"
    description: "FreshBooks account id."
    type: string
    sql: ${TABLE}.account_id ;;
  }

  dimension_group: snapshot {
    label: "Report"
    description: "Date of the FreshBooks P&L snapshot this row is computed for (its report_date)."
    type: time
    timeframes: [raw, date, week, month, year]
    convert_tz: no
    datatype: date
    sql: ${TABLE}.report_date ;;
  }

  dimension_group: period_start {
    label: "Period Start"
    description: "First day of the snapshot's period (start_date)."
    type: time
    timeframes: [raw, date]
    convert_tz: no
    datatype: date
    sql: ${TABLE}.period_start ;;
  }

  dimension_group: period_end {
    label: "Period End"
    description: "Last day of the snapshot's period (end_date)."
    type: time
    timeframes: [raw, date]
    convert_tz: no
    datatype: date
    sql: ${TABLE}.period_end ;;
  }

  dimension: currency_code {
    label: "Currency"
    description: "The snapshot's currency; only records in it count."
    type: string
    sql: ${TABLE}.currency_code ;;
  }

  dimension: basis {
    label: "Basis"
    description: "accrual (invoices by invoice date) or cash (payments by payment date). Filter on the basis the snapshot states (cash_based)."
    type: string
    sql: ${TABLE}.basis ;;
  }

  dimension: section {
    label: "Section"
    description: "Income or Expenses, as in FreshBooks' report."
    type: string
    sql: ${TABLE}.section ;;
  }

  dimension: line {
    label: "Line"
    description: "The report line under its section: Sales, Other Income, or an expense category name."
    type: string
    sql: ${TABLE}.line ;;
  }

  dimension: source_type {
    label: "Source Type"
    description: "The record behind the row: invoice, payment, other_income or expense."
    type: string
    sql: ${TABLE}.source_type ;;
  }

  dimension: source_id {
    label: "Source ID"
    description: "FreshBooks id of the record behind the row."
    type: string
    sql: ${TABLE}.source_id ;;
  }

  dimension_group: entry {
    label: "Entry"
    description: "The record's date in the report: invoice date, payment date, income or expense date."
    type: time
    timeframes: [raw, date, month, year]
    convert_tz: no
    datatype: date
    sql: ${TABLE}.entry_date ;;
  }

  dimension: amount {
    hidden: yes
    description: "The record's amount (exact)."
    type: number
    sql: ${TABLE}.amount ;;
  }

  dimension: signed_amount {
    hidden: yes
    description: "Amount with expenses negative, for Net Profit."
    type: number
    sql: CASE WHEN ${section} = 'Expenses' THEN -${TABLE}.amount ELSE ${TABLE}.amount END ;;
  }

  measure: currency_count {
    hidden: yes
    description: "Distinct currencies in the row; money measures are NULL unless it is 1."
    type: count_distinct
    sql: ${currency_code} ;;
  }

  measure: basis_count {
    hidden: yes
    description: "Distinct bases in the row; P&L measures are NULL unless it is 1."
    type: count_distinct
    sql: ${basis} ;;
  }

  measure: amount_sum {
    hidden: yes
    description: "Raw sum behind Amount."
    type: sum
    sql: ${amount} ;;
  }

  measure: signed_sum {
    hidden: yes
    description: "Raw sum behind Net Profit."
    type: sum
    sql: ${signed_amount} ;;
  }

  measure: total_amount {
    label: "Amount (currency)"
    description: "Sum of the row's records, exact, per currency and basis: FreshBooks' P&L line (or section) computed from the warehouse."
    type: number
    sql: CASE WHEN ${currency_count} = 1 AND ${basis_count} = 1 THEN ${amount_sum} END ;;
    required_fields: [currency_code, basis]
    value_format_name: decimal_2
  }

  measure: net_profit {
    label: "Net Profit (currency)"
    description: "Income minus expenses of the row, exact, per currency and basis."
    type: number
    sql: CASE WHEN ${currency_count} = 1 AND ${basis_count} = 1 THEN ${signed_sum} END ;;
    required_fields: [currency_code, basis]
    value_format_name: decimal_2
  }
}
