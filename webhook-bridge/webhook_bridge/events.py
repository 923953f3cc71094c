"""Which tap stream fetches the record a FreshBooks webhook event names.

The one mapping from an event's resource prefix (``invoice`` in ``invoice.update``,
freshbooks-api.md §7.5) to the tap stream whose ``record_ids`` fetch that record by id. Nothing
else: what rides along with a record (``invoice_lines`` with ``invoices``) is the tap's own
declaration (tap_freshbooks/streams/riders.py), so the bridge sends only ``record_ids`` and the tap
adds the riders. Resources without an entry (journal entries, ledger accounts, reports) are left to
the scheduled poll.
"""

from __future__ import annotations

#: event resource prefix -> the tap stream fetched by id (also the default subscriptions, in order)
EVENT_STREAMS: dict[str, str] = {
    "invoice": "invoices",
    "payment": "payments",
    "expense": "expenses",
    "bill": "bills",
    "bill_payment": "bill_payments",
    "bill_vendor": "bill_vendors",
    "client": "clients",
    "item": "items",
    "category": "expense_categories",
    "credit_note": "credit_notes",
    "other_income": "other_incomes",
    "tax": "taxes",
    "project": "projects",
    "service": "services",
    "time_entry": "time_entries",
    "estimate": "estimates",
    "recurring": "invoice_profiles",
}


def stream_for(event_name: str) -> str | None:
    """The stream that fetches the record of ``event_name`` (None: not fetchable by id, left to the poll)."""
    return EVENT_STREAMS.get(event_name.split(".", 1)[0])


#: tap streams no webhook refreshes -> why; the scheduled poll is their only path to the warehouse.
#: Every tap stream that does not ride along with another is either a value of EVENT_STREAMS or a
#: key here (tests/test_checklists.py), so a new stream cannot be left out of both by accident.
POLL_ONLY: dict[str, str] = {
    "journal_entry_details": "no journal entry events are documented (freshbooks-api.md §7.5)",
    "chart_of_accounts": "no ledger account events are documented (freshbooks-api.md §7.5)",
    "staff": "no staff events are documented (freshbooks-api.md §7.5)",
    "tasks": "no task events are documented (freshbooks-api.md §7.5)",
    "team_members": "no team member events are documented (freshbooks-api.md §7.5)",
    "report_profit_loss": "a report is a dated snapshot computed by FreshBooks, not a record with events",
    "report_tax_summary": "a report is a dated snapshot computed by FreshBooks, not a record with events",
    "report_accounts_aging": "a report is a dated snapshot computed by FreshBooks, not a record with events",
}
