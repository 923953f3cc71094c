#########################################################{
# PURPOSE
# Taxes defined in FreshBooks (rates). FreshBooks deletes taxes for real: no vis_state.
#
# SOURCES
# Refines view taxes (views/taxes_base.view.lkml).
#
# REFERENCED BY
# Explore invoices (items' first tax).
#########################################################}

include: "/views/taxes_base.view.lkml"

view: +taxes {
  label: "Taxes"

  dimension: name {
    label: "Tax"
    description: "Tax name, e.g. HST."
  }

  measure: count {
    label: "Taxes"
    description: "Number of distinct taxes."
    type: count
  }
}
