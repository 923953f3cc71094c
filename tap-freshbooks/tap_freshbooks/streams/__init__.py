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
from tap_freshbooks.streams.reports import AccountsAgingStream, ProfitAndLossStream, TaxSummaryStream
from tap_freshbooks.streams.sales import (
    EstimateLinesStream,
    EstimatesStream,
    InvoiceProfileLinesStream,
    InvoiceProfilesStream,
    TasksStream,
)
from tap_freshbooks.streams.team import TeamMembersStream

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
    EstimatesStream,
    EstimateLinesStream,
    InvoiceProfilesStream,
    InvoiceProfileLinesStream,
    TasksStream,
    TeamMembersStream,
    ProfitAndLossStream,
    TaxSummaryStream,
    AccountsAgingStream,
]

__all__ = ["STREAM_TYPES"]
