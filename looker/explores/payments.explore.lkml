#########################################################{
# PURPOSE
# Cash received: payments by date, client, method and invoice.
#
# SOURCES
# payments (base) -> invoices, clients.
#
# HOW TO USE
# Total Collected is per payment currency. Deleted payments are hidden unless Include Deleted
# Records = Yes.
#########################################################}

include: "/refinements/payments_rfn.view.lkml"
include: "/refinements/invoices_rfn.view.lkml"
include: "/refinements/clients_rfn.view.lkml"

explore: payments {
  label: "Payments Received"
  description: "Cash collected by payment date, client and method, with the invoice paid."
  sql_always_where: {% if payments.include_deleted._parameter_value == 'yes' %}1 = 1{% else %}NOT ${payments.is_deleted}{% endif %} ;;

  join: invoices {
    type: left_outer
    relationship: many_to_one
    sql_on: ${invoices.account_id} = ${payments.account_id} AND ${invoices.invoiceid} = ${payments.invoiceid} ;;
  }

  join: clients {
    type: left_outer
    relationship: many_to_one
    sql_on: ${clients.account_id} = ${payments.account_id} AND ${clients.userid} = ${payments.clientid} ;;
  }
}
