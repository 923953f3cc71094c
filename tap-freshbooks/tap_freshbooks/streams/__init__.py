"""Stream classes, one module per FreshBooks API family."""

from tap_freshbooks.streams.accounting import (
    BillPaymentsStream,
    BillsStream,
    BillVendorsStream,
    ClientsStream,
    CreditNotesStream,
    ExpenseCategoriesStream,
    ExpensesStream,
    InvoiceLinesStream,
    InvoicesStream,
    ItemsStream,
    JournalEntryDetailsStream,
    OtherIncomesStream,
    PaymentsStream,
    StaffStream,
    TaxesStream,
)
from tap_freshbooks.streams.ledger_accounts import ChartOfAccountsStream
from tap_freshbooks.streams.projects import ProjectsStream, ServicesStream, TimeEntriesStream

STREAM_TYPES = [
    ClientsStream,
    InvoicesStream,
    InvoiceLinesStream,
    PaymentsStream,
    ExpensesStream,
    ExpenseCategoriesStream,
    BillsStream,
    BillPaymentsStream,
    BillVendorsStream,
    JournalEntryDetailsStream,
    ChartOfAccountsStream,
    ItemsStream,
    TaxesStream,
    ProjectsStream,
    ServicesStream,
    TimeEntriesStream,
    CreditNotesStream,
    OtherIncomesStream,
    StaffStream,
]

__all__ = ["STREAM_TYPES"]
