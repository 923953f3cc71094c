#########################################################{
# PURPOSE
# The FreshBooks chart of accounts (ledger accounts): the account tiers of the general ledger.
# Tier 1 Account Type (asset, liability, equity, income, expense), tier 2 Sub-Type
# (e.g. "Cash & Bank"), tier 3 Parent Account (explore alias parent_account), tier 4 Account.
#
# SOURCES
# Refines view chart_of_accounts (views/chart_of_accounts_base.view.lkml). Tiers are columns of
# the table, read at query time: new sub-types and accounts appear without LookML edits.
# The only fixed mapping is the accounting convention below (statement and normal balance per
# fundamental type); `freshbooks-looker drift` fails if FreshBooks ever sends a type it lacks.
#
# REFERENCED BY
# Explore general_ledger. Dashboard 3_expenses.
#########################################################}

include: "/views/chart_of_accounts_base.view.lkml"

view: +chart_of_accounts {
  label: "Chart of Accounts"

  dimension: account_type {
    label: "Account Type"
    description: "Tier 1: asset, liability, equity, income or expense (FreshBooks ledger account type)."
  }

  dimension: sub_type {
    label: "Account Sub-Type"
    description: "Tier 2: FreshBooks sub-type, e.g. Cash & Bank, Accounts Receivable, Operating Expense."
  }

  dimension: account_name {
    label: "Account"
    description: "Ledger account name."
  }

  dimension: account_label {
    label: "Account (number - name)"
    description: "Account number and name, e.g. 6000 - Office Expenses."
    type: string
    sql: COALESCE(${account_number}, '') || ' - ' || COALESCE(${account_name}, '') ;;
  }

  dimension: statement {
    label: "Financial Statement"
    description: "Balance Sheet for asset, liability and equity accounts; Profit & Loss for income and expense accounts."
    case: {
      when: { sql: ${account_type} IN ('asset', 'liability', 'equity') ;; label: "Balance Sheet" }
      when: { sql: ${account_type} IN ('income', 'expense') ;; label: "Profit & Loss" }
      else: "Unmapped"
    }
  }

  measure: count {
    label: "Ledger Accounts"
    description: "Number of distinct ledger accounts."
    type: count
  }
}
