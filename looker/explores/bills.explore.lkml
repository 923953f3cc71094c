#########################################################{
# PURPOSE
# Payables: bills by vendor, AP aging, and payments made on bills.
#
# SOURCES
# bills (base) -> bill_vendors, bill_payments.
#
# HOW TO USE
# AP aging: Aging Bucket + Total AP Outstanding (per bill currency). Deleted bills are hidden unless
# Include Deleted Records = Yes.
#########################################################}

include: "/refinements/bills_rfn.view.lkml"
include: "/refinements/bill_vendors_rfn.view.lkml"
include: "/refinements/bill_payments_rfn.view.lkml"

explore: bills {
  label: "Bills & Payables"
  description: "Bills by vendor, AP aging buckets, bill payments."
  sql_always_where: {% if bills.include_deleted._parameter_value == 'yes' %}1 = 1{% else %}NOT ${bills.is_deleted}{% endif %} ;;

  join: bill_vendors {
    type: left_outer
    relationship: many_to_one
    sql_on: ${bill_vendors.account_id} = ${bills.account_id} AND ${bill_vendors.vendorid} = ${bills.vendorid} ;;
  }

  join: bill_payments {
    type: left_outer
    relationship: one_to_many
    sql_on: ${bill_payments.account_id} = ${bills.account_id} AND CAST(${bill_payments.billid} AS @{STRING_TYPE}) = ${bills.id}
      AND ({% if bills.include_deleted._parameter_value == 'yes' %}1 = 1{% else %}NOT ${bill_payments.is_deleted}{% endif %}) ;;
  }
}
