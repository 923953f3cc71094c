#########################################################{
# PURPOSE
# Mix-in for the base view of every explore whose records FreshBooks can delete (vis_state 1).
# Deleted rows stay in the warehouse; the explore's sql_always_where hides them unless the user
# sets Include Deleted Records to Yes. Each view's Is Deleted / Record Status dimensions show
# which rows are deleted.
#
# REFERENCED BY
# refinements of invoices, payments, expenses, bills, credit_notes, other_incomes, ar_activity.
#
# HOW TO USE
# Add the parameter "Include Deleted Records" to a query (or a dashboard filter) and pick Yes.
#########################################################}

view: deleted_records_ext {
  extension: required

  parameter: include_deleted {
    label: "Include Deleted Records"
    view_label: "Filters & Tools"
    description: "No (default): deleted FreshBooks records are hidden. Yes: they are included; use Is Deleted to tell them apart."
    type: unquoted
    allowed_value: { label: "No" value: "no" }
    allowed_value: { label: "Yes" value: "yes" }
    default_value: "no"
  }
}
