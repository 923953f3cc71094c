#########################################################{
# PURPOSE
# Time entries: hours by project, service and client; billable and unbilled time.
#
# SOURCES
# Refines view time_entries (views/time_entries_base.view.lkml). Deleted time entries come with
# active = No (FreshBooks has no vis_state here); the explore hides inactive entries.
#
# REFERENCED BY
# Explore time_entries.
#########################################################}

include: "/views/time_entries_base.view.lkml"

view: +time_entries {
  label: "Time Entries"

  dimension: hours {
    label: "Hours"
    description: "Duration of the entry in hours."
    type: number
    sql: ${duration} / 3600.0 ;;
    value_format_name: decimal_2
  }

  measure: count {
    label: "Time Entries"
    description: "Number of time entries."
    type: count
  }

  measure: total_hours {
    label: "Total Hours"
    description: "Sum of logged hours."
    type: sum
    sql: ${hours} ;;
    value_format_name: decimal_2
  }

  measure: billable_hours {
    label: "Billable Hours"
    description: "Hours on billable entries."
    type: sum
    sql: ${hours} ;;
    filters: [billable: "Yes"]
    value_format_name: decimal_2
  }

  measure: unbilled_billable_hours {
    label: "Unbilled Billable Hours"
    description: "Billable hours not yet invoiced."
    type: sum
    sql: ${hours} ;;
    filters: [billable: "Yes", billed: "No"]
    value_format_name: decimal_2
  }
}
