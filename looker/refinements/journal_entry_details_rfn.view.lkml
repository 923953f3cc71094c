#########################################################{
# PURPOSE
# General ledger lines (journal entry details): debits, credits and balances by account, with
# expenses by GL account and the profit and loss by account type.
#
# SOURCES
# Refines view journal_entry_details (views/journal_entry_details_base.view.lkml). Each line
# carries its account's name, number and type; the explore adds the chart-of-accounts tiers.
#
# REFERENCED BY
# Explore general_ledger. Dashboard 3_expenses.
#
# KEY MEASURES (per currency_code)
#   total_debit, total_credit, net_debit (debit - credit),
#   natural_amount (debit - credit for asset/expense accounts, credit - debit otherwise)
#########################################################}

include: "/views/journal_entry_details_base.view.lkml"

view: +journal_entry_details {
  label: "General Ledger"

  dimension: currency_code {
    label: "Currency"
    group_label: "Amounts"
    description: "Currency of the ledger line (ISO 4217). Every ledger money measure is per currency."
  }

  dimension_group: entry {
    label: "Entry"
    description: "Date the journal entry is posted on (FreshBooks user_entered_date)."
  }

  dimension: gl_account_type {
    label: "Line Account Type"
    description: "Account type carried on the ledger line (asset, liability, equity, income, expense)."
  }

  dimension: normal_balance {
    label: "Normal Balance"
    description: "Debit for asset and expense accounts, Credit for liability, equity and income accounts (accounting convention; fixed)."
    case: {
      when: { sql: ${gl_account_type} IN ('asset', 'expense') ;; label: "Debit" }
      when: { sql: ${gl_account_type} IN ('liability', 'equity', 'income') ;; label: "Credit" }
      else: "Unmapped"
    }
  }

  dimension: debit_amount {
    hidden: yes
    description: "Debit amount, 0 when the line is a credit."
    type: number
    sql: COALESCE(${debit}, 0) ;;
  }

  dimension: credit_amount {
    hidden: yes
    description: "Credit amount, 0 when the line is a debit."
    type: number
    sql: COALESCE(${credit}, 0) ;;
  }

  dimension: fiscal_year {
    group_label: "Entry Date"
    label: "Entry Fiscal Year"
    description: "Fiscal year of the entry date, named by the calendar year it ends in (manifest constant FISCAL_MONTH_OFFSET)."
    type: number
    value_format_name: id
    sql: EXTRACT(YEAR FROM ${entry_date}) + CASE WHEN @{FISCAL_MONTH_OFFSET} > 0 AND EXTRACT(MONTH FROM ${entry_date}) > @{FISCAL_MONTH_OFFSET} THEN 1 ELSE 0 END ;;
  }

  dimension: is_entry_mtd {
    group_label: "Entry Date"
    label: "Entry Month to Date"
    description: "Yes when the entry date is in the current calendar month, up to today."
    type: yesno
    sql: ${entry_date} >= @{MONTH_START_DATE} AND ${entry_date} <= CURRENT_DATE ;;
  }

  dimension: is_entry_fytd {
    group_label: "Entry Date"
    label: "Entry Fiscal Year to Date"
    description: "Yes when the entry date is in the current fiscal year, up to today."
    type: yesno
    sql: ${entry_date} >= @{FISCAL_YEAR_START_DATE} AND ${entry_date} <= CURRENT_DATE ;;
  }

  measure: count {
    label: "Ledger Lines"
    description: "Number of journal entry detail lines."
    type: count
    drill_fields: [ledger_detail*]
  }

  measure: currency_count {
    hidden: yes
    description: "Distinct ledger currencies in the row; money measures are NULL unless it is 1."
    type: count_distinct
    sql: ${currency_code} ;;
  }

  measure: debit_sum {
    hidden: yes
    description: "Raw sum behind Total Debit."
    type: sum
    sql: ${debit_amount} ;;
  }

  measure: credit_sum {
    hidden: yes
    description: "Raw sum behind Total Credit."
    type: sum
    sql: ${credit_amount} ;;
  }

  measure: natural_sum {
    hidden: yes
    description: "Raw sum behind Natural Amount."
    type: sum
    sql: CASE WHEN ${gl_account_type} IN ('liability', 'equity', 'income') THEN ${credit_amount} - ${debit_amount} ELSE ${debit_amount} - ${credit_amount} END ;;
  }

  measure: natural_fytd_sum {
    hidden: yes
    description: "Raw sum behind Natural Amount FYTD."
    type: sum
    sql: CASE WHEN ${gl_account_type} IN ('liability', 'equity', 'income') THEN ${credit_amount} - ${debit_amount} ELSE ${debit_amount} - ${credit_amount} END ;;
    filters: [is_entry_fytd: "Yes"]
  }

  measure: total_debit {
    label: "Total Debit (currency)"
    description: "Sum of debits, per currency."
    type: number
    sql: CASE WHEN ${currency_count} = 1 THEN ${debit_sum} END ;;
    required_fields: [currency_code]
    value_format_name: decimal_2
    drill_fields: [ledger_detail*]
  }

  measure: total_credit {
    label: "Total Credit (currency)"
    description: "Sum of credits, per currency."
    type: number
    sql: CASE WHEN ${currency_count} = 1 THEN ${credit_sum} END ;;
    required_fields: [currency_code]
    value_format_name: decimal_2
    drill_fields: [ledger_detail*]
  }

  measure: net_debit {
    label: "Net Debit (currency)"
    description: "Debits minus credits, per currency."
    type: number
    sql: CASE WHEN ${currency_count} = 1 THEN ${debit_sum} - ${credit_sum} END ;;
    required_fields: [currency_code]
    value_format_name: decimal_2
  }

  measure: natural_amount {
    label: "Natural Amount (currency)"
    description: "Activity in the account's normal direction: debit - credit for asset and expense accounts, credit - debit for liability, equity and income. Expenses by GL account: filter Line Account Type = expense."
    type: number
    sql: CASE WHEN ${currency_count} = 1 THEN ${natural_sum} END ;;
    required_fields: [currency_code]
    value_format_name: decimal_2
    drill_fields: [ledger_detail*]
  }

  measure: natural_amount_fytd {
    label: "Natural Amount FYTD (currency)"
    description: "Natural Amount for entries in the current fiscal year to date."
    type: number
    sql: CASE WHEN ${currency_count} = 1 THEN COALESCE(${natural_fytd_sum}, 0) END ;;
    required_fields: [currency_code]
    value_format_name: decimal_2
  }

  set: ledger_detail {
    fields: [account_id, entry_date, name, detail_type, gl_account_number, gl_account_name, debit, credit, currency_code]
  }
}
