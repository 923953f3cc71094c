#########################################################{
# PURPOSE
# Expenses: spend by category (and parent category), staff, client, project and period.
#
# SOURCES
# Refines view expenses (views/expenses_base.view.lkml). Extends deleted_records_ext.
# Category names and the category hierarchy come from the expense_categories table at query
# time (explore expenses), never from this file.
#
# REFERENCED BY
# Explore expenses. Dashboard 3_expenses.
#
# KEY MEASURES
#   total_expenses, total_expenses_mtd, total_expenses_fytd   per expense currency
#########################################################}

include: "/views/expenses_base.view.lkml"
include: "/views/deleted_records_ext.view.lkml"

view: +expenses {
  extends: [deleted_records_ext]
  label: "Expenses"

  dimension: amount_currency {
    label: "Expense Currency"
    description: "Currency of the expense (ISO 4217). Every expense money measure is per currency."
  }

  dimension_group: expense {
    label: "Expense"
    description: "Date of the expense."
  }

  dimension: vendor {
    label: "Vendor"
    description: "Vendor name typed on the expense."
  }

  dimension: fiscal_year {
    group_label: "Expense Date"
    label: "Expense Fiscal Year"
    description: "Fiscal year of the expense date, named by the calendar year it ends in (manifest constant FISCAL_MONTH_OFFSET)."
    type: number
    value_format_name: id
    sql: EXTRACT(YEAR FROM ${expense_date}) + CASE WHEN @{FISCAL_MONTH_OFFSET} > 0 AND EXTRACT(MONTH FROM ${expense_date}) > @{FISCAL_MONTH_OFFSET} THEN 1 ELSE 0 END ;;
  }

  dimension: is_expense_mtd {
    group_label: "Expense Date"
    label: "Expense Month to Date"
    description: "Yes when the expense date is in the current calendar month, up to today."
    type: yesno
    sql: ${expense_date} >= @{MONTH_START_DATE} AND ${expense_date} <= CURRENT_DATE ;;
  }

  dimension: is_expense_fytd {
    group_label: "Expense Date"
    label: "Expense Fiscal Year to Date"
    description: "Yes when the expense date is in the current fiscal year, up to today."
    type: yesno
    sql: ${expense_date} >= @{FISCAL_YEAR_START_DATE} AND ${expense_date} <= CURRENT_DATE ;;
  }

  measure: count {
    label: "Expenses"
    description: "Number of expenses."
    type: count
    drill_fields: [expense_detail*]
  }

  measure: currency_count {
    hidden: yes
    description: "Distinct expense currencies in the row; money measures are NULL unless it is 1."
    type: count_distinct
    sql: ${amount_currency} ;;
  }

  measure: expenses_sum {
    hidden: yes
    description: "Raw sum behind Total Expenses."
    type: sum
    sql: ${amount} ;;
  }

  measure: total_expenses {
    label: "Total Expenses (expense currency)"
    description: "Sum of expense amounts (before the separately recorded taxes), per currency."
    type: number
    sql: CASE WHEN ${currency_count} = 1 THEN ${expenses_sum} END ;;
    required_fields: [amount_currency]
    value_format_name: decimal_2
    drill_fields: [expense_detail*]
  }

  measure: expenses_mtd_sum {
    hidden: yes
    description: "Raw sum behind Expenses MTD."
    type: sum
    sql: ${amount} ;;
    filters: [is_expense_mtd: "Yes"]
  }

  measure: total_expenses_mtd {
    label: "Expenses MTD (expense currency)"
    description: "Expenses dated this calendar month to date, per currency."
    type: number
    sql: CASE WHEN ${currency_count} = 1 THEN COALESCE(${expenses_mtd_sum}, 0) END ;;
    required_fields: [amount_currency]
    value_format_name: decimal_2
  }

  measure: expenses_fytd_sum {
    hidden: yes
    description: "Raw sum behind Expenses FYTD."
    type: sum
    sql: ${amount} ;;
    filters: [is_expense_fytd: "Yes"]
  }

  measure: total_expenses_fytd {
    label: "Expenses FYTD (expense currency)"
    description: "Expenses dated this fiscal year to date, per currency."
    type: number
    sql: CASE WHEN ${currency_count} = 1 THEN COALESCE(${expenses_fytd_sum}, 0) END ;;
    required_fields: [amount_currency]
    value_format_name: decimal_2
  }

  set: expense_detail {
    fields: [account_id, id, expense_date, vendor, expense_categories.category, amount, amount_currency, notes]
  }
}
