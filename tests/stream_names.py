"""The tap's stream names, grouped the way the tests check them (said once, used everywhere)."""

from __future__ import annotations

#: the 18 streams ../shared/contract.md names (the first release's streams)
CONTRACT_STREAMS = (
    "bill_payments",
    "bill_vendors",
    "bills",
    "chart_of_accounts",
    "clients",
    "credit_notes",
    "expense_categories",
    "expenses",
    "invoices",
    "items",
    "journal_entry_details",
    "other_incomes",
    "payments",
    "projects",
    "services",
    "staff",
    "taxes",
    "time_entries",
)
#: the record streams added after the contract's list
LATER_STREAMS = ("estimates", "invoice_profiles", "tasks", "team_members")
#: computed by FreshBooks, not stored records
REPORT_STREAMS = ("report_profit_loss", "report_tax_summary", "report_accounts_aging")
#: the riders: their records arrive inside their carrier's responses
LINE_STREAMS = ("invoice_lines", "estimate_lines", "invoice_profile_lines")
#: every stream that is fetched on its own (not a rider)
OWN_STREAMS = CONTRACT_STREAMS + LATER_STREAMS + REPORT_STREAMS
#: every stream the tap has
EVERY_STREAM = OWN_STREAMS + LINE_STREAMS
