#########################################################{
# PURPOSE
# Other income (sales recorded outside invoices, e.g. online or in-person sales).
#
# SOURCES
# Refines view other_incomes (views/other_incomes_base.view.lkml). Extends deleted_records_ext.
#
# REFERENCED BY
# Explore other_incomes.
#########################################################}

include: "/views/other_incomes_base.view.lkml"
include: "/views/deleted_records_ext.view.lkml"

view: +other_incomes {
  extends: [deleted_records_ext]
  label: "Other Income"

  dimension: amount_currency {
    label: "Currency"
    description: "Currency of the income (ISO 4217)."
  }

  measure: count {
    label: "Other Income Entries"
    description: "Number of other-income records."
    type: count
  }

  measure: currency_count {
    hidden: yes
    description: "Distinct currencies in the row; money measures are NULL unless it is 1."
    type: count_distinct
    sql: ${amount_currency} ;;
  }

  measure: income_sum {
    hidden: yes
    description: "Raw sum behind Total Other Income."
    type: sum
    sql: ${amount} ;;
  }

  measure: total_other_income {
    label: "Total Other Income (currency)"
    description: "Sum of other income, per currency."
    type: number
    sql: CASE WHEN ${currency_count} = 1 THEN ${income_sum} END ;;
    required_fields: [amount_currency]
    value_format_name: decimal_2
  }
}
