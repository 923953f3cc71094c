#########################################################{
# PURPOSE
# Spend: expenses by category (and parent category), staff member, client, project and period.
#
# SOURCES
# expenses (base) -> expense_categories -> parent_category (expense_categories again);
# expenses -> staff, clients, projects.
#
# HOW TO USE
# Category names and the hierarchy are read from the expense_categories table, so renamed or new
# categories need no LookML change. Money is per expense currency.
#########################################################}

include: "/refinements/expenses_rfn.view.lkml"
include: "/refinements/expense_categories_rfn.view.lkml"
include: "/refinements/staff_rfn.view.lkml"
include: "/refinements/clients_rfn.view.lkml"
include: "/refinements/projects_rfn.view.lkml"

explore: expenses {
  label: "Expenses"
  description: "Expenses by category and parent category, staff, client, project and period."
  sql_always_where: {% if expenses.include_deleted._parameter_value == 'yes' %}1 = 1{% else %}NOT ${expenses.is_deleted}{% endif %} ;;

  join: expense_categories {
    type: left_outer
    relationship: many_to_one
    sql_on: ${expense_categories.account_id} = ${expenses.account_id} AND ${expense_categories.categoryid} = ${expenses.categoryid} ;;
  }

  join: parent_category {
    from: expense_categories
    view_label: "Expense Categories: Parent"
    type: left_outer
    relationship: many_to_one
    fields: [parent_category.category, parent_category.categoryid]
    sql_on: ${parent_category.account_id} = ${expense_categories.account_id} AND ${parent_category.categoryid} = ${expense_categories.parentid} ;;
  }

  join: staff {
    type: left_outer
    relationship: many_to_one
    sql_on: ${staff.account_id} = ${expenses.account_id} AND ${staff.id} = CAST(${expenses.staffid} AS @{STRING_TYPE}) ;;
  }

  join: clients {
    type: left_outer
    relationship: many_to_one
    sql_on: ${clients.account_id} = ${expenses.account_id} AND ${clients.userid} = ${expenses.clientid} ;;
  }

  join: projects {
    type: left_outer
    relationship: many_to_one
    sql_on: ${projects.account_id} = ${expenses.account_id} AND ${projects.id} = CAST(${expenses.projectid} AS @{STRING_TYPE}) ;;
  }
}
