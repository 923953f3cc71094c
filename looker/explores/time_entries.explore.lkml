#########################################################{
# PURPOSE
# Time tracking: hours by project, service and client; billable and unbilled hours.
#
# SOURCES
# time_entries (base) -> projects, services, clients.
#
# HOW TO USE
# Deleted time entries (active = No) are hidden.
#########################################################}

include: "/refinements/time_entries_rfn.view.lkml"
include: "/refinements/projects_rfn.view.lkml"
include: "/refinements/services_rfn.view.lkml"
include: "/refinements/clients_rfn.view.lkml"

explore: time_entries {
  label: "Time Tracking"
  description: "Hours by project, service, client; billable and unbilled hours."
  sql_always_where: COALESCE(${time_entries.active}, TRUE) ;;

  join: projects {
    type: left_outer
    relationship: many_to_one
    sql_on: ${projects.account_id} = ${time_entries.account_id} AND ${projects.id} = CAST(${time_entries.project_id} AS @{STRING_TYPE}) ;;
  }

  join: services {
    type: left_outer
    relationship: many_to_one
    sql_on: ${services.account_id} = ${time_entries.account_id} AND ${services.id} = CAST(${time_entries.service_id} AS @{STRING_TYPE}) ;;
  }

  join: clients {
    type: left_outer
    relationship: many_to_one
    sql_on: ${clients.account_id} = ${time_entries.account_id} AND ${clients.userid} = ${time_entries.client_id} ;;
  }
}
