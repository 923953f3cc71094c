# Expenses: by category (with parent category), month, staff member, and by GL account from the
# general ledger. Per currency throughout.
- dashboard: expenses
  title: "3. Expenses"
  description: "Spend by category and parent category, month and staff; expenses by general-ledger account; MTD and FYTD."
  layout: newspaper
  preferred_viewer: dashboards-next
  filters:
  - name: Expense Date
    title: "Expense Date"
    type: field_filter
    default_value: "12 months"
    allow_multiple_values: true
    required: false
    model: freshbooks
    explore: expenses
    field: expenses.expense_date
  - name: Currency
    title: "Currency"
    type: field_filter
    default_value: ""
    allow_multiple_values: true
    required: false
    model: freshbooks
    explore: expenses
    field: expenses.amount_currency
  elements:
  - name: expenses_to_date
    title: "Expenses Month to Date and Fiscal Year to Date"
    model: freshbooks
    explore: expenses
    type: looker_grid
    fields: [expenses.amount_currency, expenses.total_expenses_mtd, expenses.total_expenses_fytd]
    sorts: [expenses.amount_currency]
    listen:
      Currency: expenses.amount_currency
    row: 0
    col: 0
    width: 12
    height: 4
  - name: expenses_by_month
    title: "Expenses by Month"
    model: freshbooks
    explore: expenses
    type: looker_column
    fields: [expenses.expense_month, expenses.amount_currency, expenses.total_expenses]
    pivots: [expenses.amount_currency]
    fill_fields: [expenses.expense_month]
    sorts: [expenses.expense_month]
    listen:
      Expense Date: expenses.expense_date
      Currency: expenses.amount_currency
    row: 0
    col: 12
    width: 12
    height: 8
  - name: expenses_by_category
    title: "Expenses by Category"
    model: freshbooks
    explore: expenses
    type: looker_grid
    fields: [parent_category.category, expense_categories.category, expenses.amount_currency, expenses.total_expenses, expenses.count]
    sorts: [expenses.total_expenses desc]
    limit: 100
    listen:
      Expense Date: expenses.expense_date
      Currency: expenses.amount_currency
    row: 4
    col: 0
    width: 12
    height: 8
  - name: expenses_by_staff
    title: "Expenses by Staff Member"
    model: freshbooks
    explore: expenses
    type: looker_bar
    fields: [staff.staff_name, expenses.amount_currency, expenses.total_expenses]
    pivots: [expenses.amount_currency]
    sorts: [staff.staff_name]
    listen:
      Expense Date: expenses.expense_date
      Currency: expenses.amount_currency
    row: 12
    col: 0
    width: 12
    height: 7
  - name: expenses_by_gl_account
    title: "Expenses by GL Account"
    model: freshbooks
    explore: general_ledger
    type: looker_grid
    fields: [chart_of_accounts.sub_type, parent_account.account_label, chart_of_accounts.account_label, journal_entry_details.currency_code, journal_entry_details.natural_amount, journal_entry_details.natural_amount_fytd]
    filters:
      journal_entry_details.gl_account_type: "expense"
    sorts: [journal_entry_details.natural_amount desc]
    limit: 100
    listen:
      Expense Date: journal_entry_details.entry_date
      Currency: journal_entry_details.currency_code
    row: 12
    col: 12
    width: 12
    height: 7
