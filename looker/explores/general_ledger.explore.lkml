#########################################################{
# PURPOSE
# The general ledger: debits, credits and natural balances by account tier (type, sub-type,
# parent account, account); expenses by GL account; profit and loss by account type.
#
# SOURCES
# journal_entry_details (base) -> chart_of_accounts (by account number) -> parent_account
# (chart_of_accounts again, by parent uuid).
#
# HOW TO USE
# Expenses by GL account: Line Account Type = expense, Account + Natural Amount. Account tiers
# come from the chart_of_accounts table, so new accounts and sub-types need no LookML change.
# Journal entry details carry the legacy account ids; the chart is matched on the account number
# (unique per business in FreshBooks).
#########################################################}

include: "/refinements/journal_entry_details_rfn.view.lkml"
include: "/refinements/chart_of_accounts_rfn.view.lkml"

explore: general_ledger {
  view_name: journal_entry_details
  label: "General Ledger"
  description: "Ledger lines by account tier and period; expenses by GL account; P&L by account type."

  join: chart_of_accounts {
    type: left_outer
    relationship: many_to_one
    sql_on: ${chart_of_accounts.account_id} = ${journal_entry_details.account_id}
      AND ${chart_of_accounts.account_number} = ${journal_entry_details.gl_account_number} ;;
  }

  join: parent_account {
    from: chart_of_accounts
    view_label: "Chart of Accounts: Parent"
    type: left_outer
    relationship: many_to_one
    fields: [parent_account.account_name, parent_account.account_number, parent_account.account_label]
    sql_on: ${parent_account.account_id} = ${chart_of_accounts.account_id} AND ${parent_account.uuid} = ${chart_of_accounts.parent_account} ;;
  }
}
