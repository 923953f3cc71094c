#########################################################{
# PURPOSE
# Vendors that bills are owed to.
#
# SOURCES
# Refines view bill_vendors (views/bill_vendors_base.view.lkml).
#
# REFERENCED BY
# Explore bills. Dashboard 4_payables_aging.
#########################################################}

include: "/views/bill_vendors_base.view.lkml"

view: +bill_vendors {
  label: "Vendors"

  dimension: vendor_name {
    label: "Vendor"
    description: "Vendor name."
  }

  measure: count {
    label: "Vendors"
    description: "Number of distinct vendors."
    type: count
  }
}
