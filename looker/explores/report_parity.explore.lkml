#########################################################{
# PURPOSE
# FreshBooks' own reports beside the warehouse's: aging and profit and loss computed from the
# loaded records for the date and period of each report snapshot, to check one against the other
# (`tap-freshbooks reconcile` does it line by line; tests/looker/test_report_parity.py shows they
# agree on a real load).
#
# SOURCES
# report_parity_aging (invoices x report_accounts_aging) -> clients;
# report_parity_profit_loss (invoices, payments, other incomes, expenses x report_profit_loss).
#
# HOW TO USE
# Aging: Report Date + Client + Aging Bucket + Outstanding, against the snapshot's accounts rows.
# P&L: Report Date + Section + Line + Amount, filtered on the snapshot's basis (accrual unless its
# cash_based is true).
#########################################################}

include: "/views/report_parity_aging_sdt.view.lkml"
include: "/views/report_parity_profit_loss_sdt.view.lkml"
include: "/refinements/clients_rfn.view.lkml"

explore: report_parity_aging {
  label: "Aging Parity"
  description: "The warehouse's own receivables aging on the dates of FreshBooks' aging snapshots."

  join: clients {
    type: left_outer
    relationship: many_to_one
    sql_on: ${clients.account_id} = ${report_parity_aging.account_id} AND ${clients.userid} = ${report_parity_aging.client_userid} ;;
  }
}

explore: report_parity_profit_loss {
  label: "P&L Parity"
  description: "The warehouse's own profit and loss for the periods of FreshBooks' P&L snapshots."
  always_filter: {
    filters: [report_parity_profit_loss.basis: "accrual"]
  }
}
