#########################################################{
# PURPOSE
# Services (billable work types for time tracking).
#
# SOURCES
# Refines view services (views/services_base.view.lkml).
#
# REFERENCED BY
# Explore time_entries (by service id). The invoices explore matches lines to services by name
# through views/service_names_sdt.view.lkml.
#########################################################}

include: "/views/services_base.view.lkml"

view: +services {
  label: "Services"

  dimension: name {
    label: "Service"
    description: "Service name."
  }

  measure: count {
    label: "Services"
    description: "Number of distinct services."
    type: count
  }
}
