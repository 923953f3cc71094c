# Receivables: AR aging buckets (current, 1-30, 31-60, 61-90, 90+ days past due), DSO, open
# invoices, and collected vs invoiced per month. Per currency throughout.
- dashboard: receivables_aging
  title: "2. Receivables (AR Aging)"
  description: "Open receivables by days past due, by client; DSO; open invoices; collected vs invoiced."
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
    explore: invoices
    field: invoices.currency_code
  - name: Client
    title: "Client"
    type: field_filter
    default_value: ""
    allow_multiple_values: true
    required: false
    model: freshbooks
    explore: invoices
    field: clients.client_name
  elements:
  - name: ar_by_bucket
    title: "Open Receivables by Aging Bucket"
    model: freshbooks
    explore: invoices
    type: looker_column
    fields: [invoices.aging_bucket, invoices.currency_code, invoices.total_outstanding]
    pivots: [invoices.currency_code]
    filters:
      invoices.is_open: "Yes"
    sorts: [invoices.aging_bucket]
    listen:
      Currency: invoices.currency_code
      Client: clients.client_name
    row: 0
    col: 0
    width: 14
    height: 7
  - name: dso
    title: "Total AR and DSO"
    model: freshbooks
    explore: invoices
    type: looker_grid
    fields: [invoices.currency_code, invoices.total_outstanding, invoices.dso]
    sorts: [invoices.currency_code]
    listen:
      Currency: invoices.currency_code
      Client: clients.client_name
    row: 0
    col: 14
    width: 10
    height: 7
  - name: ar_aging_by_client
    title: "AR Aging by Client"
    model: freshbooks
    explore: invoices
    type: looker_grid
    fields: [clients.client_name, invoices.currency_code, invoices.ar_current, invoices.ar_1_30, invoices.ar_31_60, invoices.ar_61_90, invoices.ar_over_90, invoices.total_outstanding]
    filters:
      invoices.is_open: "Yes"
    sorts: [invoices.total_outstanding desc]
    limit: 100
    listen:
      Currency: invoices.currency_code
      Client: clients.client_name
    row: 7
    col: 0
    width: 24
    height: 8
  - name: open_invoices
    title: "Open Invoices"
    model: freshbooks
    explore: invoices
    type: looker_grid
    fields: [invoices.invoice_number, clients.client_name, invoices.created_on_date, invoices.due_date, invoices.days_past_due, invoices.aging_bucket, invoices.currency_code, invoices.outstanding]
    filters:
      invoices.is_open: "Yes"
    sorts: [invoices.days_past_due desc]
    limit: 500
    listen:
      Currency: invoices.currency_code
      Client: clients.client_name
    row: 15
    col: 0
    width: 24
    height: 8
  - name: collected_vs_invoiced
    title: "Collected vs Invoiced by Month (last 12 months)"
    model: freshbooks
    explore: ar_activity
    type: looker_column
    fields: [ar_activity.activity_month, ar_activity.currency_code, ar_activity.total_invoiced, ar_activity.total_collected]
    pivots: [ar_activity.currency_code]
    filters:
      ar_activity.activity_date: "12 months"
    sorts: [ar_activity.activity_month]
    listen:
      Currency: ar_activity.currency_code
      Client: clients.client_name
    row: 23
    col: 0
    width: 24
    height: 8
