#########################################################{
# PURPOSE
# Expense categories and their hierarchy (FreshBooks: parent categories and sub-categories).
#
# SOURCES
# Refines view expense_categories (views/expense_categories_base.view.lkml). The explore joins it
# twice: as the expense's category and (alias parent_category) as that category's parent, so
# renamed, added or re-parented categories show up without LookML edits. `freshbooks-looker drift`
# reports hierarchies deeper than the two levels the explore joins.
#
# REFERENCED BY
# Explore expenses.
#########################################################}

include: "/views/expense_categories_base.view.lkml"

view: +expense_categories {
  label: "Expense Categories"

  dimension: category {
    label: "Category"
    description: "Expense category name, as currently named in FreshBooks."
  }

  dimension: is_top_level {
    label: "Is Top-Level Category"
    description: "Yes when the category has no parent."
    type: yesno
    sql: ${parentid} IS NULL OR ${parentid} = 0 ;;
  }

  measure: count {
    label: "Expense Categories"
    description: "Number of distinct categories."
    type: count
  }
}
