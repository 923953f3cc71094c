#########################################################{
# PURPOSE
# Staff (team members who record expenses).
#
# SOURCES
# Refines view staff (views/staff_base.view.lkml).
#
# REFERENCED BY
# Explore expenses.
#########################################################}

include: "/views/staff_base.view.lkml"

view: +staff {
  label: "Staff"

  dimension: staff_name {
    label: "Staff Member"
    description: "First and last name of the staff member."
    type: string
    sql: TRIM(COALESCE(${fname}, '') || ' ' || COALESCE(${lname}, '')) ;;
  }

  measure: count {
    label: "Staff"
    description: "Number of distinct staff members."
    type: count
  }
}
