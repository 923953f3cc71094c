"""Stream classes, one module per FreshBooks API family."""

from tap_freshbooks.streams.accounting import (
    BillPaymentsStream,
    BillsStream,
    BillVendorsStream,
    ClientsStream,
    CreditNotesStream,
    ExpenseCategoriesStream,
    ExpensesStream,
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
from tap_freshbooks.streams.riders import rides_along, with_riders
from tap_freshbooks.streams.sales import (
    EstimatesStream,
    InvoiceProfilesStream,
    TasksStream,
)
from tap_freshbooks.streams.team import TeamMembersStream

#: every stream, in catalog order; a carrier's rider follows it (riders.py)
STREAM_TYPES = with_riders(
    [
        ClientsStream,
        InvoicesStream,
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
        InvoiceProfilesStream,
        TasksStream,
        TeamMembersStream,
        ProfitAndLossStream,
        TaxSummaryStream,
        AccountsAgingStream,
    ]
)

#: streams whose records arrive inside another stream's responses (rider -> carrier), derived from
#: the carriers' ``lines_stream`` declarations (riders.py)
RIDES_ALONG = rides_along(STREAM_TYPES)

__all__ = ["RIDES_ALONG", "STREAM_TYPES"]
