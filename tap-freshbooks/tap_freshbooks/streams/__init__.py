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
from tap_freshbooks.streams.riders import rides_along
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

#: streams whose records arrive inside another stream's responses (rider -> carrier), derived from
#: the carriers' ``lines_stream`` declarations (riders.py)
RIDES_ALONG = rides_along(STREAM_TYPES)

__all__ = ["RIDES_ALONG", "STREAM_TYPES"]
