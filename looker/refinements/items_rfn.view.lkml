#########################################################{
# PURPOSE
# Items (products and services sold on invoices).
#
# SOURCES
# Refines view items (views/items_base.view.lkml). Joined to invoice lines by name: FreshBooks
# copies the item name onto the line and keeps item names unique per account.
#
# REFERENCED BY
# Explore invoices.
#########################################################}

include: "/views/items_base.view.lkml"

view: +items {
  label: "Items"

  dimension: name {
    label: "Item"
    description: "Item name in the FreshBooks item list."
  }

  measure: count {
    label: "Items"
    description: "Number of distinct items."
    type: count
  }
}
