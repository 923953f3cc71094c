#########################################################{
# PURPOSE
# Credit notes issued to clients.
#
# SOURCES
# Refines view credit_notes (views/credit_notes_base.view.lkml). Extends deleted_records_ext.
#
# REFERENCED BY
# Explore credit_notes.
#########################################################}

include: "/views/credit_notes_base.view.lkml"
include: "/views/deleted_records_ext.view.lkml"

view: +credit_notes {
  extends: [deleted_records_ext]
  label: "Credit Notes"

  dimension: currency_code {
    label: "Currency"
    group_label: "Amounts"
    description: "Credit note currency (ISO 4217)."
  }

  measure: count {
    label: "Credit Notes"
    description: "Number of credit notes."
    type: count
  }

  measure: currency_count {
    hidden: yes
    description: "Distinct credit note currencies in the row; money measures are NULL unless it is 1."
    type: count_distinct
    sql: ${currency_code} ;;
  }

  measure: credited_sum {
    hidden: yes
    description: "Raw sum behind Total Credited."
    type: sum
    sql: ${amount} ;;
  }

  measure: total_credited {
    label: "Total Credited (credit note currency)"
    description: "Sum of credit note amounts, per currency."
    type: number
    sql: CASE WHEN ${currency_count} = 1 THEN ${credited_sum} END ;;
    required_fields: [currency_code]
    value_format_name: decimal_2
  }
}
