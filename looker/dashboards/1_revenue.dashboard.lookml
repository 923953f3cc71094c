# Revenue: invoiced (by month, client, item/service, project), MTD / FYTD, cash collected; MTD line
# revenue by client, service line and cost center.
# Every money tile is per currency (pivoted or a Currency column); never summed across currencies.
- dashboard: revenue
  title: "1. Revenue"
  description: "Invoiced revenue by month, client, item/service and project; month-to-date and fiscal-year-to-date; cash collected."
  layout: newspaper
  preferred_viewer: dashboards-next
  filters:
  - name: Date
    title: "Date (invoice date; payment date on payment tiles)"
    type: field_filter
    default_value: "12 months"
    allow_multiple_values: true
    required: false
    model: freshbooks
    explore: invoices
    field: invoices.created_on_date
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
  - name: invoiced_to_date
    title: "Invoiced Month to Date and Fiscal Year to Date"
    model: freshbooks
    explore: invoices
    type: looker_grid
    fields: [invoices.currency_code, invoices.total_invoiced_mtd, invoices.total_invoiced_fytd]
    sorts: [invoices.currency_code]
    listen:
      Currency: invoices.currency_code
      Client: clients.client_name
    row: 0
    col: 0
    width: 12
    height: 4
  - name: collected_to_date
    title: "Collected Month to Date and Fiscal Year to Date"
    model: freshbooks
    explore: payments
    type: looker_grid
    fields: [payments.amount_currency, payments.total_collected_mtd, payments.total_collected_fytd]
    sorts: [payments.amount_currency]
    listen:
      Currency: payments.amount_currency
      Client: clients.client_name
    row: 0
    col: 12
    width: 12
    height: 4
  - name: revenue_by_month
    title: "Invoiced by Month"
    model: freshbooks
    explore: invoices
    type: looker_column
    fields: [invoices.created_on_month, invoices.currency_code, invoices.total_invoiced]
    pivots: [invoices.currency_code]
    fill_fields: [invoices.created_on_month]
    sorts: [invoices.created_on_month]
    listen:
      Date: invoices.created_on_date
      Currency: invoices.currency_code
      Client: clients.client_name
    row: 4
    col: 0
    width: 24
    height: 8
  - name: revenue_by_client
    title: "Invoiced by Client"
    model: freshbooks
    explore: invoices
    type: looker_grid
    fields: [clients.client_name, invoices.currency_code, invoices.total_invoiced, invoices.total_paid, invoices.collection_rate]
    sorts: [invoices.total_invoiced desc]
    limit: 50
    listen:
      Date: invoices.created_on_date
      Currency: invoices.currency_code
      Client: clients.client_name
    row: 12
    col: 0
    width: 12
    height: 8
  - name: revenue_by_item_service
    title: "Line Revenue by Item / Service"
    model: freshbooks
    explore: invoices
    type: looker_bar
    fields: [invoice_lines.name, invoice_lines.amount_currency, invoice_lines.total_line_revenue]
    pivots: [invoice_lines.amount_currency]
    sorts: [invoice_lines.name]
    limit: 50
    listen:
      Date: invoices.created_on_date
      Currency: invoices.currency_code
      Client: clients.client_name
    row: 12
    col: 12
    width: 12
    height: 8
  - name: revenue_by_service
    title: "Line Revenue by Service"
    model: freshbooks
    explore: invoices
    type: looker_grid
    fields: [service_names.name, invoice_lines.amount_currency, invoice_lines.total_line_revenue, invoice_lines.total_quantity]
    filters:
      service_names.name: "-NULL"
    sorts: [invoice_lines.total_line_revenue desc]
    limit: 50
    listen:
      Date: invoices.created_on_date
      Currency: invoices.currency_code
      Client: clients.client_name
    row: 26
    col: 0
    width: 12
    height: 6
  - name: revenue_by_project
    title: "Line Revenue by Project"
    model: freshbooks
    explore: invoices
    type: looker_grid
    fields: [projects.title, invoice_lines.amount_currency, invoice_lines.total_line_revenue]
    sorts: [invoice_lines.total_line_revenue desc]
    limit: 50
    listen:
      Date: invoices.created_on_date
      Currency: invoices.currency_code
      Client: clients.client_name
    row: 20
    col: 0
    width: 12
    height: 6
  - name: revenue_by_cost_center
    title: "MTD Revenue by Client, Service Line and Cost Center"
    note_text: "Line revenue (before tax) on invoices dated this month to date. Cost centers come from the mapping table (looker/README.md, Cost centers)."
    model: freshbooks
    explore: invoices
    type: looker_grid
    fields: [clients.client_name, invoice_lines.name, cost_centers.cost_center, invoice_lines.amount_currency,
      invoice_lines.total_line_revenue_mtd]
    filters:
      invoices.is_invoiced_mtd: "Yes"
    sorts: [invoice_lines.total_line_revenue_mtd desc]
    limit: 500
    listen:
      Currency: invoices.currency_code
      Client: clients.client_name
    row: 32
    col: 0
    width: 24
    height: 8
  - name: collected_by_month
    title: "Collected by Month"
    model: freshbooks
    explore: payments
    type: looker_column
    fields: [payments.payment_month, payments.amount_currency, payments.total_collected]
    pivots: [payments.amount_currency]
    fill_fields: [payments.payment_month]
    sorts: [payments.payment_month]
    listen:
      Date: payments.payment_date
      Currency: payments.amount_currency
      Client: clients.client_name
    row: 20
    col: 12
    width: 12
    height: 6
