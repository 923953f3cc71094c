#########################################################{
# PURPOSE
# Other income (sales not invoiced) by category, source and period.
#
# SOURCES
# other_incomes (base).
#########################################################}

include: "/refinements/other_incomes_rfn.view.lkml"

explore: other_incomes {
  label: "Other Income"
  description: "Income recorded outside invoices, by category, source and period (per currency)."
  sql_always_where: {% if other_incomes.include_deleted._parameter_value == 'yes' %}1 = 1{% else %}NOT ${other_incomes.is_deleted}{% endif %} ;;
}
