#########################################################{
# PURPOSE
# Payments made against bills.
#
# SOURCES
# Refines view bill_payments (views/bill_payments_base.view.lkml).
#
# REFERENCED BY
# Explore bills.
#
# KEY MEASURES
#   total_bill_payments   per payment currency
#########################################################}

include: "/views/bill_payments_base.view.lkml"

view: +bill_payments {
  label: "Bill Payments"

  dimension: amount_currency {
    label: "Bill Payment Currency"
    description: "Currency of the bill payment (ISO 4217)."
  }

  measure: count {
    label: "Bill Payments"
    description: "Number of bill payments."
    type: count
  }

  measure: currency_count {
    hidden: yes
    description: "Distinct bill payment currencies in the row; money measures are NULL unless it is 1."
    type: count_distinct
    sql: ${amount_currency} ;;
  }

  measure: bill_payments_sum {
    hidden: yes
    description: "Raw sum behind Total Bill Payments."
    type: sum
    sql: ${amount} ;;
  }

  measure: total_bill_payments {
    label: "Total Bill Payments (payment currency)"
    description: "Sum of payments made on bills, per currency."
    type: number
    sql: CASE WHEN ${currency_count} = 1 THEN ${bill_payments_sum} END ;;
    required_fields: [amount_currency]
    value_format_name: decimal_2
  }
}
