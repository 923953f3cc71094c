"""FreshBooks' own reports as dated snapshots: profit and loss, tax summary, accounts aging.

One record per account and report date (the UTC date the poll ran; ``id`` = that date), holding
the whole report as FreshBooks computed it (``report``, JSON: money objects keep their exact
decimal strings) plus its period. A poll later the same day replaces that day's row when the report
changed (the change ledger compares fingerprints); the next day adds a new row, so the warehouse
keeps one snapshot per day to reconcile its own figures against.

Endpoints (freshbooks-api.md §3.2, "Reports (legacy)"): ``A/reports/accounting/profitloss_entity``
(result key ``profitloss``: ``cash_based``, ``currency_code``, ``dates``, ``start_date``,
``end_date``, ``income[]`` / ``expenses[]`` trees) and ``A/reports/accounting/taxsummary``
(``taxsummary``), both asked for the year to date. Accounts aging is UNCONFIRMED: the doc lists no
path for it; this stream asks ``A/reports/accounting/accounts_aging`` (``accounts_aging``) as of
the report date. Scope ``user:reports:read``. No webhook: reports are polled.
"""

from __future__ import annotations

import datetime as dt
import typing as t

from tap_freshbooks import envelopes, incremental
from tap_freshbooks.schema_objects import any_object, date, schema, string
from tap_freshbooks.streams.accounting import ACCOUNT
from tap_freshbooks.streams.base import FreshBooksStream
from tap_freshbooks.timezones import utc_now

if t.TYPE_CHECKING:
    import requests

    from tap_freshbooks.ledger import ChangeLedger
    from tap_freshbooks.state import PartitionState

REPORTS = f"{ACCOUNT}/reports/accounting"
REPORT_PROPERTIES = (
    date("report_date", "The day this snapshot was taken (UTC date of the poll); also the id"),
    date("start_date", "First day the report covers (null: as of end_date)"),
    date("end_date", "Last day the report covers"),
    string("currency_code", "Currency of the report's amounts"),
    any_object("report", "The report as FreshBooks computed it (JSON; amounts are exact decimal strings)"),
)


class ReportStream(FreshBooksStream):
    """One FreshBooks report per account and day."""

    envelope = envelopes.ACCOUNTING
    strategy = incremental.Snapshot()
    single_path = None
    id_field = "report_date"
    #: the key of the report inside ``response.result`` is ``list_key``
    _report_day: str | None = None
    #: True: the report covers Jan 1 to the report date; False: it is "as of" the report date
    year_to_date: bool = True
    schema = schema(*REPORT_PROPERTIES)

    def report_params(self, day: dt.date) -> dict[str, str]:
        params = {"end_date": day.isoformat()}
        if self.year_to_date:
            params["start_date"] = day.replace(month=1, day=1).isoformat()
        return params

    def parse_response(self, response: requests.Response) -> t.Iterable[dict[str, t.Any]]:
        body = envelopes.parse_json(response)
        report = self.envelope.single(body, self.list_key)
        if report is not None:
            yield report

    def _save_state(self, state: PartitionState, ledger: ChangeLedger) -> None:
        """Keep only the fingerprint of the day this poll read: no later poll reads an earlier day
        again, so older days' entries would only grow the state by one per day."""
        day = self._report_day
        if day is not None:
            for old in [d for d in state.seen if d < day]:
                del state.seen[old]
        super()._save_state(state, ledger)

    def _passes(
        self,
        context: dict[str, t.Any],
        window: incremental.Window,  # noqa: ARG002  (a report has no window: today's snapshot)
    ) -> t.Iterable[tuple[dict[str, t.Any], str | None]]:
        day = utc_now().date()
        self._report_day = day.isoformat()
        params = self.report_params(day)
        for report in self.read_list(context, params):
            yield (
                {
                    "report_date": day.isoformat(),
                    "start_date": params.get("start_date"),
                    "end_date": params["end_date"],
                    "currency_code": report.get("currency_code"),
                    "report": report,
                },
                None,
            )


class ProfitAndLossStream(ReportStream):
    """Profit and loss, year to date (cash_based as FreshBooks' default)."""

    name = "report_profit_loss"
    path = f"{REPORTS}/profitloss_entity"
    list_key = "profitloss"


class TaxSummaryStream(ReportStream):
    """Tax summary, year to date."""

    name = "report_tax_summary"
    path = f"{REPORTS}/taxsummary"
    list_key = "taxsummary"


class AccountsAgingStream(ReportStream):
    """Accounts receivable aging as of the report date (endpoint UNCONFIRMED, see the module doc)."""

    name = "report_accounts_aging"
    path = f"{REPORTS}/accounts_aging"
    list_key = "accounts_aging"
    year_to_date = False
