#########################################################{
# PURPOSE
# Credit notes issued, by client and period.
#
# SOURCES
# credit_notes (base) -> clients.
#########################################################}

include: "/refinements/credit_notes_rfn.view.lkml"
include: "/refinements/clients_rfn.view.lkml"

explore: credit_notes {
  label: "Credit Notes"
  description: "Credit notes by client, type and period (per currency)."
  sql_always_where: {% if credit_notes.include_deleted._parameter_value == 'yes' %}1 = 1{% else %}NOT ${credit_notes.is_deleted}{% endif %} ;;

  join: clients {
    type: left_outer
    relationship: many_to_one
    sql_on: ${clients.account_id} = ${credit_notes.account_id} AND ${clients.userid} = ${credit_notes.clientid} ;;
  }
}
