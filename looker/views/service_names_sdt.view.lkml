#########################################################{
# PURPOSE
# One row per distinct service name per account, so invoice lines can be matched to services by
# name many-to-one (FreshBooks copies the service name onto the line; service names are not
# unique, so joining the services table itself by name would fan out).
#
# SOURCES
# SQL-derived table over services (deleted services excluded).
#
# REFERENCED BY
# Explore invoices (revenue by service).
#########################################################}

view: service_names {
  label: "Services"

  derived_table: {
    sql:
      SELECT account_id, name, COUNT(*) AS service_count,
             MAX(CASE WHEN billable THEN 1 ELSE 0 END) AS any_billable
      FROM @{SCHEMA_NAME}.services
      WHERE COALESCE(vis_state, 0) <> 1
      GROUP BY account_id, name ;;
  }

  dimension: pk {
    primary_key: yes
    hidden: yes
    type: string
    description: "Primary key: account_id | service name."
    sql: ${TABLE}.account_id || '|' || ${TABLE}.name ;;
  }

  dimension: account_id {
    hidden: yes
    description: "FreshBooks account id."
    type: string
    sql: ${TABLE}.account_id ;;
  }

  dimension: name {
    label: "Service"
    description: "Service name; lines whose item/service name matches a FreshBooks service."
    type: string
    sql: ${TABLE}.name ;;
  }

  dimension: is_billable {
    label: "Is Billable Service"
    description: "Yes when at least one service of this name is billable."
    type: yesno
    sql: ${TABLE}.any_billable = 1 ;;
  }

  dimension: service_count {
    hidden: yes
    description: "Services sharing this name in the account."
    type: number
    sql: ${TABLE}.service_count ;;
  }
}
