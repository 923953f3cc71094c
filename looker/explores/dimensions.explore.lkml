#########################################################{
# PURPOSE
# The dimension tables as they are, one row per record: what `freshbooks-looker drift --looker`
# reads through the Looker API (chart of accounts, expense categories) when the drift report runs
# against Looker instead of the warehouse. Hidden from the Explore menu.
#
# SOURCES
# chart_of_accounts, expense_categories (deleted categories included: drift skips vis_state 1).
#########################################################}

include: "/refinements/chart_of_accounts_rfn.view.lkml"
include: "/refinements/expense_categories_rfn.view.lkml"

explore: chart_of_accounts {
  hidden: yes
  label: "Chart of Accounts (dimension list)"
  description: "Every ledger account, one row each (drift report)."
}

explore: expense_categories {
  hidden: yes
  label: "Expense Categories (dimension list)"
  description: "Every expense category, one row each, deleted ones included (drift report)."
}
