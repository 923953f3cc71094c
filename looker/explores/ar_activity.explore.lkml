#########################################################{
# PURPOSE
# Collected vs invoiced in the same period (invoice date vs payment date).
#
# SOURCES
# ar_activity (derived: invoices + payments) -> clients.
#
# HOW TO USE
# Activity Month + Invoiced + Collected. Per currency.
#########################################################}

include: "/views/ar_activity_sdt.view.lkml"
include: "/refinements/clients_rfn.view.lkml"

explore: ar_activity {
  label: "Collected vs Invoiced"
  description: "Invoices issued and payments received on their own dates, to compare them per period."
  sql_always_where: {% if ar_activity.include_deleted._parameter_value == 'yes' %}1 = 1{% else %}NOT ${ar_activity.is_deleted}{% endif %} ;;

  join: clients {
    type: left_outer
    relationship: many_to_one
    sql_on: ${clients.account_id} = ${ar_activity.account_id} AND ${clients.userid} = ${ar_activity.client_userid} ;;
  }
}
