# Payables: AP aging buckets and open bills by vendor. Per currency throughout.
- dashboard: payables_aging
  title: "4. Payables (AP Aging)"
  description: "Open payables by days past due and by vendor; bills and bill payments."
  layout: newspaper
  preferred_viewer: dashboards-next
  filters:
  - name: Currency
    title: "Currency"
    type: field_filter
    default_value: ""
    allow_multiple_values: true
    required: false
    model: freshbooks
    explore: bills
    field: bills.currency_code
  elements:
  - name: ap_by_bucket
    title: "Open Payables by Aging Bucket"
    model: freshbooks
    explore: bills
    type: looker_column
    fields: [bills.aging_bucket, bills.currency_code, bills.total_ap_outstanding]
    pivots: [bills.currency_code]
    filters:
      bills.is_open: "Yes"
    sorts: [bills.aging_bucket]
    listen:
      Currency: bills.currency_code
    row: 0
    col: 0
    width: 12
    height: 7
  - name: ap_aging_by_vendor
    title: "AP Aging by Vendor"
    model: freshbooks
    explore: bills
    type: looker_grid
    fields: [bill_vendors.vendor_name, bills.currency_code, bills.ap_current, bills.ap_1_30, bills.ap_31_60, bills.ap_61_90, bills.ap_over_90, bills.total_ap_outstanding]
    filters:
      bills.is_open: "Yes"
    sorts: [bills.total_ap_outstanding desc]
    limit: 100
    listen:
      Currency: bills.currency_code
    row: 0
    col: 12
    width: 12
    height: 7
  - name: bills_by_month
    title: "Billed and Paid by Month"
    model: freshbooks
    explore: bills
    type: looker_grid
    fields: [bills.issue_month, bills.currency_code, bills.total_billed, bills.total_ap_outstanding]
    sorts: [bills.issue_month desc]
    listen:
      Currency: bills.currency_code
    row: 7
    col: 0
    width: 24
    height: 7
