#########################################################{
# PURPOSE
# Clients (customers): who revenue and receivables belong to.
#
# SOURCES
# Refines view clients (views/clients_base.view.lkml).
#
# REFERENCED BY
# Explores invoices, payments, ar_activity, expenses, credit_notes, time_entries.
#
# HOW TO USE
# Group any revenue or AR measure by Client.
#########################################################}

include: "/views/clients_base.view.lkml"

view: +clients {
  label: "Clients"

  dimension: client_name {
    label: "Client"
    description: "Organization, or first and last name when the client has no organization."
    type: string
    sql: COALESCE(NULLIF(${organization}, ''), TRIM(COALESCE(${fname}, '') || ' ' || COALESCE(${lname}, ''))) ;;
    drill_fields: [client_detail*]
  }

  dimension: currency_code {
    label: "Client Default Currency"
    description: "The client's default invoicing currency (ISO 4217)."
  }

  measure: count {
    label: "Clients"
    description: "Number of distinct clients."
    type: count
    drill_fields: [client_detail*]
  }

  set: client_detail {
    fields: [account_id, userid, client_name, email, currency_code, record_status]
  }
}
